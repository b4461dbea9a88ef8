#!/usr/bin/env bash
# bench/run.sh - the figures of docs/performance.md, measured side by side in one run.
#
# Run by `scripts/dev bench`, which builds, starts a PostgreSQL with fsync on and sets:
#   COFFER_BENCH_PG (psql command), COFFER_BENCH_PG_PORT, COFFER_BENCH_ROOT_KEY_FILE,
#   COFFER_BENCH_DIR (scratch), COFFER_BENCH_BIN (build/bin).
# Optional: COFFER_BENCH_SECONDS (per throughput figure, default 5), COFFER_BENCH_ONLY (a
# space-separated subset of: ceiling resolve http startup history growth merge memory replicas
# fanout),
# COFFER_BENCH_STARTUP_ROUNDS (paired rounds of the start-up figure, default 40),
# COFFER_BENCH_BEFORE_BIN (a folder holding the cofferd of an earlier commit: the ceiling figures
# then measure it too, in the same rounds, over a database of its own with the same workload;
# docs/performance.md says how to build one).
#
# Every throughput figure is from coffer-load (bench/load.c), which counts the gRPC status of
# every call; h2load's figures are printed beside the main ones with the status codes cofferd
# counted (/metrics), since h2load itself counts HTTP 200s only. Figures, not assertions.
set -euo pipefail

