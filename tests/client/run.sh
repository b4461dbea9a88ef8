#!/usr/bin/env bash
# tests/client/run.sh - libcoffer as its users get it: installed, found with pkg-config and CMake.
#   - installs the build into a prefix and seeds the docs' project with the installed coffer CLI;
#   - builds every EXAMPLE of docs/client/*.md with `pkg-config --cflags --libs coffer`, runs it
#     against the server (COFFER_ADDR) and compares its output with the page's OUTPUT;
#   - builds a CMake consumer with find_package(coffer) / coffer::client and runs it;
#   - checks `coffer run -- env`, `coffer export`, `coffer render` and the CLI's exit codes.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
: "${COFFER_TEST_BUILD:?}" "${COFFER_ADDR:?}"
PREFIX="$COFFER_TEST_BUILD/install"
WORK="$COFFER_TEST_BUILD/client-tests"
rm -rf "$PREFIX" "$WORK"
mkdir -p "$WORK"
cmake --install "$COFFER_TEST_BUILD" --prefix "$PREFIX" >/dev/null
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
CFLAGS_EXTRA=()
[ "${COFFER_TEST_SANITIZE:-0}" = 1 ] && CFLAGS_EXTRA=(-fsanitize=address,undefined)
COFFER="$PREFIX/bin/coffer"
# shellcheck source=tests/lib.sh
. "$ROOT/tests/lib.sh"
pass=0 fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

# The docs' project, exactly as docs/client/README.md seeds it, by an admin; then an editor and a
# runtime token for it (the examples that resolve run with the runtime token, the rest with the
# editor's).
export COFFER_TOKEN="${COFFER_ADMIN_TOKEN:?}"
"$COFFER" projects delete support-bot >/dev/null 2>&1 || true
"$COFFER" projects create support-bot >/dev/null
"$COFFER" secrets create support-bot OPENAI_API_KEY --value-stdin <<< 'sk-live-123' >/dev/null
"$COFFER" secrets create support-bot DB_PASSWORD --restricted --value-stdin <<< 'hunter2' >/dev/null
"$COFFER" envs create support-bot staging >/dev/null
"$COFFER" overrides set support-bot staging draft OPENAI_API_KEY --value-stdin <<< 'sk-test-456' >/dev/null
EDITOR_TOKEN=$("$COFFER" tokens create docs-editor --role editor --project support-bot 2>/dev/null)
RUNTIME_TOKEN=$("$COFFER" tokens create docs-runtime --role runtime --project support-bot 2>/dev/null)

# Every documented example: compiled against the installed library, run, output compared.
for page in "$ROOT"/docs/client/*.md; do
  name=$(basename "$page" .md)
  [ "$name" = README ] && continue
  src="$WORK/$name.c"
  awk '/^```c$/{on=1; next} /^```$/{if(on){exit}} on' "$page" >"$src"
  awk '/^## OUTPUT/{f=1} f && /^```text$/{on=1; next} on && /^```$/{exit} on' "$page" >"$WORK/$name.want"
  if [ ! -s "$src" ]; then bad "$name: no EXAMPLE"; continue; fi
  # shellcheck disable=SC2046
  if ! cc -Wall -Wextra -Werror "${CFLAGS_EXTRA[@]}" $(pkg-config --cflags coffer) "$src" \
      $(pkg-config --libs coffer) -o "$WORK/$name" 2>"$WORK/$name.cc.log"; then
    bad "$name: the example does not compile"; cat "$WORK/$name.cc.log"; continue
  fi
  token=$EDITOR_TOKEN
  grep -q 'coffer_resolve' "$src" && token=$RUNTIME_TOKEN
  if ! COFFER_TOKEN=$token "$WORK/$name" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
    bad "$name: the example failed"; cat "$WORK/$name.err"; continue
  fi
  if diff -u "$WORK/$name.want" "$WORK/$name.out"; then ok "docs/client/$name.md example"; else bad "$name: output differs from the page"; fi
done

# find_package(coffer) and coffer::client.
if cmake -S "$HERE/consumer" -B "$WORK/consumer" -DCMAKE_PREFIX_PATH="$PREFIX" \
     -DSANITIZE="${COFFER_TEST_SANITIZE:-0}" >"$WORK/consumer.log" 2>&1 &&
   cmake --build "$WORK/consumer" >>"$WORK/consumer.log" 2>&1 &&
   [ "$(COFFER_TOKEN=$RUNTIME_TOKEN "$WORK/consumer/consumer")" = "Bearer sk-test-456" ]; then
  ok "CMake consumer (find_package(coffer), coffer::client) resolves and renders"
else
  bad "CMake consumer"; cat "$WORK/consumer.log"
fi

# coffer run: the secrets in the child's environment, the token not; the child's exit status.
export COFFER_TOKEN=$RUNTIME_TOKEN
out=$("$COFFER" run --project support-bot --env staging --version draft -- env)
if grep -qx 'OPENAI_API_KEY=sk-test-456' <<<"$out" && grep -qx 'DB_PASSWORD=hunter2' <<<"$out" &&
   ! grep -q '^COFFER_TOKEN=' <<<"$out"; then
  ok "coffer run -- env shows the secrets and not COFFER_TOKEN"
else
  bad "coffer run -- env: $out"
fi
out=$("$COFFER" run --project support-bot --env main --version live --only OPENAI_API_KEY -- env)
if grep -qx 'OPENAI_API_KEY=sk-live-123' <<<"$out" && ! grep -q '^DB_PASSWORD=' <<<"$out"; then
  ok "coffer run --only limits the environment"
else
  bad "coffer run --only"
fi
set +e
"$COFFER" run --project support-bot --env main --version live -- sh -c 'exit 7'; rc=$?
[ $rc -eq 7 ] && ok "coffer run exits with the program's status" || bad "coffer run exit status $rc"
"$COFFER" run --project support-bot --env main --version live -- /nonexistent/program 2>/dev/null; rc=$?
[ $rc -eq 127 ] && ok "coffer run exits 127 when the program cannot start" || bad "exit $rc for a missing program"
"$COFFER" run --project support-bot --env main --version live --only NOPE -- true 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && grep -q 'NOT_FOUND' "$WORK/err" && ok "coffer run --only with an unknown secret fails" || bad "run --only NOPE: $rc"
"$COFFER" resolve --project support-bot --env prod --version live 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && grep -q '^coffer: NOT_FOUND: ' "$WORK/err" && ok "a refused call exits 1 with the code name" || bad "resolve NOT_FOUND: $rc"
"$COFFER" resolve --project other --env main --version live 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && grep -q '^coffer: PERMISSION_DENIED: ' "$WORK/err" && ok "a runtime token of another project is refused" || bad "other project: $rc"
COFFER_TOKEN= "$COFFER" resolve --project support-bot --env main --version live 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && grep -q '^coffer: UNAUTHENTICATED: ' "$WORK/err" && ok "no token: UNAUTHENTICATED" || bad "no token: $rc"
"$COFFER" --addr 127.0.0.1:1 --timeout-ms 1500 resolve --project p --env main --version live 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && grep -q '^coffer: UNAVAILABLE: ' "$WORK/err" && ok "server down: exit 1, UNAVAILABLE" || bad "server down: $rc $(cat "$WORK/err")"
"$COFFER" resolve --project p 2>/dev/null; rc=$?
[ $rc -eq 2 ] && ok "a usage error exits 2" || bad "usage error exit $rc"
set -e

# export and render
[ "$("$COFFER" export --project support-bot --env staging --version draft)" = "$(printf 'DB_PASSWORD="hunter2"\nOPENAI_API_KEY="sk-test-456"')" ] &&
  ok "coffer export --format dotenv" || bad "coffer export dotenv"
[ "$("$COFFER" export --project support-bot --env main --version live --format json)" = '{"DB_PASSWORD":"hunter2","OPENAI_API_KEY":"sk-live-123"}' ] &&
  ok "coffer export --format json" || bad "coffer export json"
[ "$(printf 'key={secret.OPENAI_API_KEY} {{literal}' | "$COFFER" render --project support-bot --env staging --version draft)" = 'key=sk-test-456 {literal}' ] &&
  ok "coffer render" || bad "coffer render"
merged=$(COFFER_TOKEN=$EDITOR_TOKEN "$COFFER" --json merge support-bot staging --dry-run)
[ "$merged" = '{"applied":false,"revision":5,"live_overrides_applied":0,"changes":[{"secret":"OPENAI_API_KEY","version":"draft","kind":"added"}]}' ] &&
  ok "coffer merge --dry-run" || bad "merge dry run: $merged"

# tokens and audit from the CLI
set +e
export COFFER_TOKEN=$COFFER_ADMIN_TOKEN
created=$("$COFFER" --json tokens create ci-viewer --role viewer --project support-bot)
tid=$(sed -n 's/.*"id":"\(tok_[0-9a-f]*\)".*/\1/p' <<<"$created")
tsecret=$(sed -n 's/.*"secret":"\(coffer_[A-Za-z0-9]*\)".*/\1/p' <<<"$created")
[ -n "$tid" ] && [ -n "$tsecret" ] && ok "coffer tokens create" || bad "tokens create: $created"
"$COFFER" tokens list --project support-bot | grep -q "^$tid .*viewer.*ci-viewer" && ok "coffer tokens list" || bad "tokens list"
COFFER_TOKEN=$tsecret "$COFFER" secrets list support-bot >/dev/null && ok "a viewer token lists secrets" || bad "viewer list"
COFFER_TOKEN=$tsecret "$COFFER" secrets reveal support-bot OPENAI_API_KEY 2>"$WORK/err"
grep -q "^coffer: PERMISSION_DENIED" "$WORK/err" && ok "a viewer token may not reveal" || bad "viewer reveal"
"$COFFER" tokens revoke "$tid" && ! COFFER_TOKEN=$tsecret "$COFFER" secrets list support-bot 2>"$WORK/err" &&
  grep -q UNAUTHENTICATED "$WORK/err" && ok "coffer tokens revoke: refused at once" || bad "revoke"
