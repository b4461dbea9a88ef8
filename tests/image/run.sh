#!/usr/bin/env bash
# tests/image/run.sh - the built image, run as Kubernetes would run it but without a container
# engine: its files (podman image mount, copied so that secrets can be placed) under chroot as its
# unprivileged user, against the test PostgreSQL; called with the coffer CLI from outside.
set -uo pipefail
: "${COFFER_IMAGE_MOUNT:?}" "${COFFER_IMAGE_ROOT:?}" "${COFFER_TEST_DATABASE_URL:?}" "${COFFER_CLI:?}"
pass=0 fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
# shellcheck source=tests/lib.sh
. "$(cd "$(dirname "$0")/.." && pwd)/lib.sh"
R=$COFFER_IMAGE_ROOT
# The image's cofferd listens on the host's network: ports nothing else holds.
GRPC=$(free_port 20951)
METRICS=$(free_port $((GRPC + 1)))
TLS_GRPC=$(free_port $((METRICS + 1)))
TLS_HTTP=$(free_port $((TLS_GRPC + 1)))
TLS_METRICS=$(free_port $((TLS_HTTP + 1)))

# What the image holds.
for f in usr/local/bin/cofferd usr/local/bin/coffer usr/local/lib/libcoffer.so.0 etc/ssl/certs/ca-certificates.crt; do
  [ -e "$COFFER_IMAGE_MOUNT/$f" ] && ok "image has /$f" || bad "image lacks /$f"
done
for f in bin/sh bin/bash usr/bin/apt usr/bin/dpkg usr/bin/perl usr/bin/gcc; do
  [ -e "$COFFER_IMAGE_MOUNT/$f" ] && bad "image carries /$f" || ok "no /$f in the image"
done
size=$(du -sm "$COFFER_IMAGE_MOUNT" | cut -f1)
echo "image size: ${size} MB"
read -r user entry ports <<<"$COFFER_IMAGE_CONFIG"
[ "$user" = "10001:10001" ] && ok "runs as 10001:10001" || bad "user is $user"
[ "$entry" = '["/usr/local/bin/cofferd"]' ] && ok "entrypoint is cofferd" || bad "entrypoint $entry"
grep -q 50051 <<<"$ports" && grep -q 9464 <<<"$ports" && ok "exposes 50051 and 9464" || bad "ports $ports"