BIN=$COFFER_BENCH_BIN
DIR=$COFFER_BENCH_DIR
PSQL=$COFFER_BENCH_PG
SECS=${COFFER_BENCH_SECONDS:-5}
ONLY=${COFFER_BENCH_ONLY:-ceiling resolve http startup history growth merge memory replicas fanout}
mkdir -p "$DIR"
rm -f "$DIR"/*.log "$DIR"/*.token
RESULTS="$DIR/results.txt"
: >"$RESULTS"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
want() { [[ " $ONLY " == *" $1 "* ]]; }

# load LABEL ARGS...: runs coffer-load, prints its line, keeps its RESULT line.
load() {
  local label=$1; shift
  local out
  out=$("$BIN/coffer-load" --label "$label" "$@") || true
  printf '%s\n' "$out" | grep -v '^RESULT' >&2
  printf '%s\n' "$out" | grep '^RESULT' >>"$RESULTS" || true
}
# fig LABEL FIELD: a figure kept by load.
fig() { grep "^RESULT label=$1 " "$RESULTS" | tail -1 | tr ' ' '\n' | grep "^$2=" | cut -d= -f2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# h2load_rps URL TOKEN PAYLOAD: calls/s over 4 connections x 16 streams.
h2load_rps() {
  local url=$1 token=$2 payload=$3 args=()
  [ -n "$token" ] && args=(-H "authorization: Bearer $token")
  h2load -D "$SECS" --warm-up-time 1 -c 4 -m 16 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' \
    "${args[@]}" -d "$payload" "$url" 2>/dev/null | awk '/^finished in/ { print $4 }'
}

# Calls counted by cofferd's /metrics for METHOD (a substring), by code: "OK:n,UNAVAILABLE:m".
metric_codes() {
  curl -s "http://$1/metrics" | awk -v m="$2" -F'[{}]' '$1 == "coffer_calls_total" && index($2, m) {
    split($2, kv, ","); for (i in kv) if (kv[i] ~ /^code=/) { c = kv[i]; gsub(/code=|"/, "", c) }
    n = $3; gsub(/ /, "", n); printf "%s%s:%s", sep, c, n; sep = "," }'
}

DB_N=0
# start_cofferd NAME PORT METRICS_PORT [flags...]: a cofferd on its own database name.
start_cofferd() {
  local name=$1 port=$2 mport=$3; shift 3
  COFFER_DATABASE_URL="postgresql://coffer@127.0.0.1:$COFFER_BENCH_PG_PORT/${DB:-coffer_bench}" \
    COFFER_ROOT_KEY_FILE=$COFFER_BENCH_ROOT_KEY_FILE \
    "${CD_BIN:-$BIN/cofferd}" serve --migrate --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$mport" \
    --bootstrap-token-file "${TOKEN_FILE:-$DIR/admin.token}" --log-level warn "$@" >"$DIR/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
  for _ in $(seq 1 100); do
    "$BIN/coffer-load" --target "127.0.0.1:$port" --request health --count 1 >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  cat "$DIR/$name.log" >&2
  echo "bench: cofferd $name did not start" >&2
  exit 1
}
rss_mb() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

fresh_db() {
  DB=$1
  $PSQL -d postgres -qc "DROP DATABASE IF EXISTS $DB" >/dev/null
  $PSQL -d postgres -qc "CREATE DATABASE $DB" >/dev/null
}

C="$BIN/coffer"
ADDR=127.0.0.1:50961
MADDR=127.0.0.1:50962
printf '\x00\x00\x00\x00\x00' >"$DIR/health.grpc"

say "machine: $(nproc) cores; PostgreSQL fsync=$($PSQL -d postgres -tAc 'SHOW fsync')"

# ---- the workload: 50 secrets of 64 bytes, a runtime token, auth and audit on ----
fresh_db coffer_bench
start_cofferd main 50961 50962 --http-listen 127.0.0.1:50965
export COFFER_ADDR=$ADDR COFFER_PLAINTEXT=1
ADMIN=$(cat "$DIR/admin.token")
COFFER_TOKEN=$ADMIN "$C" projects create bench >/dev/null
COFFER_TOKEN=$ADMIN load seed-secrets --target $ADDR --request create-secret:bench --count 50 --concurrency 4
RUNTIME=$(COFFER_TOKEN=$ADMIN "$C" tokens create bench-runtime --role runtime --project bench)
RESOLVE=(--target $ADDR --token "$RUNTIME" --request resolve:bench:main:live)
# ResolveSecrets {project: "bench", environment: "main", version: VERSION_LIVE} as a gRPC frame.
printf '\x00\x00\x00\x00\x0f\x0a\x05bench\x12\x04main\x18\x02' >"$DIR/resolve.grpc"

# An earlier cofferd, when asked for, on a database of its own with the same workload.
BEFORE=${COFFER_BENCH_BEFORE_BIN:-}
if [ -n "$BEFORE" ] && want ceiling; then
  fresh_db coffer_bench_before
  rm -f "$DIR/before-admin.token"
  DB=coffer_bench_before CD_BIN="$BEFORE/cofferd" TOKEN_FILE="$DIR/before-admin.token" start_cofferd before 50973 50974
  DB=coffer_bench
  BADDR=127.0.0.1:50973
  BADMIN=$(cat "$DIR/before-admin.token")
  COFFER_TOKEN=$BADMIN "$C" --addr $BADDR projects create bench >/dev/null
  COFFER_TOKEN=$BADMIN load seed-before --target $BADDR --request create-secret:bench --count 50 --concurrency 4
  BRUNTIME=$(COFFER_TOKEN=$BADMIN "$C" --addr $BADDR tokens create bench-runtime --role runtime --project bench)
fi

# ---- the ceiling: a bare C-core server, cofferd's health check and a resolve, side by side ----
# The load generator is h2load (4 connections x 16 streams), which is not ours and costs the
# same per call for all three; three interleaved rounds, medians. h2load counts HTTP 200s, so
# the gRPC codes are cofferd's own counts (/metrics).
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
if want ceiling; then
  say "ceiling: bare gRPC C-core echo server, cofferd Health/Check and ResolveSecrets (h2load 4 x 16, 3 rounds)"
  "$BIN/coffer-echo-server" --listen 127.0.0.1:50971 --threads "$(nproc)" 2>/dev/null &
  ECHO=$!
  PIDS+=($ECHO)
  sleep 0.3
  h_before=$(metric_codes $MADDR Health/Check)
  r_before=$(metric_codes $MADDR ResolveSecrets)
  E=() H=() R=() BH=() BR=()
  for round in 1 2 3; do
    E+=("$(h2load_rps http://127.0.0.1:50971/grpc.health.v1.Health/Check "" "$DIR/health.grpc")")
    H+=("$(h2load_rps http://$ADDR/grpc.health.v1.Health/Check "" "$DIR/health.grpc")")
    R+=("$(h2load_rps http://$ADDR/coffer.v1.Secrets/ResolveSecrets "$RUNTIME" "$DIR/resolve.grpc")")
    echo "round $round (h2load 4 x 16): echo ${E[-1]}, health ${H[-1]}, resolve ${R[-1]} calls/s" >&2
    if [ -n "$BEFORE" ]; then
      BH+=("$(h2load_rps http://$BADDR/grpc.health.v1.Health/Check "" "$DIR/health.grpc")")
      BR+=("$(h2load_rps http://$BADDR/coffer.v1.Secrets/ResolveSecrets "$BRUNTIME" "$DIR/resolve.grpc")")
      echo "round $round, the earlier cofferd: health ${BH[-1]}, resolve ${BR[-1]} calls/s" >&2
    fi
  done
  if [ -n "$BEFORE" ]; then
    echo "the earlier cofferd counted ResolveSecrets $(metric_codes 127.0.0.1:50974 ResolveSecrets)" >&2
    echo "RESULT label=h2-before-health rps=$(median3 "${BH[@]}")" >>"$RESULTS"
    echo "RESULT label=h2-before-resolve rps=$(median3 "${BR[@]}")" >>"$RESULTS"
  fi
  echo "cofferd counted Health/Check $h_before before, $(metric_codes $MADDR Health/Check) after; ResolveSecrets $r_before before, $(metric_codes $MADDR ResolveSecrets) after" >&2
  echo "RESULT label=h2-echo rps=$(median3 "${E[@]}")" >>"$RESULTS"
  echo "RESULT label=h2-health rps=$(median3 "${H[@]}")" >>"$RESULTS"
  echo "RESULT label=h2-resolve rps=$(median3 "${R[@]}")" >>"$RESULTS"
  say "opening a resolve's 50 values of 64 B: each alone or one kept answer; XChaCha20-Poly1305 and AES-256-GCM"
  "$BIN/coffer-bench-seal" --values 50 --bytes 64 | tee "$DIR/seal.out" | grep -v '^RESULT' >&2
  grep '^RESULT' "$DIR/seal.out" >>"$RESULTS" || true
  say "the same with coffer-load (64 in flight, 4 connections; it counts every gRPC status and latency)"
  load echo --target 127.0.0.1:50971 --request health --concurrency 64 --connections 4 --seconds "$SECS"
  load health --target $ADDR --request health --concurrency 64 --connections 4 --seconds "$SECS"
  kill -TERM $ECHO
fi

# A second cofferd over the same database that keeps no rows in memory: every resolve reads
# PostgreSQL (the path of a cold cache), to show that path's cost too.
start_cofferd nocache 50963 50964 --cache-mb 0
COLD=(--target 127.0.0.1:50963 --token "$RUNTIME" --request resolve:bench:main:live)
if want resolve; then
  say "ResolveSecrets, 50 secrets, runtime token, audit on: 1, 16, 64 and 256 in flight"
  for n in 1 16 64 256; do
    load "resolve-$n" "${RESOLVE[@]}" --concurrency $n --connections 4 --seconds "$SECS"
    if [ -n "$BEFORE" ] && want ceiling && [ $n -le 16 ]; then
      load "before-resolve-$n" --target $BADDR --token "$BRUNTIME" --request resolve:bench:main:live \
        --concurrency $n --connections 4 --seconds "$SECS"
    fi
  done
  say "the same from PostgreSQL (no rows cached): 1 and 64 in flight"
  load "cold-1" "${COLD[@]}" --concurrency 1 --connections 1 --seconds "$SECS"
  load "cold-64" "${COLD[@]}" --concurrency 64 --connections 4 --seconds "$SECS"
fi

# ---- http: the same resolve over the HTTP/JSON endpoint, beside gRPC ----
if want http; then
  say "HTTP/JSON endpoint vs gRPC: the same resolve of 50 secrets, 32 in flight (HTTP/1.1: 32 connections)"
  load "grpc-32" "${RESOLVE[@]}" --concurrency 32 --connections 4 --seconds "$SECS"
  before=$(metric_codes $MADDR ResolveSecrets)
  out=$(h2load --h1 -D "$SECS" --warm-up-time 1 -c 32 -t 1 -H "authorization: Bearer $RUNTIME" \
    "http://127.0.0.1:50965/v1/projects/bench/environments/main/versions/live/secrets" 2>/dev/null || true)
  rps=$(awk '/^finished in/ { print $4 }' <<<"$out")
  codes=$(awk '/^status codes:/ { print $3, $5, $7, $9 }' <<<"$out")
  echo "http-32: $rps req/s; HTTP 2xx 3xx 4xx 5xx: $codes; cofferd counted ResolveSecrets $before before, $(metric_codes $MADDR ResolveSecrets) after" >&2
  echo "RESULT label=http-32 rps=$rps" >>"$RESULTS"
  say "Connect JSON vs gRPC: the same resolve, POST /coffer.v1.Secrets/ResolveSecrets, 32 connections"
  printf '%s' '{"project":"bench","environment":"main","version":"VERSION_LIVE"}' >"$DIR/resolve.json"
  before=$(metric_codes $MADDR ResolveSecrets)
  out=$(h2load --h1 -D "$SECS" --warm-up-time 1 -c 32 -t 1 -H "authorization: Bearer $RUNTIME" \
    -H 'content-type: application/json' -d "$DIR/resolve.json" \
    "http://127.0.0.1:50965/coffer.v1.Secrets/ResolveSecrets" 2>/dev/null || true)
  rps=$(awk '/^finished in/ { print $4 }' <<<"$out")
  codes=$(awk '/^status codes:/ { print $3, $5, $7, $9 }' <<<"$out")
  echo "connect-32: $rps req/s; HTTP 2xx 3xx 4xx 5xx: $codes; cofferd counted ResolveSecrets $before before, $(metric_codes $MADDR ResolveSecrets) after" >&2
  echo "RESULT label=connect-32 rps=$rps" >>"$RESULTS"
fi

# ---- startup: what `coffer run -- true` costs a program, paired against `true` ----
if want startup; then
  say "startup: coffer run -- true against true, paired; the CLI static (as built) and over the shared libcoffer"
  # A TLS cofferd beside the plaintext one, with a one-certificate CA file (a private CA, as in
  # a cluster) and with that certificate inside the system's CA bundle (what --ca-file costs
  # when it holds every public root).
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$DIR/tls.key" -out "$DIR/tls.crt" 2>/dev/null
  cat /etc/ssl/certs/ca-certificates.crt "$DIR/tls.crt" >"$DIR/tls-bundle.crt" 2>/dev/null || cp "$DIR/tls.crt" "$DIR/tls-bundle.crt"
  COFFER_DATABASE_URL="postgresql://coffer@127.0.0.1:$COFFER_BENCH_PG_PORT/coffer_bench" \
    COFFER_ROOT_KEY_FILE=$COFFER_BENCH_ROOT_KEY_FILE "$BIN/cofferd" serve --listen 127.0.0.1:50967 \
    --metrics-listen 127.0.0.1:50968 --tls-cert-file "$DIR/tls.crt" --tls-key-file "$DIR/tls.key" \
    --log-level warn >"$DIR/tls.log" 2>&1 &
  PID_tls=$!
  PIDS+=($PID_tls)
  TLS=(--addr 127.0.0.1:50967 --ca-file "$DIR/tls.crt")
  for _ in $(seq 1 100); do
    COFFER_TOKEN=$RUNTIME "$C" "${TLS[@]}" resolve --project bench --env main --version live >/dev/null 2>&1 && break
    sleep 0.1
  done
  # A token whose scope names one environment and one version: `coffer run` with no flags asks
  # WhoAmI first, the way a pod that holds only its token starts.
  SCOPED=$(COFFER_TOKEN=$ADMIN "$C" tokens create bench-scoped --role runtime --project bench --envs main --versions live)
  D="$BIN/coffer-dynamic"
  COFFER_TOKEN=$RUNTIME COFFER_PROJECT=bench COFFER_ENV=main COFFER_VERSION=live \
    "$BIN/coffer-bench-startup" --rounds "${COFFER_BENCH_STARTUP_ROUNDS:-40}" true \; \
    help="$C" help \; help-dynamic="$D" help \; \
    run="$C" run -- true \; run-dynamic="$D" run -- true \; \
    run-tls="$C" "${TLS[@]}" run -- true \; run-tls-dynamic="$D" "${TLS[@]}" run -- true \; \
    run-tls-roots="$C" --addr 127.0.0.1:50967 --ca-file "$DIR/tls-bundle.crt" run -- true >"$DIR/startup.out" || true
  env -u COFFER_PROJECT -u COFFER_ENV -u COFFER_VERSION COFFER_TOKEN="$SCOPED" \
    "$BIN/coffer-bench-startup" --rounds "${COFFER_BENCH_STARTUP_ROUNDS:-40}" true \; \
    run-scope="$C" run -- true >"$DIR/startup-scope.out" || true
  cat "$DIR/startup.out" "$DIR/startup-scope.out" | grep -v '^RESULT' >&2
  cat "$DIR/startup.out" "$DIR/startup-scope.out" | grep '^RESULT' >>"$RESULTS" || true
  kill -TERM "$PID_tls"
fi

# ---- history: the same after rewrites ----
if want history; then
  say "history: 2,000 rewrites of one secret, then 2,000 of another (4,000 in the project)"
  COFFER_TOKEN=$ADMIN load rewrite-a --target $ADDR --request rewrite:bench:S_1 --count 2000 --concurrency 8
  load "resolve-64-after-2000" "${RESOLVE[@]}" --concurrency 64 --connections 4 --seconds "$SECS"
  COFFER_TOKEN=$ADMIN load rewrite-b --target $ADDR --request rewrite:bench:S_2 --count 2000 --concurrency 8
  load "resolve-64-after-4000" "${RESOLVE[@]}" --concurrency 64 --connections 4 --seconds "$SECS"
  load "resolve-1-after-4000" "${RESOLVE[@]}" --concurrency 1 --connections 1 --seconds "$SECS"
  load "cold-64-after-4000" "${COLD[@]}" --concurrency 64 --connections 4 --seconds "$SECS"
  load "cold-1-after-4000" "${COLD[@]}" --concurrency 1 --connections 1 --seconds "$SECS"
fi

# ---- growth: a small project's resolve latency before and after 40,000 rows elsewhere ----
if want growth || want memory; then
  say "growth: a 50-secret project, one resolve at a time, before and after 40,000 more value rows"
  load "small-1-before" "${RESOLVE[@]}" --concurrency 1 --connections 1 --seconds "$SECS"
  load "small-cold-1-before" "${COLD[@]}" --concurrency 1 --connections 1 --seconds "$SECS"
  COFFER_TOKEN=$ADMIN load seed-projects --target $ADDR --request create-project:other --count 1000 --concurrency 8
  COFFER_TOKEN=$ADMIN load seed-rows --target $ADDR --request create-secret-spread:other:40 --count 40000 --concurrency 16
  $PSQL -d coffer_bench -qc "VACUUM ANALYZE" >/dev/null
  load "small-1-after" "${RESOLVE[@]}" --concurrency 1 --connections 1 --seconds "$SECS"
  load "small-cold-1-after" "${COLD[@]}" --concurrency 1 --connections 1 --seconds "$SECS"
fi

# ---- memory: 1,000 projects cached ----
if want memory; then
  say "memory: resolves over 1,000 projects of 40 secrets each, each with its runtime token"
  # Line i is the token of project other-i (resolve-spread calls project i with line i).
  seq 0 999 | COFFER_TOKEN=$ADMIN xargs -P 4 -I{} sh -c 'echo {} $("$0" tokens create r{} --role runtime --project other-{} 2>/dev/null)' "$C" |
    sort -n | cut -d' ' -f2 >"$DIR/spread.tokens"
  echo "cofferd RSS before: $(rss_mb "$PID_main") MB" >&2
  for _ in 1 2; do
    load "resolve-spread-1000" --target $ADDR --tokens "$DIR/spread.tokens" --request resolve-spread:other:1000:main:live \
      --concurrency 64 --connections 4 --seconds "$SECS"
  done
  RSS=$(rss_mb "$PID_main")
  echo "RSS mb=$RSS" >>"$RESULTS"
  echo "cofferd RSS with 1,000 projects cached: $RSS MB" >&2
  say "memory: 2,000 resolves parked at once for a revision not written yet"
  REV=$(COFFER_TOKEN=$ADMIN "$C" projects get bench --json | sed 's/.*"revision":\([0-9]*\).*/\1/')
  "$BIN/coffer-load" --label parked-2000 --target $ADDR --token "$RUNTIME" --connections 25 \
    --request "resolve-min:bench:main:live:$((REV + 1))" --concurrency 2000 --count 2000 >"$DIR/parked.out" &
  PARKER=$!
  sleep 1
  PARKED=$(curl -s "http://$MADDR/metrics" | awk '$1 == "coffer_waiting_for_revision" { print $2 }')
  RSS_PARKED=$(rss_mb "$PID_main")
  COFFER_TOKEN=$ADMIN load rewrite-wake --target $ADDR --request rewrite:bench:S_3 --count 1 --concurrency 1
  wait $PARKER || true
  grep -v '^RESULT' "$DIR/parked.out" >&2
  echo "PARKED n=$PARKED rss=$RSS_PARKED" >>"$RESULTS"
  echo "cofferd with $PARKED calls parked at once: RSS $RSS_PARKED MB" >&2
