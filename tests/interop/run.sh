#!/usr/bin/env bash
# tests/interop/run.sh - the Python grpcio client against a real cofferd, then the canary scans.
# Called by scripts/dev test, which sets COFFER_TEST_* (database, root key, build, PostgreSQL).
#
#   tests/interop/run.sh [PATTERN]   with PATTERN, only the Python tests whose name it matches
#                                    (unittest -k: Watch, test_tls_and_mtls), against the same
#                                    servers; the shell checks and the scans are left out
set -euo pipefail
ONLY=${1:-}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
: "${COFFER_TEST_BUILD:?}" "${COFFER_TEST_DATABASE_URL:?}" "${COFFER_TEST_ROOT_KEY_FILE:?}"
: "${COFFER_TEST_STATE:?}" "${COFFER_TEST_PGDATA:?}" "${COFFER_TEST_PG_BIN:?}"

# shellcheck source=tests/lib.sh
. "$ROOT/tests/lib.sh"

# Python stubs from our proto files (grpc_python_plugin).
GEN="$COFFER_TEST_BUILD/py"
"$HERE/stubs.sh" "$COFFER_TEST_BUILD"

scan() { { grep -rcaF "$1" "$2" 2>/dev/null || true; } | awk -F: '{s += $NF} END {print s + 0}'; }

status=0
mkdir -p "$COFFER_TEST_STATE"
if [ -z "$ONLY" ]; then
# A connection string that does not parse is a usage error, said at once (exit 2), never retried,
# and never echoed (it may hold a password).
rc=0
"$COFFER_TEST_BUILD/bin/cofferd" serve --database-url 'host=db.example password=canary-pw port' \
  --root-key-file "$COFFER_TEST_ROOT_KEY_FILE" >"$COFFER_TEST_STATE/badurl.log" 2>&1 || rc=$?
if [ $rc -eq 2 ] && grep -q -- '--database-url is not a valid connection string' "$COFFER_TEST_STATE/badurl.log" &&
  ! grep -q canary-pw "$COFFER_TEST_STATE/badurl.log"; then
  echo "ok: a malformed --database-url is exit 2, named, and not echoed"
else
  echo "FAIL: malformed --database-url: exit $rc: $(cat "$COFFER_TEST_STATE/badurl.log")"; status=1
fi
# SIGTERM while start-up waits for a database that does not answer ends cofferd at once.
"$COFFER_TEST_BUILD/bin/cofferd" serve --database-url "postgresql://coffer@127.0.0.1:1/nowhere" \
  --listen 127.0.0.1:0 --metrics-listen "" --root-key-file "$COFFER_TEST_ROOT_KEY_FILE" \
  >"$COFFER_TEST_STATE/startterm.log" 2>&1 &
early=$!
sleep 1
kill -TERM $early
if wait_bounded $early 5 "cofferd told SIGTERM during start-up"; then
  echo "ok: SIGTERM during start-up (the database unreachable) ends cofferd at once, status 0"
else
  echo "FAIL: SIGTERM during start-up: $(tail -3 "$COFFER_TEST_STATE/startterm.log")"; status=1
fi
fi
CANARY="canary$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export COFFER_CANARY=$CANARY
LOG="$COFFER_TEST_STATE/interop-cofferd.log"
mkdir -p "$COFFER_TEST_STATE"
PORT=$(free_port 25151)
export COFFER_ADDR="127.0.0.1:$PORT"
MPORT=$(free_port 9500)
export COFFER_METRICS_ADDR="127.0.0.1:$MPORT"
export COFFER_HTTP_ADDR="127.0.0.1:$(free_port $((MPORT + 1)))"

DB="${COFFER_TEST_INTEROP_DATABASE_URL:-$COFFER_TEST_DATABASE_URL}"
export COFFER_TEST_DATABASE_URL="$DB"
export COFFER_ADMIN_TOKEN_FILE="$COFFER_TEST_STATE/interop-admin.token"
rm -f "$COFFER_ADMIN_TOKEN_FILE"
COFFER_DATABASE_URL="$DB" COFFER_ROOT_KEY_FILE="$COFFER_TEST_ROOT_KEY_FILE" \
  "$COFFER_TEST_BUILD/bin/cofferd" serve --listen "$COFFER_ADDR" --migrate --log-level debug \
  --grace-seconds 15 --bootstrap-token-file "$COFFER_ADMIN_TOKEN_FILE" --watch-heartbeat-seconds 1 \
  --metrics-listen "$COFFER_METRICS_ADDR" --http-listen "$COFFER_HTTP_ADDR" >"$LOG" 2>&1 &