# A writable copy of the file system, with the secrets Kubernetes would mount.
rm -rf "$R"
cp -a "$COFFER_IMAGE_MOUNT" "$R"
mkdir -p "$R/run/secrets"
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$R/run/secrets/root.key")
chown -R 10001:10001 "$R/run/secrets"
in_image() {
  env -i LD_LIBRARY_PATH=/usr/local/lib COFFER_DATABASE_URL="$COFFER_TEST_DATABASE_URL" \
    COFFER_ROOT_KEY_FILE=/run/secrets/root.key COFFER_BOOTSTRAP_TOKEN_FILE=/run/secrets/admin.token \
    COFFER_LISTEN=127.0.0.1:$GRPC COFFER_METRICS_LISTEN=127.0.0.1:$METRICS \
    /usr/sbin/chroot --userspec=10001:10001 "$R" "$@"
}
in_image /usr/local/bin/cofferd migrate >/dev/null 2>&1 && ok "the image's cofferd migrates" || bad "migrate"
# The Kubernetes way: the bootstrap token comes from `cofferd new-token` in a read-only Secret.
# A malformed one is refused with a clear message; a good one is read, not replaced.
echo "not-a-token" >"$R/run/secrets/admin.token"
chown 10001:10001 "$R/run/secrets/admin.token"; chmod 0400 "$R/run/secrets/admin.token"
out=$(in_image /usr/local/bin/cofferd serve 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "holds no valid token" <<<"$out" && ok "a malformed bootstrap token is refused at start" || bad "bad bootstrap: $rc $out"
token=$(in_image /usr/local/bin/cofferd new-token)
# A token file other users can read is not a secret: refused, even with a good token in it.
echo "$token" >"$R/run/secrets/admin.token"; chmod 0644 "$R/run/secrets/admin.token"
out=$(in_image /usr/local/bin/cofferd serve 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "can be read or written by other users (mode 0644)" <<<"$out" &&
  ok "a world-readable bootstrap token file is refused at start" || bad "readable bootstrap: $rc $out"
[[ "$token" =~ ^coffer_[0-9A-Za-z]{49}$ ]] && ok "cofferd new-token prints a token" || bad "new-token: $token"
[ "$token" != "$(in_image /usr/local/bin/cofferd new-token)" ] && ok "new tokens differ" || bad "new-token repeats"
echo "$token" >"$R/run/secrets/admin.token"
chown 10001:10001 "$R/run/secrets/admin.token"; chmod 0400 "$R/run/secrets/admin.token"
# serve_image LOG VAR=value...: the image's cofferd serving in the background ($! its pid).
serve_image() {
  local log=$1
  shift
  (exec env -i LD_LIBRARY_PATH=/usr/local/lib COFFER_DATABASE_URL="$COFFER_TEST_DATABASE_URL" \
    COFFER_ROOT_KEY_FILE=/run/secrets/root.key COFFER_BOOTSTRAP_TOKEN_FILE=/run/secrets/admin.token "$@" \
    /usr/sbin/chroot --userspec=10001:10001 "$R" /usr/local/bin/cofferd serve) >"$log" 2>&1 &
}
serve_image "$(dirname "$R")/serve.log" COFFER_LISTEN=127.0.0.1:$GRPC COFFER_METRICS_LISTEN=127.0.0.1:$METRICS
pid=$!
up=0
for _ in $(seq 1 50); do
  [ -s "$R/run/secrets/admin.token" ] && COFFER_ADDR=127.0.0.1:$GRPC COFFER_TOKEN=$(cat "$R/run/secrets/admin.token") \
    "$COFFER_CLI" projects list >/dev/null 2>&1 && { up=1; break; }
  sleep 0.2
done
[ $up -eq 1 ] && [ "$(cat "$R/run/secrets/admin.token")" = "$token" ] &&
  ok "the image's cofferd serves; the bootstrap token from new-token is the admin token" || { bad "serve"; cat "$(dirname "$R")/serve.log"; }
export COFFER_ADDR=127.0.0.1:$GRPC COFFER_TOKEN
COFFER_TOKEN=$(cat "$R/run/secrets/admin.token" 2>/dev/null)
"$COFFER_CLI" projects create image-check >/dev/null &&
  "$COFFER_CLI" secrets create image-check API_KEY --value-stdin <<<'from-the-image' >/dev/null && ok "writes through the image's cofferd" || bad "writes"
rt=$("$COFFER_CLI" tokens create image-runtime --role runtime --project image-check 2>/dev/null)
out=$(COFFER_TOKEN=$rt "$COFFER_CLI" run --project image-check --env main --version live -- env)
grep -qx 'API_KEY=from-the-image' <<<"$out" && ok "coffer run resolves from the image's cofferd" || bad "resolve: $out"
metrics=$(/usr/bin/python3 -c 'import sys, urllib.request; print(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode())' "$METRICS" 2>&1)
grep -q 'coffer_calls_total{method="/coffer.v1.Secrets/ResolveSecrets",code="OK"} 1' <<<"$metrics" && ok "metrics from the image" || bad "metrics: $metrics"
/usr/bin/python3 - "$GRPC" <<'PY' && ok "health: SERVING for \"\" and \"liveness\"" || bad "health"
import grpc, sys
port = sys.argv[1]
sys.path.insert(0, "/dev/null")
def check(service):
    ch = grpc.insecure_channel("127.0.0.1:" + port)
    req = bytes([0x0a, len(service)]) + service.encode() if service else b""
    resp = ch.unary_unary("/grpc.health.v1.Health/Check")(req, timeout=5)
    return resp == b"\x08\x01"  # status: SERVING
sys.exit(0 if check("") and check("liveness") else 1)
PY
# Not dumpable: no core file, and its /proc entries belong to root although it runs as 10001.
if [ "$(awk '/^Uid:/{print $2}' /proc/$pid/status)" = 10001 ] && [ "$(stat -c %u /proc/$pid/environ)" = 0 ] &&
   grep -q '^Max core file size *0 *0' /proc/$pid/limits; then
  ok "runs as 10001, not dumpable, core size 0"
else
  bad "dumpable: $(awk '/^Uid:/' /proc/$pid/status) environ owner $(stat -c %u /proc/$pid/environ)"
fi
kill -TERM $pid; wait_bounded $pid 30 "the image's cofferd after SIGTERM"; rc=$?
[ $rc -eq 0 ] && ok "stops gracefully on SIGTERM" || bad "exit $rc"

# The HTTP/JSON endpoint over TLS, as the base manifests serve it (GnuTLS in the image).
"$(dirname "$0")/../tls/make-certs.sh" "$R/run/secrets/tls" >/dev/null
chown -R 10001:10001 "$R/run/secrets/tls"
serve_image "$(dirname "$R")/serve-tls.log" COFFER_LISTEN=127.0.0.1:$TLS_GRPC COFFER_METRICS_LISTEN=127.0.0.1:$TLS_METRICS \
  COFFER_HTTP_LISTEN=127.0.0.1:$TLS_HTTP COFFER_TLS_CERT_FILE=/run/secrets/tls/server.crt \
  COFFER_TLS_KEY_FILE=/run/secrets/tls/server.key
pid=$!
url=https://127.0.0.1:$TLS_HTTP/v1/projects/image-check/environments/main/versions/live/secrets/API_KEY
body=
for _ in $(seq 1 50); do
  body=$(curl -sf --cacert "$R/run/secrets/tls/ca.crt" -H "Authorization: Bearer $rt" "$url") && break
  sleep 0.2
done
grep -q '"value":"from-the-image"' <<<"$body" && ok "the image serves the HTTP/JSON endpoint over TLS" ||
  { bad "HTTPS: $body"; tail -5 "$(dirname "$R")/serve-tls.log"; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$TLS_HTTP/v1/" 2>/dev/null)
[ "$code" != 200 ] && ok "no plaintext on the TLS port (got ${code:-nothing})" || bad "plaintext answered on the TLS port"
kill -TERM $pid; wait_bounded $pid 30 "the image's cofferd after SIGTERM"
echo "image: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
