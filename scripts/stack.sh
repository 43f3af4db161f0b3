#!/usr/bin/env bash
# The hospital-side services cxr talks to, run locally as the current user in one data folder:
# Orthanc (PACS, with its DICOMweb plugin) and Redis (the job queue of `cxr worker`). Each service is a
# set of functions <name>_install / <name>_up / <name>_down / <name>_status / <name>_env, and
# SERVICES lists them in start order, so adding one is adding its functions and its name.
#
# Usage: scripts/stack.sh up|down|status
#   CXR_STACK_DIR  data folder (default: .stack/ in the repository; git-ignored)
# `up` is idempotent: a running service is left alone; ports and passwords are kept between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
STACK_DIR=${CXR_STACK_DIR:-$REPO/.stack}
SERVICES=(orthanc redis)
ORTHANC_USER=cxr

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

# Stops the process in pid file $1: TERM, up to 30 s for a clean shutdown, then KILL.
stop_pid() {
  local pidfile=$1 name=$2 pid i
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; return 0; fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop in 30 s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "$name stopped"
}

# ---- Orthanc -------------------------------------------------------------------------------
ORTHANC_DIR=$STACK_DIR/orthanc

orthanc_install() { ensure_packages orthanc orthanc-dicomweb; }

orthanc_plugin() {
  local so
  so=$(dpkg -L orthanc-dicomweb | grep -E '/libOrthancDicomWeb\.so$' | head -1 || true)
  [ -n "$so" ] || so=$(dpkg -L orthanc-dicomweb | grep -E '/libOrthancDicomWeb\.so' | head -1 || true)
  [ -n "$so" ] || die "no DICOMweb plugin in package orthanc-dicomweb"
  echo "$so"
}

orthanc_port() { node -e 'try { console.log(require(process.argv[1])[process.argv[2]] || "") } catch { console.log("") }' "$ORTHANC_DIR/orthanc.json" "$1"; }

orthanc_url() { echo "http://127.0.0.1:$(orthanc_port HttpPort)"; }

orthanc_answers() {
  [ -f "$ORTHANC_DIR/password" ] || return 1
  curl -fsS -m 2 -u "$ORTHANC_USER:$(cat "$ORTHANC_DIR/password")" "$(orthanc_url)/system" >/dev/null 2>&1
}

