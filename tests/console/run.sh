#!/usr/bin/env bash
# tests/console/run.sh - the console in a real browser: puppeteer-core (pinned by
# package-lock.json) driving Debian's chromium, headless, against a real cofferd with --console;
# then scans of the server's log for canary values and the admin token.
# Called by scripts/dev test, which sets COFFER_TEST_* (a new database of its own, root key, build).
#
#   tests/console/run.sh [PATTERN]   only the tests whose name matches (--test-name-pattern)
set -euo pipefail
ONLY=${1:-}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
: "${COFFER_TEST_BUILD:?}" "${COFFER_TEST_ROOT_KEY_FILE:?}" "${COFFER_TEST_STATE:?}"
: "${COFFER_TEST_CONSOLE_DATABASE_URL:?a database of its own, new (scripts/dev db)}"
# shellcheck source=tests/lib.sh
. "$ROOT/tests/lib.sh"

NODE_DIR="$COFFER_TEST_STATE/console-node"
node_packages "$HERE" "$NODE_DIR" "$HERE/console.test.mjs"

CANARY="canary$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
LOG="$COFFER_TEST_STATE/console-cofferd.log"
PORT=$(free_port 27151)
HTTP_PORT=$(free_port $((PORT + 1)))
TOKEN_FILE="$COFFER_TEST_STATE/console-admin.token"
rm -f "$TOKEN_FILE"
COFFER_DATABASE_URL="$COFFER_TEST_CONSOLE_DATABASE_URL" COFFER_ROOT_KEY_FILE="$COFFER_TEST_ROOT_KEY_FILE" \
  "$COFFER_TEST_BUILD/bin/cofferd" serve --listen "127.0.0.1:$PORT" --migrate --log-level debug \
  --grace-seconds 5 --bootstrap-token-file "$TOKEN_FILE" --metrics-listen "" --console --console-reveal-seconds 3 \
  --http-listen "127.0.0.1:$HTTP_PORT" --watch-heartbeat-seconds 1 >"$LOG" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true' EXIT
wait_http_bootstrap $PID "$TOKEN_FILE" "$LOG" "http://127.0.0.1:$HTTP_PORT/"

status=0
args=(--test) # one file: its tests run one after another (Node 18 has no --test-concurrency)
[ -z "$ONLY" ] || args+=(--test-name-pattern "$ONLY")
COFFER_CONSOLE_URL="http://127.0.0.1:$HTTP_PORT" COFFER_CONSOLE_ADMIN_TOKEN_FILE="$TOKEN_FILE" \
  COFFER_CANARY="$CANARY" NODE_PATH="$NODE_DIR/node_modules" \
  timeout 600 node "${args[@]}" "$NODE_DIR/console.test.mjs" || status=1

kill -TERM $PID
wait_bounded $PID 20 "cofferd told SIGTERM" || status=1
trap - EXIT
if grep -qaF "$CANARY" "$LOG" || grep -qaF "$(cat "$TOKEN_FILE")" "$LOG"; then
  echo "FAIL: a canary value or the admin token is in the server's log"; status=1
else
  echo "ok: no canary value and no token in the server's log ($(wc -l <"$LOG") lines)"
fi
exit $status