audit=$("$COFFER" audit --project support-bot)
grep -q "ResolveSecrets .*OK" <<<"$audit" && grep -q "RevealSecret .*PERMISSION_DENIED" <<<"$audit" &&
  grep -q "$tid" <<<"$audit" && ok "coffer audit shows resolves and refused calls with token ids" || bad "audit: $audit"
set -e

# Secrets that would change how programs start are not put in their environment by default.
export COFFER_TOKEN=$COFFER_ADMIN_TOKEN
"$COFFER" projects create risky >/dev/null
"$COFFER" secrets create risky LD_PRELOAD --value-stdin <<< '/tmp/evil.so' >/dev/null
"$COFFER" secrets create risky SAFE_NAME --value-stdin <<< 'fine' >/dev/null
RISKY_RT=$("$COFFER" tokens create risky-runtime --role runtime --project risky 2>/dev/null)
export COFFER_TOKEN=$RISKY_RT
rm -f "$WORK/started"
set +e
"$COFFER" run --project risky --env main --version live -- touch "$WORK/started" 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && [ ! -e "$WORK/started" ] && grep -q 'secret "LD_PRELOAD" would set the environment variable LD_PRELOAD' "$WORK/err" &&
  grep -q -- "--allow-names LD_PRELOAD" "$WORK/err" && ! grep -q "/tmp/evil.so" "$WORK/err" &&
  ok "coffer run refuses LD_PRELOAD, starts nothing, names it (not its value)" || bad "run LD_PRELOAD: $rc $(cat "$WORK/err")"
"$COFFER" export --project risky --env main --version live >"$WORK/out" 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && [ ! -s "$WORK/out" ] && grep -q LD_PRELOAD "$WORK/err" &&
  ok "coffer export refuses it too, printing nothing" || bad "export LD_PRELOAD: $rc $(cat "$WORK/out")"
out=$("$COFFER" run --project risky --env main --version live --only SAFE_NAME -- env); rc=$?
[ $rc -eq 0 ] && grep -qx 'SAFE_NAME=fine' <<<"$out" && ok "--only with safe names runs" || bad "--only SAFE_NAME: $rc"
out=$("$COFFER" run --project risky --env main --version live --allow-names LD_PRELOAD -- sh -c 'echo "$LD_PRELOAD"' 2>/dev/null); rc=$?
[ "$out" = "/tmp/evil.so" ] && ok "--allow-names LD_PRELOAD lets it through" || bad "--allow-names: $rc $out"
set -e

# The CLI's command table: what it refuses before making any call, and what it says.
set +e
export COFFER_TOKEN=$COFFER_ADMIN_TOKEN
"$COFFER" secrets delete support-bot OPENAI_API_KEY --expected-revison 5 2>"$WORK/err"; rc=$?
[ $rc -eq 2 ] && grep -q "does not take --expected-revison" "$WORK/err" &&
  "$COFFER" secrets get support-bot OPENAI_API_KEY >/dev/null &&
  ok "an option the command does not declare: exit 2, named, and nothing deleted" || bad "typo option: $rc $(cat "$WORK/err")"
