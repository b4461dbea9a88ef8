#!/usr/bin/env bash
# tests/connect/run.sh - the Connect interop suite: connect-es (Node, pinned by package-lock.json)
# against a real cofferd's HTTP listener, then a scan of the server's log for the canary values.
# Called by scripts/dev test, which sets COFFER_TEST_* (database, root key, build, state).
#
#   tests/connect/run.sh [PATTERN]   only the Node tests whose name matches (--test-name-pattern)
set -euo pipefail
ONLY=${1:-}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
: "${COFFER_TEST_BUILD:?}" "${COFFER_TEST_DATABASE_URL:?}" "${COFFER_TEST_ROOT_KEY_FILE:?}"
: "${COFFER_TEST_STATE:?}" "${COFFER_TEST_CONNECT_DATABASE_URL:?a database of its own, new (scripts/dev db)}"
# shellcheck source=tests/lib.sh
. "$ROOT/tests/lib.sh"

# connect-es and protobuf-es, as the lock file pins them, in the state folder.
NODE_DIR="$COFFER_TEST_STATE/connect-node"
node_packages "$HERE" "$NODE_DIR" "$HERE/connect.test.mjs"

# The registry the client uses, made at run time from our proto files: no code generation.
DESC="$COFFER_TEST_STATE/coffer.protoset"
protoc -I "$ROOT/proto" -I /usr/include --include_imports --descriptor_set_out="$DESC" \
  "$ROOT"/proto/coffer/v1/*.proto "$ROOT/proto/grpc/health/v1/health.proto"

CANARY="canary$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
LOG="$COFFER_TEST_STATE/connect-cofferd.log"
PORT=$(free_port 26151)
HTTP_PORT=$(free_port $((PORT + 1)))
TOKEN_FILE="$COFFER_TEST_STATE/connect-admin.token"
rm -f "$TOKEN_FILE"
# A new database: the bootstrap token is written on a database's first start only.
DB="$COFFER_TEST_CONNECT_DATABASE_URL"
COFFER_DATABASE_URL="$DB" COFFER_ROOT_KEY_FILE="$COFFER_TEST_ROOT_KEY_FILE" \
  "$COFFER_TEST_BUILD/bin/cofferd" serve --listen "127.0.0.1:$PORT" --migrate --log-level debug \
  --grace-seconds 5 --bootstrap-token-file "$TOKEN_FILE" --metrics-listen "" \
  --http-listen "127.0.0.1:$HTTP_PORT" --watch-heartbeat-seconds 1 >"$LOG" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true' EXIT
wait_http_bootstrap $PID "$TOKEN_FILE" "$LOG" -X POST -H 'Content-Type: application/json' -d '{}' \
  "http://127.0.0.1:$HTTP_PORT/grpc.health.v1.Health/Check"

status=0
args=(--test)
[ -z "$ONLY" ] || args+=(--test-name-pattern "$ONLY")
COFFER_CONNECT_URL="http://127.0.0.1:$HTTP_PORT" COFFER_CONNECT_ADMIN_TOKEN_FILE="$TOKEN_FILE" \
  COFFER_CONNECT_DESCRIPTORS="$DESC" COFFER_CANARY="$CANARY" \
  timeout 300 node "${args[@]}" "$NODE_DIR/connect.test.mjs" || status=1

# A console session ends when unused for --console-idle-minutes, and at its absolute end: the
# database's clock is moved for one session at a time.
psql_connect() { "${COFFER_TEST_PG_BIN:?}/psql" "$DB" -qAt -c "$1"; }
session() {
  curl -s -D - -o /dev/null -X POST -H "Authorization: Bearer $(cat "$TOKEN_FILE")" \
    -H 'Content-Type: application/json' -d '{}' "http://127.0.0.1:$HTTP_PORT/coffer.console.v1.Sessions/SignIn" |
    sed -n 's/^[Ss]et-[Cc]ookie: coffer_session=\([^;]*\).*/\1/p'
}
use() {
  curl -s -o /dev/null -w '%{http_code}' -X POST -H "Cookie: coffer_session=$1" \
    -H 'Content-Type: application/json' -d '{}' "http://127.0.0.1:$HTTP_PORT/coffer.v1.Projects/ListProjects"
}
S1=$(session); S2=$(session)
first=$(use "$S1")
# S1 is the second newest session, S2 the newest
psql_connect "UPDATE console_sessions SET last_seen = now() - interval '16 minutes' WHERE create_time = (SELECT create_time FROM console_sessions ORDER BY create_time DESC OFFSET 1 LIMIT 1)" >/dev/null
idle=$(use "$S1")
still=$(use "$S2")
psql_connect "UPDATE console_sessions SET expire_time = now() - interval '1 second' WHERE create_time = (SELECT max(create_time) FROM console_sessions)" >/dev/null
ended=$(use "$S2")
if [ "$first" = 200 ] && [ "$idle" = 401 ] && [ "$still" = 200 ] && [ "$ended" = 401 ]; then
  echo "ok: a console session ends after 15 idle minutes and at its absolute end"