fi

# ---- merge: 10,000 overrides into main ----
if want merge; then
  say "merge: an environment with 5,000 draft and 5,000 live overrides into main"
  COFFER_TOKEN=$ADMIN "$C" projects create merge >/dev/null
  COFFER_TOKEN=$ADMIN load seed-merge-secrets --target $ADDR --request create-secret:merge --count 5000 --concurrency 16
  COFFER_TOKEN=$ADMIN "$C" envs create merge feature >/dev/null
  COFFER_TOKEN=$ADMIN load seed-merge-draft --target $ADDR --request set-override:merge:feature:draft --count 5000 --concurrency 16
  COFFER_TOKEN=$ADMIN load seed-merge-live --target $ADDR --request set-override:merge:feature:live --count 5000 --concurrency 16
  COFFER_TOKEN=$ADMIN load merge-10000 --target $ADDR --request merge:merge:feature:main --count 1 --concurrency 1
fi

[ -n "$BEFORE" ] && want ceiling && kill -TERM "$PID_before"
kill -TERM "$PID_main" "$PID_nocache"
wait "$PID_main" "$PID_nocache" 2>/dev/null || true

# ---- replicas: three cofferd over one database ----
if want replicas; then
  say "replicas: three cofferd over one database; a write, a revocation and a watch event seen on the others"
  fresh_db coffer_bench_replicas
  DB=coffer_bench_replicas
  rm -f "$DIR/admin.token"
  start_cofferd r1 50981 50982
  start_cofferd r2 50983 50984
  start_cofferd r3 50985 50986
  COFFER_TOKEN=$(cat "$DIR/admin.token") "$BIN/coffer-bench-replicas" --writer 127.0.0.1:50981 \
    --reader 127.0.0.1:50983 --reader 127.0.0.1:50985 --project spread --rounds 50 >"$DIR/replicas.out" || true
  grep -v '^RESULT' "$DIR/replicas.out" >&2
  grep '^RESULT' "$DIR/replicas.out" >>"$RESULTS" || true
  for r in r1 r2 r3; do eval "kill -TERM \$PID_$r"; done
