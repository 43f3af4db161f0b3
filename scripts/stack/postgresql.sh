# Sourced by scripts/stack.sh (after common.sh).
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

postgresql_down() { postgresql_stop fast; }
postgresql_kill() { postgresql_stop immediate; }

# pg_ctl's shutdown mode $1: fast (clean) or immediate (no checkpoint; recovery at the next start).
postgresql_stop() {
  [ -f "$PG_DIR/data/PG_VERSION" ] || return 0
  if pg_running; then
    pg_as_owner "$(pg_bindir)/pg_ctl" -D "$PG_DIR/data" -m "$1" -w -t 60 stop >/dev/null \
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
