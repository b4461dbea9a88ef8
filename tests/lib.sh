# tests/lib.sh - what the shell suites share. Source it.

# free_port START: the first port from START on which nothing on 127.0.0.1 answers. Fixed starts
# sit below the kernel's ephemeral range (32768-60999), where an outgoing connection may hold a
# port between the probe and the bind.
free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

# wait_bounded PID SECONDS WHAT: the exit status of PID (a child of this shell), which is given
# SECONDS to end; a process still there then is killed, the failure said (with `bad` when the
# suite has it, else on stderr, and TIMED_OUT=1 for the suite to fail on), and 124 returned. A
# test that waits for a process fails within its bound instead of hanging the suite.
TIMED_OUT=0
wait_bounded() {
  local pid=$1 secs=$2 what=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    # A child that has ended stays a zombie until waited for: that counts as ended.
    if ! kill -0 "$pid" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; then
      wait "$pid"
      return $?
    fi
    sleep 0.1
  done
  TIMED_OUT=1
  if declare -F bad >/dev/null; then bad "$what did not exit within $secs s (killed)"; else
    echo "FAIL: $what did not exit within $secs s (killed)" >&2
  fi
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 124
}

# node_packages SUITE_DIR DIR FILE...: the npm packages SUITE_DIR's package-lock.json pins, into DIR
# (npm ci, again only when the lock file changed), with SUITE_DIR's package files and FILEs.
node_packages() {
  local from=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  cp "$from/package.json" "$from/package-lock.json" "$@" "$dir/"
  if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.coffer-lock.json" 2>/dev/null; then
    echo "installing the npm packages of ${from#"$ROOT"/} (npm ci, its package-lock.json)"
    (cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --silent >/dev/null &&
      cp package-lock.json node_modules/.coffer-lock.json)
  fi
}

# wait_http_bootstrap PID TOKEN_FILE LOG CURL_ARGS...: until cofferd (PID) has written its
# bootstrap token and curl CURL_ARGS succeeds (15 s at most); exits the script when cofferd died or
# wrote no token.
wait_http_bootstrap() {
  local pid=$1 file=$2 log=$3 i
  shift 3
  for i in $(seq 75); do
    [ -s "$file" ] && curl -sf -o /dev/null "$@" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.2
  done
  [ -s "$file" ] || { echo "FAIL: no bootstrap token (is the database new?)"; tail -5 "$log"; exit 1; }
}
