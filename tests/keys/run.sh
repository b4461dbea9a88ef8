#!/usr/bin/env bash
# tests/keys/run.sh - `cofferd keys` as an operator runs it, on the interop database (cofferd
# stopped): rotate; a rewrap killed with SIGKILL halfway, then run again to the end; verify; rekey
# to a new root key, after which cofferd refuses the old key and serves with the new one.
set -uo pipefail
: "${COFFER_TEST_BUILD:?}" "${COFFER_TEST_DATABASE_URL:?}" "${COFFER_TEST_ROOT_KEY_FILE:?}" "${COFFER_TEST_STATE:?}"
K="$COFFER_TEST_BUILD/bin/cofferd"
export COFFER_DATABASE_URL="$COFFER_TEST_DATABASE_URL" COFFER_ROOT_KEY_FILE="$COFFER_TEST_ROOT_KEY_FILE" COFFER_METRICS_LISTEN=
pass=0 fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
# shellcheck source=tests/lib.sh
. "$(cd "$(dirname "$0")/.." && pwd)/lib.sh"
old_terms() { "$K" keys status 2>/dev/null | grep -v '(active)' | awk '{s += $3} END {print s + 0}'; }

"$K" keys status >/dev/null && ok "keys status" || bad "keys status"
out=$("$K" keys rotate 2>&1) && grep -q "is active" <<<"$out" && ok "keys rotate: $out" || bad "keys rotate: $out"
before=$(old_terms)
[ "$before" -gt 10 ] || bad "expected rows on older terms after rotate, found $before"
"$K" keys rewrap --batch-size 1 --batch-delay-ms 40 >/dev/null 2>&1 &
pid=$!
sleep 0.5
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
mid=$(old_terms)
if [ "$mid" -lt "$before" ] && [ "$mid" -gt 0 ]; then ok "rewrap killed halfway: $((before - mid)) of $before rows moved"; else bad "rewrap kill: before $before, after $mid"; fi
# About 10 batches 150 ms apart, whatever the database holds: long enough to report progress.
batch=$(( mid / 10 + 1 ))
out=$("$K" keys rewrap --batch-size "$batch" --batch-delay-ms 150 2>"$COFFER_TEST_STATE/rewrap.err") && [ "$(old_terms)" -eq 0 ] &&
  ok "rewrap resumed: $out" || bad "rewrap resume: $out"
grep -qE '^cofferd keys rewrap: [0-9]+ of [0-9]+ value rows \([0-9]+%\), [0-9]+/s' "$COFFER_TEST_STATE/rewrap.err" &&
  ok "rewrap reports progress on stderr: $(head -1 "$COFFER_TEST_STATE/rewrap.err")" || bad "no progress: $(cat "$COFFER_TEST_STATE/rewrap.err")"
"$K" keys rewrap --batch-size 2 --no-such-option >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "an option keys rewrap does not take: exit 2" || bad "unknown option: exit $rc"
out=$("$K" help keys rewrap)
grep -q -- "--batch-delay-ms" <<<"$out" && ok "cofferd help keys rewrap shows its options" || bad "cofferd help"
out=$("$K" keys verify 2>&1) && grep -q " 0 do not" <<<"$out" && ok "keys verify: $(tail -1 <<<"$out")" || bad "verify: $out"

new_key="$COFFER_TEST_STATE/new-root.key"
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$new_key")
out=$("$K" keys rekey --new-root-key-file "$new_key" 2>&1) && ok "keys rekey" || bad "rekey: $out"
out=$(timeout 20 "$K" serve --listen 127.0.0.1:0 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "wrong root key" <<<"$out" && ok "cofferd refuses the old root key, saying so" || bad "old key: rc $rc: $out"
out=$(COFFER_ROOT_KEY_FILE="$new_key" "$K" keys verify 2>&1) && grep -q " 0 do not" <<<"$out" &&
  ok "every value opens under the new root key" || bad "verify with the new key: $out"
COFFER_ROOT_KEY_FILE="$new_key" "$K" serve --listen 127.0.0.1:50999 >"$COFFER_TEST_STATE/rekeyed.log" 2>&1 &
pid=$!
served=0
for _ in $(seq 1 50); do
  if COFFER_TOKEN=$(cat "$COFFER_ADMIN_TOKEN_FILE") "$COFFER_TEST_BUILD/bin/coffer" --addr 127.0.0.1:50999 \
       --json projects list >/dev/null 2>&1; then served=1; break; fi
  sleep 0.2
done
kill -TERM "$pid"; wait_bounded "$pid" 30 "cofferd after SIGTERM"
[ $served -eq 1 ] && ok "cofferd serves with the new root key (and the admin token still works)" || bad "serving with the new key"
echo "keys: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