fi

# ---- fanout: WatchSecrets at fleet scale, from grpc-js (a client that is not ours) ----
if want fanout; then
  : "${COFFER_BENCH_NODE:?the fan-out figure needs grpc-js (scripts/dev bench installs it)}"
  say "fan-out: 10,000 WatchSecrets streams opened at once over 20 connections (grpc-js), then 5 writes"
  fresh_db coffer_bench_fanout
  DB=coffer_bench_fanout
  rm -f "$DIR/admin.token"
  start_cofferd fan 50991 50992 --max-streams 20000 --max-watches-per-token 20000 \
    --max-streams-per-connection 1000
  FADMIN=$(cat "$DIR/admin.token")
  COFFER_TOKEN=$FADMIN "$C" --addr 127.0.0.1:50991 projects create fleet >/dev/null
  COFFER_TOKEN=$FADMIN "$C" --addr 127.0.0.1:50991 secrets create fleet S --value-stdin <<<'v0' >/dev/null
  COFFER_TOKEN=$FADMIN load seed-fleet --target 127.0.0.1:50991 --request create-secret:fleet --count 50 --concurrency 4
  FRT=$(COFFER_TOKEN=$FADMIN "$C" --addr 127.0.0.1:50991 tokens create fleet-rt --role runtime --project fleet)
  # Writes measured during the burst go to a project nobody watches: the question is whether
  # watch work holds up calls (a write into the watched project is also an event for every stream).
  COFFER_TOKEN=$FADMIN "$C" --addr 127.0.0.1:50991 projects create quiet >/dev/null
  COFFER_TOKEN=$FADMIN load seed-quiet --target 127.0.0.1:50991 --request create-secret:quiet --count 5 --concurrency 1
  RSS_IDLE=$(rss_mb "$PID_fan")
  # The client runs at the lowest priority: a fleet's pods are other machines, and their CPU is
  # not the server's (on these two cores it would otherwise be).
  fanout() { # N W LABEL: N streams, W writes; the RESULT line goes to the results
    nice -n 19 node "$COFFER_BENCH_NODE/fanout.mjs" --target 127.0.0.1:50991 --proto "$(dirname "$0")/../proto" \
      --token "$FRT" --admin "$FADMIN" --project fleet --streams "$1" --connections 20 \
      --writes "$2" --label "$3" >"$DIR/$3.out" 2>"$DIR/$3.err" &
    FANOUT=$!
  }
  fanout 10000 5 fanout-10000
  peak=0
  for _ in $(seq 1 1200); do # the RSS once every stream is open
    n=$(curl -s "http://127.0.0.1:50992/metrics" | awk '$1 == "coffer_watch_streams" { print $2 }')
    [ "${n:-0}" -ge 10000 ] && break
    kill -0 $FANOUT 2>/dev/null || break
    sleep 0.1
  done
  RSS_OPEN=$(rss_mb "$PID_fan")
  wait $FANOUT || true
  cat "$DIR/fanout-10000.err" >&2
  grep '^RESULT' "$DIR/fanout-10000.out" >>"$RESULTS" || true
  PER=$(awk -v a="$RSS_OPEN" -v b="$RSS_IDLE" 'BEGIN { printf "%.1f", (a - b) * 1024 / 10000 }')
  echo "FANOUT rss_idle=$RSS_IDLE rss_open=$RSS_OPEN kb_per_stream=$PER" >>"$RESULTS"
  echo "cofferd RSS: $RSS_IDLE MB before, $RSS_OPEN MB with 10,000 streams open: $PER KB a stream" >&2
  # Unary calls during a burst of 2,000 openings, beside the same calls without one.
  say "fan-out: a resolve and a write during a burst of 2,000 stream openings, beside the same without it"
  FRES=(--target 127.0.0.1:50991 --token "$FRT" --request resolve:fleet:main:live --concurrency 2 --connections 1 --seconds 4)
  FWRI=(--target 127.0.0.1:50991 --token "$FADMIN" --request rewrite:quiet:S_1 --concurrency 1 --connections 1 --seconds 4)
  load quiet-resolve "${FRES[@]}" & Q1=$!
  load quiet-write "${FWRI[@]}" & Q2=$!
  wait $Q1 $Q2
  fanout 2000 0 burst-2000
  load burst-resolve "${FRES[@]}" & B1=$!
  load burst-write "${FWRI[@]}" & B2=$!
  wait $B1 $B2 $FANOUT || true
  cat "$DIR/burst-2000.err" >&2
  kill -TERM "$PID_fan"