"$COFFER" secrets create support-bot NEW_ONE s3cr3t-in-argv 2>"$WORK/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--value-stdin or --value-file, never from the command line" "$WORK/err" &&
  ! grep -q "s3cr3t-in-argv" "$WORK/err" && ! "$COFFER" secrets get support-bot NEW_ONE >/dev/null 2>&1 &&
  ok "a value in argv: exit 2, saying where values come from" || bad "value in argv: $rc $(cat "$WORK/err")"
"$COFFER" --timeout-ms soon projects list >"$WORK/out" 2>"$WORK/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--timeout-ms takes a number of milliseconds" "$WORK/err" && [ ! -s "$WORK/out" ] &&
  ok "a --timeout-ms that is no number: exit 2 before any call" || bad "bad timeout: $rc $(cat "$WORK/err")"
"$COFFER" secrets 2>"$WORK/err"; rc=$?
[ $rc -eq 2 ] && grep -q "secrets needs a verb: create, get, list, update, delete, reveal" "$WORK/err" &&
  ok "a missing verb lists the verbs" || bad "missing verb: $rc $(cat "$WORK/err")"
"$COFFER" --addr 127.0.0.1:1 --timeout-ms 1000 projects list >"$WORK/out" 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && [ ! -s "$WORK/out" ] && grep -q UNAVAILABLE "$WORK/err" &&
  ok "no output before the call succeeded (projects list, server down)" || bad "output before failure: $rc $(cat "$WORK/out")"
out=$("$COFFER" help secrets create); rc=$?
[ $rc -eq 0 ] && grep -q -- "--value-file" <<<"$out" && grep -q -- "--restricted" <<<"$out" &&
  ok "coffer help secrets create shows its options" || bad "help: $out"
out=$("$COFFER" --help)
grep -q "tokens revoke ID" <<<"$out" && ok "coffer --help lists every command" || bad "--help"
# libcoffer exports its API and the generated messages, nothing of its own insides.
exports=$(nm -D --defined-only "$PREFIX/lib/libcoffer.so" | awk '{print $3}')
leaks=$(printf '%s\n' "$exports" |
  grep -v -E '^(coffer_(options|client|channel|resolve|snapshot|code|watch|fallback)_?[a-z_]*|coffer_v1_[a-z_]+|grpc_health_v1_[a-z_]+|coffer__v1__[a-z_]+|google__protobuf__[a-z_]+|grpc__[a-z0-9_]+|_init|_fini)$' |
  grep -v -E '^(__odr_asan|__asan|__ubsan|_edata|_end|__bss_start)')
[ -z "$leaks" ] && grep -qx 'coffer_resolve' <<<"$exports" &&
  ok "nm -D libcoffer.so: only the public API and message types" || bad "exported internals: $leaks"
set -e

