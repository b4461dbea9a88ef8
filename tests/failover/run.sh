#!/usr/bin/env bash
# tests/failover/run.sh - the failover suite (failover.py): a primary and a synchronous standby
# started here, two cofferd on the multi-host URL, load, then the standby away, a stop and
# promotion, a hang (SIGSTOP) and promotion, and a backup restored. Called by scripts/dev test,
# which sets COFFER_TEST_* (PostgreSQL's binaries and user, the build, the root key, a state
# folder).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
: "${COFFER_TEST_BUILD:?}" "${COFFER_TEST_STATE:?}" "${COFFER_TEST_PG_BIN:?}" "${COFFER_TEST_ROOT_KEY_FILE:?}"
[ -d "$COFFER_TEST_BUILD/py/coffer" ] || "$ROOT/tests/interop/stubs.sh" "$COFFER_TEST_BUILD"
# The suite's clusters live under the state folder when their owner can reach it (a checkout
# under a private home cannot be), else under /tmp.
DIR="$COFFER_TEST_STATE/failover"
mkdir -p "$DIR"
if [ "$(id -u)" -eq 0 ] && ! runuser -u "${COFFER_TEST_PG_USER:?}" -- test -x "$DIR" 2>/dev/null; then
  DIR=/tmp/coffer-failover-$(echo "$DIR" | md5sum | cut -c1-12)
fi
export COFFER_FAILOVER_DIR=$DIR
PYTHONPATH="$COFFER_TEST_BUILD/py" exec /usr/bin/python3 "$HERE/failover.py"