fi

# ---- the table ----
echo
echo "figure                                              value        ratio (target)"
row() { printf '%-50s %-12s %s\n' "$1" "$2" "$3"; }
if want ceiling; then
  row "h2load 4 x 16, medians of 3: echo server, calls/s" "$(fig h2-echo rps)" ""
  row "  cofferd Health/Check, calls/s" "$(fig h2-health rps)" "$(ratio "$(fig h2-health rps)" "$(fig h2-echo rps)") of echo (>= 0.7)"
  row "  cofferd ResolveSecrets (50 x 64 B), calls/s" "$(fig h2-resolve rps)" "$(ratio "$(fig h2-resolve rps)" "$(fig h2-health rps)") of Health/Check (>= 0.5)"
  if [ -n "$BEFORE" ]; then
    row "  the earlier cofferd: Health/Check, calls/s" "$(fig h2-before-health rps)" "$(ratio "$(fig h2-before-health rps)" "$(fig h2-echo rps)") of echo"
    row "  the earlier cofferd: ResolveSecrets, calls/s" "$(fig h2-before-resolve rps)" "$(ratio "$(fig h2-before-resolve rps)" "$(fig h2-before-health rps)") of its Health/Check; now $(ratio "$(fig h2-resolve rps)" "$(fig h2-before-resolve rps)")x"
  fi
  row "opening 50 values, us: XChaCha each / one blob" "$(fig seal xchacha_each_us)" "$(fig seal xchacha_blob_us) blob; AES-256-GCM $(fig seal aesgcm_each_us) each, $(fig seal aesgcm_blob_us) blob"
  row "coffer-load 64 in flight: echo server, calls/s" "$(fig echo rps)" ""
  row "  cofferd Health/Check, calls/s" "$(fig health rps)" "$(ratio "$(fig health rps)" "$(fig echo rps)") of echo"
