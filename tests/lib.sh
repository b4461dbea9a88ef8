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
