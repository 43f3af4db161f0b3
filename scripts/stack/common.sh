# Sourced by scripts/stack.sh: logging, packages, ports, secrets and process control the services share.

log() { echo "stack: $*" >&2; }
die() { log "$*"; exit 1; }

# Installs the Debian packages that are missing (as setup.sh does for its own).
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  log "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A TCP port free on loopback now (the kernel picks it), or $1 when that one is still free.
free_port() {
  node -e '
    const net = require("net");
    const tryPort = (p, fallback) => {
      const s = net.createServer();
      s.once("error", () => fallback ? tryPort(0, false) : process.exit(1));
      s.listen(p, "127.0.0.1", () => { console.log(s.address().port); s.close(); });
    };
    const want = Number(process.argv[1] || 0);
    tryPort(want, want > 0);' "${1:-0}"
}

random_secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 40; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Whether process $1 still runs: a zombie has stopped, though kill -0 finds it until its reaper (here
# init, since services run in their own session) collects it, which some inits do only every few seconds.
pid_running() {
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(sed -n 's/^[0-9]* (.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# Stops the process in pid file $1: signal $3 (TERM: up to 30 s for a clean shutdown), then KILL. $4: the
# service's program name (/proc/PID/comm): a pid file from before a reboot may name another process now, which
# `up` or `down` must not kill (as root, any process).
stop_pid() {
  local pidfile=$1 name=$2 signal=${3:-TERM} comm=${4:-} pid i
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; return 0; fi
  pid=$(cat "$pidfile")
  if [ -n "$comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$comm" ]; then
    log "$name: pid $pid in $pidfile is not $comm now (a stale pid file): left alone"
    rm -f "$pidfile"
    return 0
  fi
  kill "-$signal" "$pid"
  for i in $(seq 1 300); do
    pid_running "$pid" || break
    sleep 0.1
  done
  if pid_running "$pid"; then
    log "$name did not stop in 30 s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "$name stopped"
}
