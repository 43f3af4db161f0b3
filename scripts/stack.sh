#!/usr/bin/env bash
# The hospital-side services cxr talks to, run locally as the current user in one data folder:
# PostgreSQL (the shared audit log), Orthanc (PACS, with its DICOMweb plugin) and Redis (the job
# queue of `cxr worker`). Each service is a
# set of functions <name>_install / <name>_up / <name>_down / <name>_status / <name>_env, and
# SERVICES lists them in start order, so adding one is adding its functions and its name.
#
# Usage: scripts/stack.sh up|down|status [SERVICE...]   (default: every service)
#   CXR_STACK_DIR  data folder (default: .stack/ in the repository; git-ignored)
# `up` is idempotent: a running service is left alone; ports and passwords are kept between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
STACK_DIR=${CXR_STACK_DIR:-$REPO/.stack}
SERVICES=(postgresql orthanc redis)
ALL_SERVICES=("${SERVICES[@]}")
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

# ---- PostgreSQL ----------------------------------------------------------------------------
# The shared audit log (cxr serve/predict/history --db "$CXR_DB"). Its own cluster in the data
# folder, on a free loopback port, its Unix socket inside the folder; database and role `cxr` with a
# generated password. PostgreSQL refuses to run as root: as root, the server runs as Debian's
# `postgres` system user, which then owns the cluster's files.
PG_DIR=$STACK_DIR/postgresql
PG_DB=cxr
PG_ROLE=cxr

postgresql_install() { ensure_packages postgresql; }

# The folder of initdb and pg_ctl: pg_config's, else the newest /usr/lib/postgresql/*/bin.
pg_bindir() {
  local d
  d=$(pg_config --bindir 2>/dev/null || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$d" ] && [ -x "$d/initdb" ] || die "no PostgreSQL server binaries (initdb) found; install the postgresql package"
  echo "$d"
}

pg_os_user() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

# Runs a command as the cluster's owner, in the cluster's folder (root's working folder may be closed to it).
pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    (cd "$PG_DIR" && runuser -u postgres -- "$@")
  else
    (cd "$PG_DIR" && "$@")
  fi
}

pg_port() { cat "$PG_DIR/port" 2>/dev/null || true; }

pg_answers() {
  [ -f "$PG_DIR/port" ] || return 1
  "$(pg_bindir)/pg_isready" -q -h 127.0.0.1 -p "$(pg_port)" -d postgres -t 2 >/dev/null 2>&1
}

pg_pid() { head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true; }

pg_running() {
  local pid
  pid=$(pg_pid)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Settings rewritten on every start (the port may change); included from postgresql.conf.
postgresql_config() {
  pg_as_owner sh -c 'cat > "$1"' sh "$PG_DIR/data/cxr-stack.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $1
unix_socket_directories = '$PG_DIR/run'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
EOF
}

postgresql_up() {
  local bin owner port
  mkdir -p "$PG_DIR"
  # The server's user must reach its folders through ours; the secrets in them stay mode 600.
  if [ "$(id -u)" = 0 ]; then chmod 711 "$STACK_DIR" "$PG_DIR"; else chmod 700 "$PG_DIR"; fi
  if pg_running && pg_answers; then
    log "postgresql already running at 127.0.0.1:$(pg_port)"
    return 0
  fi
  postgresql_install
  bin=$(pg_bindir)
  owner=$(pg_os_user)
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$PG_DIR"; then
    die "the postgres user cannot reach $PG_DIR (a parent folder is closed to it); set CXR_STACK_DIR elsewhere"
  fi
  if [ ! -s "$PG_DIR/password" ]; then
    (umask 077; random_secret > "$PG_DIR/password")
  fi
  chmod 600 "$PG_DIR/password"
  if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
    rm -rf "$PG_DIR/data" "$PG_DIR/run" "$PG_DIR/log"
    mkdir -p "$PG_DIR/data" "$PG_DIR/run" "$PG_DIR/log"
    [ "$(id -u)" != 0 ] || chown postgres:postgres "$PG_DIR/data" "$PG_DIR/run" "$PG_DIR/log"
    chmod 700 "$PG_DIR/data" "$PG_DIR/run" "$PG_DIR/log"
    # The superuser has no password: it logs in only through the folder's socket, as its OS user.
    pg_as_owner "$bin/initdb" -D "$PG_DIR/data" -U "$owner" -E UTF8 --locale=C \
      --auth-local=peer --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 \
      || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
    pg_as_owner sh -c 'echo "include_if_exists = '"'"'cxr-stack.conf'"'"'" >> "$1"' sh "$PG_DIR/data/postgresql.conf"
  fi
  port=$(free_port "$(pg_port)")
  echo "$port" > "$PG_DIR/port"
  postgresql_config "$port"
  # setsid: its own session, so that it outlives this shell and a terminal's Ctrl-C.
  if ! pg_as_owner setsid -w "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log/postgresql.log" -w -t 60 start \
    >/dev/null; then
    tail -n 20 "$PG_DIR/log/postgresql.log" >&2 || true
    die "postgresql did not start (log: $PG_DIR/log/postgresql.log)"
  fi
  # The role's password follows the password file (read from stdin, never a command line).
  pg_as_owner "$bin/psql" -X -q -h "$PG_DIR/run" -p "$port" -U "$owner" -d postgres -v ON_ERROR_STOP=1 >/dev/null <<EOF
\set pw '$(cat "$PG_DIR/password")'
SELECT 'CREATE ROLE $PG_ROLE LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_ROLE') \gexec
ALTER ROLE $PG_ROLE WITH LOGIN PASSWORD :'pw';
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_ROLE' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_DB') \gexec
EOF
  log "postgresql up at 127.0.0.1:$port (database $PG_DB, role $PG_ROLE)"
}