else
  echo "FAIL: console session ends: first $first, idle $idle, the other $still, past its end $ended"; status=1
fi

# A watch left open over Connect (curl, by hand) ends with its end-of-stream message when cofferd
# stops, and the stop stays within its grace.
U="http://127.0.0.1:$HTTP_PORT"
ADMIN=$(cat "$TOKEN_FILE")
post() { curl -s -X POST -H "Authorization: Bearer $1" -H 'Content-Type: application/json' -d "$3" "$U/$2"; }
post "$ADMIN" coffer.v1.Projects/CreateProject '{"name":"connect-stop"}' >/dev/null
RT=$(post "$ADMIN" coffer.v1.Access/CreateToken '{"name":"connect-stop-rt","role":"ROLE_RUNTIME","project":"connect-stop"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])')
python3 -c 'import json, struct, sys
m = json.dumps({"project": "connect-stop", "environment": "main", "version": "VERSION_LIVE"}).encode()
sys.stdout.buffer.write(struct.pack(">BI", 0, len(m)) + m)' >"$COFFER_TEST_STATE/connect-watch.bin"
curl -s -N -X POST -H "Authorization: Bearer $RT" -H 'Content-Type: application/connect+json' \
  --data-binary @"$COFFER_TEST_STATE/connect-watch.bin" "$U/coffer.v1.Secrets/WatchSecrets" \
  >"$COFFER_TEST_STATE/connect-watch.out" &
CURL=$!
sleep 1.5

# A graceful stop within its grace, then no value in the log.
kill -TERM $PID
if wait_bounded $PID 20 "cofferd told SIGTERM"; then
  echo "ok: cofferd stops gracefully after the Connect suite"
else
  echo "FAIL: cofferd did not stop after the Connect suite"; status=1
fi
trap - EXIT
if wait_bounded $CURL 5 "curl's watch" && grep -qa '"heartbeat":true' "$COFFER_TEST_STATE/connect-watch.out" &&
  tail -c 200 "$COFFER_TEST_STATE/connect-watch.out" | grep -qa '{"error":{"code":"'; then
  echo "ok: an open watch heard heartbeats, then its end-of-stream message when cofferd stopped"
else
  echo "FAIL: the open watch at the stop: $(tr -c '[:print:]' '.' <"$COFFER_TEST_STATE/connect-watch.out" | tail -c 300)"
  status=1
fi
if grep -qaF "$S1" "$LOG" || grep -qaF "$S2" "$LOG"; then
  echo "FAIL: a console session's secret is in the server's log"; status=1
else
  echo "ok: no console session's secret in the server's log"
fi
if grep -qaF "$CANARY" "$LOG"; then
  echo "FAIL: a canary value is in the server's log"; status=1
else
  echo "ok: no canary value in the server's log ($(wc -l <"$LOG") lines)"
fi
if grep -q '"transport":"connect"' "$LOG"; then
  echo "ok: the call log says which calls came over Connect"
else
  echo "FAIL: no call log line says \"transport\":\"connect\""; status=1
fi
exit $status