# Writes orthanc.json: loopback-only HTTP with basic auth, the DICOMweb plugin, storage in the data folder.
orthanc_config() {
  local http dicom plugin
  http=$(free_port "$(orthanc_port HttpPort 2>/dev/null || true)")
  dicom=$(free_port "$(orthanc_port DicomPort 2>/dev/null || true)")
  [ "$http" != "$dicom" ] || dicom=$(free_port 0)
  plugin=$(orthanc_plugin)
  (umask 077; node -e '
    const [dir, http, dicom, plugin, user, password] = process.argv.slice(1);
    const cfg = {
      Name: "cxr-stack",
      StorageDirectory: dir + "/db",
      IndexDirectory: dir + "/db",
      HttpPort: Number(http),
      DicomPort: Number(dicom),
      DicomAet: "CXR",
      RemoteAccessAllowed: false,
      AuthenticationEnabled: true,
      RegisteredUsers: { [user]: password },
      Plugins: [plugin],
      DicomWeb: { Enable: true, Root: "/dicom-web/", EnableWado: false, Host: "127.0.0.1:" + http, Ssl: false },
      HttpDescribeErrors: true,
      StableAge: 5,
    };
    require("fs").writeFileSync(dir + "/orthanc.json", JSON.stringify(cfg, null, 2) + "\n", { mode: 0o600 });
  ' "$ORTHANC_DIR" "$http" "$dicom" "$plugin" "$ORTHANC_USER" "$(cat "$ORTHANC_DIR/password")")
}

orthanc_up() {
  mkdir -p "$ORTHANC_DIR/db"
  chmod 700 "$ORTHANC_DIR"
  if pid_alive "$ORTHANC_DIR/pid" && orthanc_answers; then
    log "orthanc already running at $(orthanc_url)"
    return 0
  fi
  stop_pid "$ORTHANC_DIR/pid" orthanc
  orthanc_install
  if [ ! -s "$ORTHANC_DIR/password" ]; then
    (umask 077; random_secret > "$ORTHANC_DIR/password")
  fi
  chmod 600 "$ORTHANC_DIR/password"
  orthanc_config
  # setsid: its own session, so that it outlives this shell and a terminal's Ctrl-C.
  setsid Orthanc "$ORTHANC_DIR/orthanc.json" >"$ORTHANC_DIR/orthanc.log" 2>&1 < /dev/null &
  echo $! > "$ORTHANC_DIR/pid"
  local i
  for i in $(seq 1 300); do
    if orthanc_answers; then
      log "orthanc up at $(orthanc_url) (DICOM port $(orthanc_port DicomPort), AET CXR)"
      return 0
    fi
    pid_alive "$ORTHANC_DIR/pid" || break
    sleep 0.1
  done
  tail -n 20 "$ORTHANC_DIR/orthanc.log" >&2 || true
  stop_pid "$ORTHANC_DIR/pid" orthanc
  die "orthanc did not answer /system within 30 s (log: $ORTHANC_DIR/orthanc.log)"
}

orthanc_down() { stop_pid "$ORTHANC_DIR/pid" orthanc; }

orthanc_status() {
  if pid_alive "$ORTHANC_DIR/pid" && orthanc_answers; then
    echo "orthanc: running at $(orthanc_url), DICOM port $(orthanc_port DicomPort) (pid $(cat "$ORTHANC_DIR/pid"))"
    return 0
  fi
  echo "orthanc: stopped"
  return 1
}

orthanc_env() {
  echo "CXR_ORTHANC_URL=$(orthanc_url)"
  echo "CXR_ORTHANC_USER=$ORTHANC_USER"
  echo "CXR_ORTHANC_PASSWORD=$(cat "$ORTHANC_DIR/password")"
}

# ---- Redis (the job queue) -----------------------------------------------------------------
REDIS_DIR=$STACK_DIR/redis

redis_install() { ensure_packages redis-server; }

redis_port() { sed -n 's/^port //p' "$REDIS_DIR/redis.conf" 2>/dev/null || true; }

# REDISCLI_AUTH keeps the password out of the process list.
redis_answers() {
  [ -f "$REDIS_DIR/password" ] && [ -n "$(redis_port)" ] || return 1
  [ "$(REDISCLI_AUTH=$(cat "$REDIS_DIR/password") redis-cli -h 127.0.0.1 -p "$(redis_port)" ping 2>/dev/null)" = PONG ]
}

# Loopback only, a password, data in the data folder (append-only file: queued jobs and uploads
# survive a restart); noeviction, because BullMQ's keys must never be dropped to make room.
redis_config() {
  local port
  port=$(free_port "$(redis_port)")
  (
    umask 077
    printf '%s\n' "bind 127.0.0.1" "port $port" "protected-mode yes" "requirepass $(cat "$REDIS_DIR/password")" \
      "dir $REDIS_DIR" "appendonly yes" "appendfsync everysec" "maxmemory-policy noeviction" "daemonize no" \
      'logfile ""' > "$REDIS_DIR/redis.conf"
  )
}

redis_up() {
  mkdir -p "$REDIS_DIR"
  chmod 700 "$REDIS_DIR"
  if pid_alive "$REDIS_DIR/pid" && redis_answers; then
    log "redis already running at 127.0.0.1:$(redis_port)"
    return 0
  fi
  stop_pid "$REDIS_DIR/pid" redis
  redis_install
  if [ ! -s "$REDIS_DIR/password" ]; then
    (umask 077; random_secret > "$REDIS_DIR/password")
  fi
  chmod 600 "$REDIS_DIR/password"
  redis_config
  setsid redis-server "$REDIS_DIR/redis.conf" >"$REDIS_DIR/redis.log" 2>&1 < /dev/null &
  echo $! > "$REDIS_DIR/pid"
  local i
  for i in $(seq 1 300); do
    if redis_answers; then
      log "redis up at 127.0.0.1:$(redis_port)"
      return 0
    fi
    pid_alive "$REDIS_DIR/pid" || break
    sleep 0.1
  done
  tail -n 20 "$REDIS_DIR/redis.log" >&2 || true
  stop_pid "$REDIS_DIR/pid" redis
  die "redis did not answer PING within 30 s (log: $REDIS_DIR/redis.log)"
}

redis_down() { stop_pid "$REDIS_DIR/pid" redis; }

redis_status() {
  if pid_alive "$REDIS_DIR/pid" && redis_answers; then
    echo "redis: running at 127.0.0.1:$(redis_port) (pid $(cat "$REDIS_DIR/pid"))"
    return 0
  fi
  echo "redis: stopped"
  return 1
}

redis_env() { echo "CXR_REDIS_URL=redis://:$(cat "$REDIS_DIR/password")@127.0.0.1:$(redis_port)/0"; }

# ---- commands ------------------------------------------------------------------------------
cmd_up() {
  mkdir -p "$STACK_DIR"
  chmod 700 "$STACK_DIR"
  local s
  for s in "${SERVICES[@]}"; do "${s}_up"; done
  (umask 077; for s in "${SERVICES[@]}"; do "${s}_env"; done > "$STACK_DIR/env.tmp")
  mv "$STACK_DIR/env.tmp" "$STACK_DIR/env"
  cat <<EOF
The stack is up. Settings (with the password) are in $STACK_DIR/env. To use it:

  set -a; . $STACK_DIR/env; set +a
  cxr orthanc sync --once        # predict every new chest film, store SR + heat map back into its study
  cxr orthanc sync               # keep polling until Ctrl-C
  cxr enqueue --orthanc-all      # backfill the whole archive through the job queue (low priority)
  cxr worker                     # consume queued jobs until Ctrl-C (start as many as you like)
  scripts/stack.sh down          # stop it (the data stays in $STACK_DIR)
EOF
}

cmd_down() {
  local i
  # Reverse order: dependants stop before what they depend on.
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do "${SERVICES[$i]}_down"; done
}

cmd_status() {
  local s rc=0
  for s in "${SERVICES[@]}"; do "${s}_status" || rc=1; done
  return $rc
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: scripts/stack.sh up|down|status   (data folder: \$CXR_STACK_DIR, default .stack/)" >&2; exit 2 ;;
esac