fi
if want resolve; then
  for n in 1 16 64 256; do
    row "ResolveSecrets, $n in flight: calls/s, p50/p99 ms" "$(fig resolve-$n rps)" "p50 $(fig resolve-$n p50_ms)  p99 $(fig resolve-$n p99_ms)"
  done
  want ceiling && row "ResolveSecrets 64 / Health/Check (coffer-load)" "" "$(ratio "$(fig resolve-64 rps)" "$(fig health rps)")"
  row "ResolveSecrets p99 at 16 in flight, ms" "$(fig resolve-16 p99_ms)" "(<= 2)"
  if [ -n "$BEFORE" ] && want ceiling; then
    for n in 1 16; do
      row "  the earlier cofferd, $n in flight" "$(fig before-resolve-$n rps)" "p50 $(fig before-resolve-$n p50_ms)  p99 $(fig before-resolve-$n p99_ms)"
    done
  fi
  row "from PostgreSQL, 1 in flight: calls/s, p50/p99 ms" "$(fig cold-1 rps)" "p50 $(fig cold-1 p50_ms)  p99 $(fig cold-1 p99_ms)"
  row "from PostgreSQL, 64 in flight: calls/s, p50/p99 ms" "$(fig cold-64 rps)" "p50 $(fig cold-64 p50_ms)  p99 $(fig cold-64 p99_ms)"