postgresql_down() {
  [ -f "$PG_DIR/data/PG_VERSION" ] || return 0
  if pg_running; then
    pg_as_owner "$(pg_bindir)/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 stop >/dev/null \
      || log "postgresql did not stop cleanly"
    log "postgresql stopped"
  fi
}

postgresql_status() {
  if pg_running && pg_answers; then
    echo "postgresql: running at 127.0.0.1:$(pg_port), database $PG_DB (pid $(pg_pid))"
    return 0
  fi
  echo "postgresql: stopped"
  return 1
}

postgresql_env() {
  echo "CXR_DB=postgres://$PG_ROLE:$(cat "$PG_DIR/password")@127.0.0.1:$(pg_port)/$PG_DB"
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
# Services named after the command (in SERVICES order), or all of them.
select_services() {
  local s want picked=()
  [ $# -gt 0 ] || return 0
  for want in "$@"; do
    [[ " ${SERVICES[*]} " == *" $want "* ]] || die "unknown service '$want' (services: ${SERVICES[*]})"
  done
  for s in "${SERVICES[@]}"; do
    for want in "$@"; do [ "$s" != "$want" ] || picked+=("$s"); done
  done
  SERVICES=("${picked[@]}")
}

cmd_up() {
  mkdir -p "$STACK_DIR"
  # Private, except that a root-run PostgreSQL's own user must pass through it (postgresql_up makes it
  # 711): starting one more service must not take that away from a running server.
  if [ "$(id -u)" = 0 ] && [ -d "$PG_DIR" ]; then chmod 711 "$STACK_DIR"; else chmod 700 "$STACK_DIR"; fi
  local s
  for s in "${SERVICES[@]}"; do "${s}_up"; done
  # The settings of every running service, not only of those just started: `up redis` keeps CXR_DB.
  (umask 077; for s in "${ALL_SERVICES[@]}"; do
    if "${s}_status" > /dev/null; then "${s}_env"; fi
  done > "$STACK_DIR/env.tmp")
  mv "$STACK_DIR/env.tmp" "$STACK_DIR/env"
  cat <<EOF
The stack is up (${SERVICES[*]}). Settings (with the passwords) are in $STACK_DIR/env. To use it:

  set -a; . $STACK_DIR/env; set +a
  cxr serve                      # CXR_DB: the audit log in the stack's PostgreSQL (cxr history reads it)
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

cmd=${1:-}
[ $# -eq 0 ] || shift
select_services "$@"
case "$cmd" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: scripts/stack.sh up|down|status [SERVICE...]   (data folder: \$CXR_STACK_DIR, default .stack/)" >&2; exit 2 ;;
esac