# ---- runtimes that keep running: the token's own scope, coffer watch, run --watch, fallbacks ----
set +e
export COFFER_TOKEN=$COFFER_ADMIN_TOKEN
"$COFFER" projects create keeprun >/dev/null
"$COFFER" secrets create keeprun API_KEY --value-stdin <<< 'v1' >/dev/null
"$COFFER" secrets create keeprun OTHER --value-stdin <<< 'o1' >/dev/null
SCOPED=$("$COFFER" tokens create keeprun-rt --role runtime --project keeprun --envs main --versions live 2>/dev/null)
WIDE=$("$COFFER" tokens create keeprun-wide --role runtime --project keeprun 2>/dev/null)
upd() { COFFER_TOKEN=$COFFER_ADMIN_TOKEN "$COFFER" secrets update keeprun "$1" --value-stdin <<< "$2" >/dev/null; }
wait_for() { for _ in $(seq 1 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# The WatchSecrets streams open on the cofferd whose metrics are at $1, and a wait until they reach
# $2: a watch "from now" must be open before the write it is to see.
streams() { curl -s "http://$1/metrics" | awk '/^coffer_watch_streams /{print $2}'; }
wait_streams() {
  for _ in $(seq 1 100); do [ "$(streams "$1")" -ge "$2" ] 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
: "${COFFER_METRICS_ADDR:?}"

out=$(COFFER_TOKEN=$SCOPED "$COFFER" run -- sh -c 'echo "$API_KEY"')
[ "$out" = v1 ] && ok "coffer run without flags resolves the runtime token's own scope" || bad "scope default: $out"
COFFER_TOKEN=$WIDE "$COFFER" run -- true 2>"$WORK/err"; rc=$?
[ $rc -eq 2 ] && grep -q "COFFER_PROJECT" "$WORK/err" && ok "a token of several environments needs them said" || bad "wide token: $rc"
out=$(COFFER_TOKEN=$WIDE COFFER_PROJECT=keeprun COFFER_ENV=main COFFER_VERSION=live "$COFFER" export)
grep -qx 'API_KEY="v1"' <<<"$out" && ok "COFFER_PROJECT, COFFER_ENV and COFFER_VERSION say what to resolve" || bad "env defaults: $out"

# coffer watch: a line per change, names only.
open_before=$(streams "$COFFER_METRICS_ADDR")
COFFER_TOKEN=$SCOPED "$COFFER" watch >"$WORK/watch.out" 2>&1 &
WATCHER=$!
wait_streams "$COFFER_METRICS_ADDR" $((open_before + 1)) || bad "coffer watch did not open its stream"
upd API_KEY v2
wait_for "$WORK/watch.out" ' API_KEY$' && ! grep -q v2 "$WORK/watch.out" &&
  ok "coffer watch prints the changed name (never the value)" || bad "coffer watch: $(cat "$WORK/watch.out")"
kill $WATCHER; wait_bounded $WATCHER 20 "coffer run (WATCHER) after SIGTERM" 2>/dev/null
COFFER_TOKEN=$SCOPED "$COFFER" --json watch --from-revision 1 >"$WORK/watch.json" 2>&1 &
WATCHER=$!
wait_for "$WORK/watch.json" '"changed":\["API_KEY","OTHER"\]' &&
  ok "coffer watch --json --from-revision: every change since, folded" || bad "watch json: $(cat "$WORK/watch.json")"
kill $WATCHER; wait_bounded $WATCHER 20 "coffer run (WATCHER) after SIGTERM" 2>/dev/null

# coffer run --watch: the program starts again with the new values; a burst is one restart;
# signals reach it; its status is coffer's.
cat >"$WORK/prog.sh" <<'PROG'
#!/bin/sh
echo "start $API_KEY $OTHER ${COFFER_TOKEN:-no-token}" >>"$PROG_LOG"
trap 'echo "got HUP" >>"$PROG_LOG"' HUP
trap 'echo "got TERM" >>"$PROG_LOG"; exit 3' TERM
while true; do sleep 0.05; done
PROG
chmod +x "$WORK/prog.sh"
export PROG_LOG="$WORK/prog.log"
rm -f "$PROG_LOG"
COFFER_TOKEN=$SCOPED "$COFFER" run --watch --restart-timeout 2s -- "$WORK/prog.sh" 2>"$WORK/sup.err" &
SUP=$!
wait_for "$PROG_LOG" '^start v2 o1 no-token$'
upd API_KEY v3; sleep 0.35; upd OTHER o2 # a rotation script, one call at a time
wait_for "$PROG_LOG" '^start v3 o2 no-token$' && [ "$(grep -c '^start' "$PROG_LOG")" -eq 2 ] &&
  grep -q '^got TERM$' "$PROG_LOG" && ok "run --watch: one restart for a burst, with the new values, never the token" ||
  bad "run --watch restart: $(cat "$PROG_LOG") $(cat "$WORK/sup.err")"
kill -HUP $SUP
wait_for "$PROG_LOG" '^got HUP$' && ok "a signal sent to coffer run reaches the program" || bad "HUP forward: $(cat "$PROG_LOG")"
kill -TERM $SUP; wait_bounded $SUP 20 "coffer run (SUP) after SIGTERM"; rc=$?
[ $rc -eq 3 ] && ok "coffer run --watch exits with the program's status" || bad "run --watch exit $rc"
rm -f "$PROG_LOG"
COFFER_TOKEN=$SCOPED "$COFFER" run --watch --on-change signal:HUP -- "$WORK/prog.sh" 2>"$WORK/sup.err" &
SUP=$!
wait_for "$PROG_LOG" '^start v3'
upd API_KEY v4
wait_for "$PROG_LOG" '^got HUP$' && [ "$(grep -c '^start' "$PROG_LOG")" -eq 1 ] &&
  ok "--on-change signal:HUP signals the program instead of restarting it" || bad "signal mode: $(cat "$PROG_LOG")"
kill -TERM $SUP; wait_bounded $SUP 20 "coffer run (SUP) after SIGTERM"
COFFER_TOKEN=$SCOPED "$COFFER" run --watch -- sh -c 'exit 7' 2>/dev/null; rc=$?
[ $rc -eq 7 ] && ok "a program that ends by itself: coffer run --watch exits with its status" || bad "run --watch own exit: $rc"
# A program that ignores the first SIGTERM is killed after --restart-timeout and started again.
cat >"$WORK/stubborn.sh" <<'PROG'
#!/bin/sh
echo "start $OTHER" >>"$PROG_LOG"
trap 'if [ -e "$PROG_LOG.once" ]; then exit 5; fi; touch "$PROG_LOG.once"; echo "ignored TERM" >>"$PROG_LOG"' TERM
while true; do sleep 0.05; done
PROG
chmod +x "$WORK/stubborn.sh"
rm -f "$PROG_LOG" "$PROG_LOG.once"
COFFER_TOKEN=$SCOPED "$COFFER" run --watch --restart-timeout 1s -- "$WORK/stubborn.sh" 2>"$WORK/sup.err" &
SUP=$!
wait_for "$PROG_LOG" '^start o2$'
upd OTHER o3
wait_for "$PROG_LOG" '^start o3$' && grep -q '^ignored TERM$' "$PROG_LOG" &&
  [ "$(grep -c '^start' "$PROG_LOG")" -eq 2 ] &&
  ok "a program that ignores SIGTERM is killed after --restart-timeout and started with the new values" ||
  bad "restart timeout: $(cat "$PROG_LOG") $(cat "$WORK/sup.err")"
kill -TERM $SUP; wait_bounded $SUP 20 "coffer run (SUP) after SIGTERM"; rc=$?
[ $rc -eq 5 ] || bad "stubborn program's exit: $rc"
# Every signal coffer run promises to forward reaches the program.
cat >"$WORK/sigs.sh" <<'PROG'
#!/bin/sh
echo start >>"$PROG_LOG"
for s in HUP INT QUIT USR1 USR2; do trap "echo got $s >>\"\$PROG_LOG\"" "$s"; done
trap 'echo got TERM >>"$PROG_LOG"; exit 0' TERM
while true; do sleep 0.05; done
PROG
chmod +x "$WORK/sigs.sh"
rm -f "$PROG_LOG"
COFFER_TOKEN=$SCOPED "$COFFER" run --watch -- "$WORK/sigs.sh" 2>"$WORK/sup.err" &
SUP=$!
wait_for "$PROG_LOG" '^start$'
for s in HUP INT QUIT USR1 USR2 TERM; do
  kill -"$s" $SUP
  wait_for "$PROG_LOG" "^got $s\$" && ok "SIG$s sent to coffer run reaches the program" || bad "SIG$s: $(cat "$PROG_LOG")"
done
wait_bounded $SUP 20 "coffer run --watch after the program's exit"
# A SIGTERM that comes while a restart is under way: the program is not started again.
cat >"$WORK/slowstop.sh" <<'PROG'
#!/bin/sh
echo "start $OTHER" >>"$PROG_LOG"
trap 'echo stopping >>"$PROG_LOG"; sleep 1; exit 4' TERM
while true; do sleep 0.05; done
PROG
chmod +x "$WORK/slowstop.sh"
rm -f "$PROG_LOG"
COFFER_TOKEN=$SCOPED "$COFFER" run --watch --restart-timeout 5s -- "$WORK/slowstop.sh" 2>"$WORK/sup.err" &
SUP=$!
wait_for "$PROG_LOG" '^start'
upd OTHER o4
wait_for "$PROG_LOG" '^stopping$' || bad "the restart did not begin: $(cat "$PROG_LOG")"
kill -TERM $SUP
wait_bounded $SUP 10 "coffer run --watch after a SIGTERM during a restart"; rc=$?
sleep 1.5
[ $rc -eq 4 ] && [ "$(grep -c '^start' "$PROG_LOG")" -eq 1 ] &&
  ok "a SIGTERM during a restart stops coffer run --watch; the program is not started again" ||
  bad "TERM during restart: $rc $(cat "$PROG_LOG")"
# The program's orphans come to coffer, which reaps them: no zombies, even as PID 1.
COFFER_TOKEN=$SCOPED "$COFFER" run --watch -- sh -c 'for i in 1 2 3; do (sleep 2 &); done; echo ready >>"$PROG_LOG"; sleep 30' 2>"$WORK/sup.err" &
SUP=$!
rm -f "$PROG_LOG"
wait_for "$PROG_LOG" '^ready$'
adopted=$(ps -o comm= --ppid $SUP | grep -c '^sleep$')
sleep 3
zombies=$(ps -o stat= --ppid $SUP | grep -c '^Z')
[ "$adopted" -ge 3 ] && [ "$zombies" -eq 0 ] &&
  ok "coffer run --watch adopts the program's orphans and reaps them" || bad "orphans: $adopted adopted, $zombies zombies"
kill -TERM $SUP; wait_bounded $SUP 20 "coffer run (SUP) after SIGTERM"
# The token is out of coffer's environment, and coffer is not dumpable: a program running as
# the same user reads the token neither from /proc/$PPID/environ nor from /proc/$PPID/cmdline.
# (As root the first check shows what is in the file; as nobody, the second, that it cannot be read.)
out=$(COFFER_TOKEN=$SCOPED "$COFFER" run --watch -- sh -c 'tr "\0" "\n" </proc/$PPID/environ; tr "\0" " " </proc/$PPID/cmdline; exit 0' 2>/dev/null)
! grep -qF "$SCOPED" <<<"$out" && grep -q '^PATH=' <<<"$out" &&
  ok "the token is not in /proc/\$PPID/environ of coffer run --watch" || bad "token in the supervisor's environment"
out=$(COFFER_TOKEN=$SCOPED "$COFFER" --token "$SCOPED" run --watch -- sh -c 'tr "\0" " " </proc/$PPID/cmdline; exit 0' 2>/dev/null)
! grep -qF "$SCOPED" <<<"$out" && grep -q -- '--token' <<<"$out" &&
  ok "--token is wiped from /proc/\$PPID/cmdline of coffer run --watch" || bad "token in the supervisor's command line: $out"
if id nobody >/dev/null 2>&1 && runuser -u nobody -- test -x "$COFFER"; then
  out=$(runuser -u nobody -- env COFFER_TOKEN="$SCOPED" COFFER_ADDR="$COFFER_ADDR" "$COFFER" run --watch -- sh -c 'cat /proc/$PPID/environ >/dev/null 2>&1 && echo readable || echo refused; exit 0' 2>/dev/null)
  [ "$out" = refused ] && ok "a program under coffer run --watch (same user) cannot read coffer's /proc/\$PPID/environ" ||
    bad "same-user /proc/\$PPID/environ: $out"
fi
# A watch refused because the token was revoked deletes the fallback snapshot.
created=$(COFFER_TOKEN=$COFFER_ADMIN_TOKEN "$COFFER" --json tokens create watched-doomed --role runtime --project keeprun --envs main --versions live)
wid=$(sed -n 's/.*"id":"\(tok_[0-9a-f]*\)".*/\1/p' <<<"$created")
wsecret=$(sed -n 's/.*"secret":"\(coffer_[A-Za-z0-9]*\)".*/\1/p' <<<"$created")
rm -f "$PROG_LOG" "$WORK/watched.snap"
open_before=$(streams "$COFFER_METRICS_ADDR")
COFFER_TOKEN=$wsecret "$COFFER" run --watch --fallback "$WORK/watched.snap" -- "$WORK/sigs.sh" 2>"$WORK/sup.err" &
SUP=$!
wait_for "$PROG_LOG" '^start$'
wait_streams "$COFFER_METRICS_ADDR" $((open_before + 1)) || bad "the watch did not open"
[ -s "$WORK/watched.snap" ] || bad "no snapshot written"
COFFER_TOKEN=$COFFER_ADMIN_TOKEN "$COFFER" tokens revoke "$wid" >/dev/null
wait_for "$WORK/sup.err" 'fallback snapshot .* is deleted' && [ ! -e "$WORK/watched.snap" ] &&
  ok "a watch refused for a revoked token deletes the fallback snapshot" || bad "revoked watch snapshot: $(cat "$WORK/sup.err")"
kill -TERM $SUP; wait_bounded $SUP 20 "coffer run (SUP) after SIGTERM"

# Fallback snapshots.
SNAP="$WORK/keeprun.snap"
rm -f "$SNAP"
out=$(COFFER_TOKEN=$SCOPED "$COFFER" run --fallback "$SNAP" -- sh -c 'echo "$API_KEY"')
[ "$out" = v4 ] && [ "$(stat -c %a "$SNAP")" = 600 ] && ! grep -q v4 "$SNAP" &&
  ok "--fallback writes a sealed snapshot of mode 0600" || bad "fallback write: $out $(stat -c %a "$SNAP")"
out=$(COFFER_TOKEN=$SCOPED "$COFFER" --addr 127.0.0.1:1 --timeout-ms 1500 run --fallback "$SNAP" -- sh -c 'echo "$API_KEY"' 2>"$WORK/err"); rc=$?
[ $rc -eq 0 ] && [ "$out" = v4 ] && grep -q "using the fallback snapshot" "$WORK/err" &&
  ok "cofferd unreachable: the program starts from the snapshot, and stderr says so" || bad "fallback use: $rc $out $(cat "$WORK/err")"
cp "$SNAP" "$WORK/tampered.snap"
# Flip one bit of a byte near the end (writing a fixed byte would change nothing 1 time in 256).
off=$(( $(stat -c %s "$SNAP") - 3 ))
byte=$(od -An -tu1 -j "$off" -N1 "$WORK/tampered.snap" | tr -d ' ')
printf "$(printf '\\%03o' $(( byte ^ 1 )))" | dd of="$WORK/tampered.snap" bs=1 seek="$off" conv=notrunc 2>/dev/null
cmp -s "$SNAP" "$WORK/tampered.snap" && bad "the tampered copy is the same as the snapshot"
COFFER_TOKEN=$SCOPED "$COFFER" --addr 127.0.0.1:1 --timeout-ms 1000 run --fallback "$WORK/tampered.snap" -- true 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && grep -q "does not open" "$WORK/err" && ok "a tampered snapshot is refused" || bad "tampered: $rc $(cat "$WORK/err")"
COFFER_TOKEN=$WIDE COFFER_PROJECT=keeprun COFFER_ENV=main COFFER_VERSION=draft "$COFFER" run --fallback "$SNAP" --fallback-only -- true 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && grep -q "not what was asked for" "$WORK/err" && ok "a snapshot of another environment or version is refused" || bad "wrong snapshot: $rc $(cat "$WORK/err")"
# A saved snapshot whose bound fields are edited (version, environment, project: the header of
# docs/client/coffer_resolve_fallback.md) opens for nothing: the header is the associated data.
patch_snap() { # FILE FIELD NEW: rewrites one field of the header in place
  /usr/bin/python3 - "$@" <<'PY'
import sys
path, field, new = sys.argv[1], sys.argv[2], sys.argv[3]
b = bytearray(open(path, "rb").read())
off = 8 + 1 + 16 + 24 + 8 + 8
plen = int.from_bytes(b[off:off + 2], "big")
elen = int.from_bytes(b[off + 2 + plen:off + 4 + plen], "big")
if field == "version":
    b[off + 4 + plen + elen] = int(new)
else:
    start = off + 2 if field == "project" else off + 4 + plen
    size = plen if field == "project" else elen
    assert len(new) == size
    b[start:start + size] = new.encode()
open(path, "wb").write(b)
PY
}
offline() { # PROJECT ENV VERSION FILE: an offline run from the snapshot FILE
  COFFER_TOKEN=$SCOPED COFFER_PROJECT=$1 COFFER_ENV=$2 COFFER_VERSION=$3 "$COFFER" --addr 127.0.0.1:1 \
    run --fallback "$4" --fallback-only -- sh -c 'echo "$API_KEY"' 2>"$WORK/err"
}
out=$(offline keeprun main live "$SNAP"); rc=$?
[ $rc -eq 0 ] && [ "$out" = v4 ] || bad "the unedited snapshot does not open: $rc $(cat "$WORK/err")"
for edit in "version 1 keeprun main draft" "environment mair keeprun mair live" "project keeprum keeprum main live"; do
  set -- $edit
  cp "$SNAP" "$WORK/edited.snap"
  patch_snap "$WORK/edited.snap" "$1" "$2"
  out=$(offline "$3" "$4" "$5" "$WORK/edited.snap"); rc=$?
  [ $rc -ne 0 ] && [ -z "$out" ] && grep -q "does not open" "$WORK/err" &&
    ok "a snapshot whose $1 was edited in its header opens for nothing" || bad "edited $1: $rc $out $(cat "$WORK/err")"
done
echo 'ci passphrase' >"$WORK/pass"; chmod 600 "$WORK/pass"
COFFER_TOKEN=$SCOPED "$COFFER" export --fallback "$WORK/pass.snap" --passphrase-file "$WORK/pass" >/dev/null
out=$(COFFER_TOKEN=$WIDE COFFER_PROJECT=keeprun COFFER_ENV=main COFFER_VERSION=live "$COFFER" export --fallback "$WORK/pass.snap" --passphrase-file "$WORK/pass" --fallback-only 2>/dev/null)
grep -qx 'API_KEY="v4"' <<<"$out" && ok "a snapshot sealed with a passphrase opens with any token and the passphrase" || bad "passphrase: $out"
chmod 640 "$WORK/pass"
COFFER_TOKEN=$WIDE COFFER_PROJECT=keeprun COFFER_ENV=main COFFER_VERSION=live "$COFFER" export --fallback "$WORK/pass.snap" --passphrase-file "$WORK/pass" --fallback-only >/dev/null 2>"$WORK/err"; rc=$?
[ $rc -ne 0 ] && grep -q "may be read by others (mode 640)" "$WORK/err" &&
  ok "a passphrase file others may read is refused" || bad "passphrase mode: $rc $(cat "$WORK/err")"
chmod 600 "$WORK/pass"
created=$(COFFER_TOKEN=$COFFER_ADMIN_TOKEN "$COFFER" --json tokens create doomed --role runtime --project keeprun --envs main --versions live)
did=$(sed -n 's/.*"id":"\(tok_[0-9a-f]*\)".*/\1/p' <<<"$created")
dsecret=$(sed -n 's/.*"secret":"\(coffer_[A-Za-z0-9]*\)".*/\1/p' <<<"$created")
COFFER_TOKEN=$dsecret "$COFFER" run --fallback "$WORK/doomed.snap" -- true
COFFER_TOKEN=$COFFER_ADMIN_TOKEN "$COFFER" tokens revoke "$did"
COFFER_TOKEN=$dsecret "$COFFER" run --project keeprun --env main --version live --fallback "$WORK/doomed.snap" -- true 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && grep -q UNAUTHENTICATED "$WORK/err" && [ ! -e "$WORK/doomed.snap" ] &&
  ok "a revoked token: refused, and its snapshot deleted (no fallback)" || bad "revoked fallback: $rc $(cat "$WORK/err")"
# An older snapshot put back in place of a newer one is refused (the revision marker beside it).
cp -p "$SNAP" "$WORK/older.snap"
upd OTHER o5
COFFER_TOKEN=$SCOPED "$COFFER" run --fallback "$SNAP" -- true || bad "snapshot refresh"
cp -p "$WORK/older.snap" "$SNAP"
out=$(offline keeprun main live "$SNAP"); rc=$?
[ $rc -ne 0 ] && [ -z "$out" ] && grep -q "older than revision" "$WORK/err" &&
  ok "an older snapshot put back in place of a newer one is refused" || bad "rolled-back snapshot: $rc $out $(cat "$WORK/err")"
COFFER_TOKEN=$SCOPED "$COFFER" run --fallback "$SNAP" -- true || bad "snapshot refresh"

# A cofferd of our own, stopped and started again under a running `coffer run --watch`; it lets a
# token hold one watch, so a second one is over the limit.
: "${COFFER_TEST_DATABASE_URL:?}" "${COFFER_TEST_ROOT_KEY_FILE:?}"
OWN_PORT=$(free_port 26100) # it must stay the same across a restart
OWN_ADDR=127.0.0.1:$OWN_PORT
OWN_METRICS=127.0.0.1:$(free_port $((OWN_PORT + 1)))
start_own() {
  COFFER_DATABASE_URL=$COFFER_TEST_DATABASE_URL COFFER_ROOT_KEY_FILE=$COFFER_TEST_ROOT_KEY_FILE \
    "$COFFER_TEST_BUILD/bin/cofferd" serve --listen "$OWN_ADDR" --metrics-listen "$OWN_METRICS" \
    --max-watches-per-token 1 >>"$WORK/own.log" 2>&1 &
  OWN=$!
  for _ in $(seq 1 100); do
    COFFER_TOKEN=$SCOPED "$COFFER" --addr "$OWN_ADDR" --timeout-ms 500 resolve >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
start_own || bad "own cofferd: $(tail -5 "$WORK/own.log")"
rm -f "$PROG_LOG" "$WORK/own.snap"
COFFER_TOKEN=$SCOPED "$COFFER" --addr "$OWN_ADDR" run --watch --fallback "$WORK/own.snap" -- "$WORK/prog.sh" 2>"$WORK/sup.err" &
SUP=$!
wait_for "$PROG_LOG" '^start v4 '
wait_streams "$OWN_METRICS" 1 || bad "coffer run --watch did not open its stream" # the token's one
COFFER_TOKEN=$SCOPED "$COFFER" --addr "$OWN_ADDR" run --watch -- sleep 30 2>"$WORK/sup2.err" &
SUP2=$!
wait_for "$WORK/sup2.err" 'trying again in' && kill -0 $SUP2 2>/dev/null &&
  ok "a watch over the token's limit: the program keeps running, the watch is tried again later" ||
  bad "watch limit: $(cat "$WORK/sup2.err")"
kill -TERM $SUP2; wait_bounded $SUP2 20 "coffer run (SUP2) after SIGTERM" 2>/dev/null
kill -TERM $OWN; wait_bounded $OWN 20 "the suite's own cofferd after SIGTERM"
sleep 1
out=$(COFFER_TOKEN=$SCOPED "$COFFER" --addr "$OWN_ADDR" --timeout-ms 1500 run --fallback "$WORK/own.snap" -- sh -c 'echo "$API_KEY"' 2>"$WORK/err"); rc=$?
kill -0 $SUP 2>/dev/null && [ "$(grep -c '^start' "$PROG_LOG")" -eq 1 ] && [ $rc -eq 0 ] && [ "$out" = v4 ] &&
  grep -q "using the fallback snapshot" "$WORK/err" &&
  ok "cofferd stopped: the watched program keeps running, and a new start uses the snapshot" ||
  bad "stopped server: $rc $out $(cat "$WORK/err") $(cat "$PROG_LOG")"
upd API_KEY v5 # through the other cofferd, while this one is down
start_own
wait_for "$PROG_LOG" '^start v5 ' && [ "$(grep -c '^start' "$PROG_LOG")" -eq 2 ] &&
  ok "cofferd back: the watch resumes and the change made meanwhile restarts the program" ||
  bad "resume after restart: $(cat "$PROG_LOG") $(cat "$WORK/sup.err")"
kill -TERM $SUP; wait_bounded $SUP 20 "coffer run (SUP) after SIGTERM" 2>/dev/null
kill -TERM $OWN; wait_bounded $OWN 20 "the suite's own cofferd after SIGTERM"

# ---- change sets: coffer apply and coffer secrets import ----
export COFFER_TOKEN=$COFFER_ADMIN_TOKEN
"$COFFER" projects create sets >/dev/null
"$COFFER" envs create sets staging >/dev/null
"$COFFER" secrets create sets DB_USER --value-stdin <<< 'app_v1' >/dev/null
"$COFFER" secrets create sets DB_PASSWORD --restricted --value-stdin <<< 'pw_v1' >/dev/null
SETS_RT=$("$COFFER" tokens create sets-rt --role runtime --project sets 2>/dev/null)
rev_of() { "$COFFER" --json projects get "$1" | sed -n 's/.*"revision":\([0-9]*\).*/\1/p'; }
cat >"$WORK/rotate.json" <<'JSON'
{"changes": [
  {"update_secret": {"name": "DB_USER", "value": "app_v2"}},
  {"update_secret": {"name": "DB_PASSWORD", "value": "pw_v2"}},
  {"create_secret": {"name": "DB_POOL", "value": "20"}},
  {"set_override": {"environment": "staging", "version": "draft", "secret": "DB_POOL", "value": "4"}}
]}
JSON
before=$(rev_of sets)
out=$("$COFFER" apply sets -f "$WORK/rotate.json" --dry-run)
[ "$(rev_of sets)" = "$before" ] && grep -q "dry run: 4 changes would make revision $((before + 1))" <<<"$out" &&
  ok "coffer apply --dry-run reports and writes nothing" || bad "apply dry run: $out"
"$COFFER" apply sets -f "$WORK/rotate.json" --expected-revision $((before - 1)) 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && grep -q ABORTED "$WORK/err" && [ "$(rev_of sets)" = "$before" ] &&
  ok "coffer apply --expected-revision: a stale set is ABORTED" || bad "apply cas: $rc $(cat "$WORK/err")"
out=$("$COFFER" apply sets -f - --expected-revision "$before" <"$WORK/rotate.json")
env_out=$(COFFER_TOKEN=$SETS_RT "$COFFER" export --project sets --env staging --version draft)
[ "$(rev_of sets)" = $((before + 1)) ] && grep -q "applied: 4 changes at revision $((before + 1))" <<<"$out" &&
  grep -qx 'DB_USER="app_v2"' <<<"$env_out" && grep -qx 'DB_PASSWORD="pw_v2"' <<<"$env_out" &&
  grep -qx 'DB_POOL="4"' <<<"$env_out" && ok "coffer apply -f -: four changes, one revision" || bad "apply: $out / $env_out"
printf '{"expected_revision": 1, "changes":[{"update_secret":{"name":"DB_USER","value":"app_v2b"}}]}' >"$WORK/stale.json"
"$COFFER" apply sets -f "$WORK/stale.json" 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && grep -q 'ABORTED' "$WORK/err" && ok "the file's expected_revision is checked" || bad "file cas: $rc $(cat "$WORK/err")"
"$COFFER" apply sets -f "$WORK/stale.json" --dry-run --expected-revision $((before + 1)) >/dev/null &&
  ok "--expected-revision wins over the file's" || bad "flag over file"
printf '{"changes":[{"update_secret":{"name":"DB_USER","value":"app_v3"}},{"delete_secret":{"name":"NOPE"}}]}' >"$WORK/bad.json"
"$COFFER" apply sets -f "$WORK/bad.json" 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && grep -q 'NOT_FOUND: change 1 (secret NOPE)' "$WORK/err" && ! grep -q app_v3 "$WORK/err" &&
  [ "$(rev_of sets)" = $((before + 1)) ] && ok "a failing change names itself, and nothing is written" || bad "apply bad: $rc $(cat "$WORK/err")"
# A misspelled or mistyped field would change less than the file says: refused by name, nothing
# written.
mistakes=(
  '{"changes":[{"update_secret":{"name":"DB_USER","value":"typo-canary","visiblity":"restricted"}}]}|change 0 (update_secret): unknown field "visiblity"'
  '{"changes":[{"create_secret":{"name":"NEW","value":"typo-canary","visibility":1}}]}|change 0 (create_secret): field "visibility" is not a string'
  '{"changes":[{"update_secrets":{"name":"DB_USER","value":"typo-canary"}}]}|change 0: unknown kind "update_secrets"'
  '{"expected_revision":"1","changes":[{"update_secret":{"name":"DB_USER","value":"typo-canary"}}]}|expected_revision is a whole number'
  '{"expected_revison":1,"changes":[{"update_secret":{"name":"DB_USER","value":"typo-canary"}}]}|unknown field "expected_revison"'
)
for m in "${mistakes[@]}"; do
  printf '%s' "${m%%|*}" >"$WORK/typo.json"
  "$COFFER" apply sets -f "$WORK/typo.json" 2>"$WORK/err"; rc=$?
  [ $rc -eq 2 ] && grep -qF "${m#*|}" "$WORK/err" && ! grep -q typo-canary "$WORK/err" &&
    [ "$(rev_of sets)" = $((before + 1)) ] && ok "apply refuses: ${m#*|}" || bad "apply typo: $rc $(cat "$WORK/err")"
done

# import: a .env of the common dialect into new defaults and updates, then into overrides.
cat >"$WORK/app.env" <<'ENV'
# the app's settings
export DB_USER=app_v4
DB_PASSWORD="pw \"v4\"\nsecond line"
GREETING='Hello $USER'
EMPTY=
ENV
printf 'TIMEOUT=30\r\n' >>"$WORK/app.env"
before=$(rev_of sets)
out=$("$COFFER" secrets import sets "$WORK/app.env")
env_out=$(COFFER_TOKEN=$SETS_RT "$COFFER" --json export --project sets --env main --version live --format json)
[ "$(rev_of sets)" = $((before + 1)) ] && grep -q 'changed  DB_USER' <<<"$out" && grep -q 'added    GREETING' <<<"$out" &&
  grep -qF '"DB_PASSWORD":"pw \"v4\"\nsecond line"' <<<"$env_out" && grep -qF '"GREETING":"Hello $USER"' <<<"$env_out" &&
  grep -qF '"EMPTY":""' <<<"$env_out" && grep -qF '"TIMEOUT":"30"' <<<"$env_out" &&
  ok "secrets import: a .env file creates and updates the defaults in one revision" || bad "import: $out / $env_out"
printf 'DB_USER=staging_user\nTIMEOUT=5\n' >"$WORK/staging.env"
"$COFFER" secrets import sets "$WORK/staging.env" --env staging --version live >/dev/null &&
  COFFER_TOKEN=$SETS_RT "$COFFER" export --project sets --env staging --version live | grep -qx 'TIMEOUT="5"' &&
  ok "secrets import --env --version sets one environment's overrides" || bad "import overrides"
before=$(rev_of sets)
printf 'OK_ONE=fine\nBROKEN="import-canary-value\n' >"$WORK/broken.env"
"$COFFER" secrets import sets "$WORK/broken.env" 2>"$WORK/err"; rc=$?
[ $rc -eq 2 ] && grep -q 'line 2: the double quote is never closed; nothing was written' "$WORK/err" &&
  ! grep -q canary "$WORK/err" && [ "$(rev_of sets)" = "$before" ] &&
  ok "an invalid line fails the import with its number, no value, nothing written" || bad "broken import: $rc $(cat "$WORK/err")"
printf 'GOOD=1\nCUT=abc\000import-canary\n' >"$WORK/nul.env"
"$COFFER" secrets import sets "$WORK/nul.env" 2>"$WORK/err"; rc=$?
[ $rc -eq 2 ] && grep -q 'line 2: a NUL byte' "$WORK/err" && ! grep -q import-canary "$WORK/err" &&
  ! "$COFFER" secrets get sets CUT >/dev/null 2>&1 && ok "a NUL byte in a .env is refused by line, nothing written" || bad "nul import: $rc $(cat "$WORK/err")"
printf 'GOOD=1\nbad name=import-canary\n' >"$WORK/badname.env"
"$COFFER" secrets import sets "$WORK/badname.env" 2>"$WORK/err"; rc=$?
[ $rc -eq 2 ] && grep -q 'line 2' "$WORK/err" && ! grep -q canary "$WORK/err" &&
  ok "a line without NAME=value is refused by number" || bad "bad name import: $rc $(cat "$WORK/err")"
printf 'A_NEW=1\nDB_POOL=x\n' >"$WORK/ov.env"
"$COFFER" secrets import sets "$WORK/ov.env" --env staging --version draft 2>"$WORK/err"; rc=$?
[ $rc -eq 1 ] && grep -q 'line 1: nothing was written' "$WORK/err" && grep -q 'change 0 (secret A_NEW)' "$WORK/err" &&
  ok "a change the server refuses is named by its file line" || bad "import refused line: $rc $(cat "$WORK/err")"

# Round trip: export, import into another project, resolve: the same values.
"$COFFER" secrets create sets TRICKY --value-stdin <<< 'q"uote \back $dollar `tick` caf'$'\xc3\xa9' >/dev/null
COFFER_TOKEN=$SETS_RT "$COFFER" export --project sets --env main --version live >"$WORK/round.env"
"$COFFER" projects create sets-copy >/dev/null
"$COFFER" secrets import sets-copy "$WORK/round.env" --restricted >/dev/null
COPY_RT=$("$COFFER" tokens create copy-rt --role runtime --project sets-copy 2>/dev/null)
COFFER_TOKEN=$COPY_RT "$COFFER" export --project sets-copy --env main --version live >"$WORK/round2.env"
COFFER_TOKEN=$SETS_RT "$COFFER" --json export --project sets --env main --version live --format json >"$WORK/round.json"
"$COFFER" projects create sets-json >/dev/null
"$COFFER" secrets import sets-json "$WORK/round.json" >/dev/null
JSON_RT=$("$COFFER" tokens create json-rt --role runtime --project sets-json 2>/dev/null)
COFFER_TOKEN=$JSON_RT "$COFFER" export --project sets-json --env main --version live >"$WORK/round3.env"
vis=$("$COFFER" secrets list sets-copy | awk 'NR > 1 { print $2 }' | sort -u)
[ "$vis" = restricted ] && ok "secrets import --restricted creates restricted secrets" || bad "import --restricted: $vis"
diff -u "$WORK/round.env" "$WORK/round2.env" && diff -u "$WORK/round.env" "$WORK/round3.env" &&
  [ "$(wc -l <"$WORK/round.env")" -ge 6 ] &&
  ok "export, import (dotenv and JSON) into another project, export: the same values" || bad "round trip differs"
set -e

echo "client: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