fi
if want http; then
  row "resolve over HTTP/JSON, 32 connections, req/s" "$(fig http-32 rps)" "$(ratio "$(fig http-32 rps)" "$(fig grpc-32 rps)") of gRPC at 32 in flight ($(fig grpc-32 rps)/s)"
  row "resolve over Connect JSON, 32 connections, req/s" "$(fig connect-32 rps)" "$(ratio "$(fig connect-32 rps)" "$(fig grpc-32 rps)") of gRPC at 32 in flight (>= 0.8)"
fi
if want startup; then
  row "coffer run -- true, overhead over true, ms" "$(fig startup-run overhead_ms)" "$(ratio "$(fig startup-run overhead_ms)" "$(fig startup-run-dynamic overhead_ms)") of the CLI over shared libraries (< 10 ms)"
  row "  the CLI over shared libraries (coffer-dynamic)" "$(fig startup-run-dynamic overhead_ms)" "CPU $(fig startup-run-dynamic cpu_p50_ms) ms vs $(fig startup-run cpu_p50_ms) ms"
  row "  loading the CLI alone (coffer help), static/shared" "$(fig startup-help overhead_ms)" "$(fig startup-help-dynamic overhead_ms) shared"
  row "  the same over TLS (a one-certificate CA file)" "$(fig startup-run-tls overhead_ms)" "$(fig startup-run-tls-dynamic overhead_ms) shared"
  row "  TLS with every public root in the CA file" "$(fig startup-run-tls-roots overhead_ms)" ""
  row "  only the token (scope from WhoAmI, 2 calls)" "$(fig startup-run-scope overhead_ms)" ""