PID=$!
export COFFERD_PID=$PID
cleanup() { kill -TERM "$PID" 2>/dev/null || true; }
trap cleanup EXIT

TLS_PIDS=()
PYTHONPATH="$GEN:$HERE" "$PY" "$HERE/wait_serving.py" || { cat "$LOG"; exit 1; }

# Two more servers on the same database: TLS, and TLS that requires client certificates (mTLS).
export COFFER_CERTS="$COFFER_TEST_STATE/certs"
"$ROOT/tests/tls/make-certs.sh" "$COFFER_CERTS"
export COFFER_TLS_ADDR="127.0.0.1:$(free_port $((PORT + 10)))"
export COFFER_MTLS_ADDR="127.0.0.1:$(free_port $((PORT + 20)))"
COFFER_HTTPS_ADDR="127.0.0.1:$(free_port $((PORT + 30)))"
for mode in tls mtls; do
  addr=$COFFER_TLS_ADDR; extra=(--http-listen "$COFFER_HTTPS_ADDR")
  [ $mode = mtls ] && { addr=$COFFER_MTLS_ADDR; extra=(--tls-client-ca-file "$COFFER_CERTS/ca.crt"); }
  COFFER_DATABASE_URL="$DB" COFFER_ROOT_KEY_FILE="$COFFER_TEST_ROOT_KEY_FILE" \
    "$COFFER_TEST_BUILD/bin/cofferd" serve --listen "$addr" --tls-cert-file "$COFFER_CERTS/server.crt" \
    --tls-key-file "$COFFER_CERTS/server.key" --metrics-listen "" "${extra[@]}" >"$COFFER_TEST_STATE/interop-$mode.log" 2>&1 &
  TLS_PIDS+=($!)
done
cleanup() { kill -TERM "$PID" "${TLS_PIDS[@]}" 2>/dev/null || true; }

if [ -z "$ONLY" ]; then
# One TLS policy for both listeners: TLS 1.2 and 1.3, never 1.1 or 1.0. The control shows that
# this openssl client does offer TLS 1.1 (to an openssl server that takes it).
tls_version_ok() { openssl s_client -connect "$1" "$2" -cipher 'DEFAULT:@SECLEVEL=0' </dev/null >/dev/null 2>&1; }
CTRL_PORT=$(free_port $((PORT + 40)))
openssl s_server -accept "127.0.0.1:$CTRL_PORT" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' -www \
  -cert "$COFFER_CERTS/server.crt" -key "$COFFER_CERTS/server.key" >/dev/null 2>&1 &
CTRL=$!
for _ in $(seq 1 50); do tls_version_ok "127.0.0.1:$CTRL_PORT" -tls1_1 && break; sleep 0.1; done
for _ in $(seq 1 100); do tls_version_ok "$COFFER_HTTPS_ADDR" -tls1_2 && break; sleep 0.1; done
if ! tls_version_ok "127.0.0.1:$CTRL_PORT" -tls1_1; then
  echo "FAIL: control: openssl does not speak TLS 1.1 here, so the check below proves nothing"; status=1
fi
for v in -tls1_1 -tls1; do
  for target in "$COFFER_TLS_ADDR gRPC" "$COFFER_HTTPS_ADDR HTTPS"; do
    set -- $target
    if tls_version_ok "$1" "$v"; then echo "FAIL: $2 accepts ${v#-}"; status=1; else echo "ok: $2 refuses ${v#-}"; fi
  done
done
for v in -tls1_2 -tls1_3; do
  tls_version_ok "$COFFER_HTTPS_ADDR" "$v" && echo "ok: HTTPS speaks ${v#-}" || { echo "FAIL: HTTPS refuses ${v#-}"; status=1; }