fi
if want history && want resolve; then
  row "after 2,000 rewrites of a secret, 64 in flight" "$(fig resolve-64-after-2000 rps)" "$(ratio "$(fig resolve-64-after-2000 rps)" "$(fig resolve-64 rps)") of before"
  row "after 4,000 rewrites in the project, 64 in flight" "$(fig resolve-64-after-4000 rps)" "$(ratio "$(fig resolve-64-after-4000 rps)" "$(fig resolve-64 rps)") of before (>= 0.8)"
  row "the same from PostgreSQL, 64 in flight" "$(fig cold-64-after-4000 rps)" "$(ratio "$(fig cold-64-after-4000 rps)" "$(fig cold-64 rps)") of before (>= 0.8)"
  row "from PostgreSQL, 1 in flight, p50 ms after 4,000" "$(fig cold-1-after-4000 p50_ms)" "$(ratio "$(fig cold-1-after-4000 p50_ms)" "$(fig cold-1 p50_ms)") of before"
fi
if want growth; then
  row "small project p50 ms, before 40,000 more rows" "$(fig small-1-before p50_ms)" ""
  row "small project p50 ms, after" "$(fig small-1-after p50_ms)" "$(ratio "$(fig small-1-after p50_ms)" "$(fig small-1-before p50_ms)") of before (<= 1.5)"
  row "from PostgreSQL: small project p50 ms, before" "$(fig small-cold-1-before p50_ms)" ""
  row "from PostgreSQL: small project p50 ms, after" "$(fig small-cold-1-after p50_ms)" "$(ratio "$(fig small-cold-1-after p50_ms)" "$(fig small-cold-1-before p50_ms)") of before (<= 1.5)"
fi
want merge && row "merge of 10,000 overrides, ms" "$(fig merge-10000 max_ms)" "(<= 150)"
if want replicas; then
  row "a write seen on other replicas, p99 ms" "$(fig replicas write_p99_ms)" "(<= 100); with min_revision exact $(fig replicas exact)"
  row "a revoked token refused on others, max ms" "$(fig replicas revoke_max_ms)" "(<= 1000)"
  row "WatchSecrets event on every replica, p99 ms" "$(fig replicas watch_p99_ms)" "(<= 100; from the write's start)"
fi
if want fanout; then
  row "10,000 watches opened at once (20 conn.), s" "$(fig fanout-10000 open_s)" "$(fig fanout-10000 opened) open, $(fig fanout-10000 failed) failed (<= 30 s, none)"
  row "a change reaching all 10,000, p50/p99 ms" "$(fig fanout-10000 p50_ms)" "p99 $(fig fanout-10000 p99_ms), max $(fig fanout-10000 max_ms), $(fig fanout-10000 missed) missed (p99 <= 1000)"
  row "cofferd RSS with 10,000 streams open, MB" "$(grep '^FANOUT ' "$RESULTS" | sed 's/.*rss_open=\([0-9.]*\).*/\1/')" "$(grep '^FANOUT ' "$RESULTS" | sed 's/.*kb_per_stream=//') KB a stream (<= 256 MB)"
  row "resolve p99 ms, quiet / during 2,000 openings" "$(fig quiet-resolve p99_ms)" "$(fig burst-resolve p99_ms) during (<= 50)"
  row "write p99 ms (another project), quiet / during" "$(fig quiet-write p99_ms)" "$(fig burst-write p99_ms) during (<= 50)"
fi
want memory && row "cofferd RSS with 1,000 projects cached, MB" "$RSS" "(< 64)"
want memory && row "cofferd RSS with calls parked at once, MB" "$(grep '^PARKED ' "$RESULTS" | sed 's/.*rss=//')" "$(grep '^PARKED ' "$RESULTS" | sed 's/PARKED n=\([0-9.]*\).*/\1/') calls parked"
exit 0