done
kill "$CTRL" 2>/dev/null; wait "$CTRL" 2>/dev/null || true
fi


export COFFER_ADMIN_TOKEN; COFFER_ADMIN_TOKEN=$(cat "$COFFER_ADMIN_TOKEN_FILE")
only=()
[ -z "$ONLY" ] || only=(-k "$ONLY")
PYTHONPATH="$GEN:$HERE" "$PY" -m unittest discover -s "$HERE" -p 'test_*.py' -v "${only[@]}" || status=1
[ -z "$ONLY" ] || exit $status

# libcoffer installed and used as its users do, the docs' examples, and the CLI's runtime commands.
COFFER_TEST_SANITIZE=${COFFER_TEST_SANITIZE:-0} "$ROOT/tests/client/run.sh" || status=1

kill -TERM "${TLS_PIDS[@]}" 2>/dev/null || true
for p in "${TLS_PIDS[@]}"; do wait_bounded "$p" 30 "a TLS cofferd after SIGTERM" || { echo "FAIL: a TLS cofferd exited non-zero"; status=1; }; done

# Graceful stop: a call in flight when SIGTERM arrives still completes; cofferd exits 0.
PYTHONPATH="$GEN:$HERE" "$PY" "$HERE/graceful_stop.py" || status=1
rc=0
wait_bounded "$PID" 30 "cofferd after SIGTERM" || rc=$?
trap - EXIT
if [ "$rc" -ne 0 ]; then echo "FAIL: cofferd exited $rc after SIGTERM"; status=1; else echo "ok: cofferd exited 0 after SIGTERM"; fi
grep -q '"msg":"stopped"' "$LOG" || { echo "FAIL: no 'stopped' line in the server log"; status=1; }
if grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$LOG"; then
  echo "FAIL: sanitizer report in the server log"; status=1
fi

# Canaries: secret values never reach the database files, the WAL or the server's output.
"$COFFER_TEST_PG_BIN/psql" "$DB" -qAtc "CHECKPOINT" >/dev/null
# A database dump (what a backup holds) has no value and no token secret either.
"$COFFER_TEST_PG_BIN/pg_dump" "$DB" >"$COFFER_TEST_STATE/interop-dump.sql"
values_in_dump=$(scan "VAL-$CANARY" "$COFFER_TEST_STATE/interop-dump.sql")
token_in_dump=$(scan "$COFFER_ADMIN_TOKEN" "$COFFER_TEST_STATE/interop-dump.sql")
control_in_dump=$(scan "DESC-$CANARY" "$COFFER_TEST_STATE/interop-dump.sql")
echo "dump scan: values $values_in_dump, admin token secret $token_in_dump, plaintext control $control_in_dump"
if [ "$values_in_dump" -ne 0 ] || [ "$token_in_dump" -ne 0 ] || [ "$control_in_dump" -eq 0 ]; then
  echo "FAIL: the dump holds a value or a token secret (or the control is missing)"; status=1
fi
values_in_db=$(scan "VAL-$CANARY" "$COFFER_TEST_PGDATA")
values_in_wal=$(scan "VAL-$CANARY" "$COFFER_TEST_PGDATA/pg_wal")
values_in_log=$(scan "VAL-$CANARY" "$LOG")
control_in_db=$(scan "DESC-$CANARY" "$COFFER_TEST_PGDATA")
echo "canary scan: values in database files $values_in_db, in WAL $values_in_wal, in server output $values_in_log; plaintext control (descriptions) in database files $control_in_db"
if [ "$control_in_db" -eq 0 ]; then echo "FAIL: the control canary was not found: the scan proves nothing"; status=1; fi
if [ "$values_in_db" -ne 0 ] || [ "$values_in_wal" -ne 0 ] || [ "$values_in_log" -ne 0 ]; then
  echo "FAIL: a secret value reached disk or the log in plaintext"; status=1
fi
# Key maintenance with the real binary, last: it replaces this database's root key.
COFFER_TEST_DATABASE_URL="$DB" "$ROOT/tests/keys/run.sh" || status=1
exit $status
