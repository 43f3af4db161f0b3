# Sourced by scripts/stack.sh (after common.sh).
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
  stop_pid "$REDIS_DIR/pid" redis TERM redis-server
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
  stop_pid "$REDIS_DIR/pid" redis TERM redis-server
  die "redis did not answer PING within 30 s (log: $REDIS_DIR/redis.log)"
}

redis_down() { stop_pid "$REDIS_DIR/pid" redis TERM redis-server; }
redis_kill() { stop_pid "$REDIS_DIR/pid" redis KILL redis-server; }

redis_status() {
  if pid_alive "$REDIS_DIR/pid" && redis_answers; then
    echo "redis: running at 127.0.0.1:$(redis_port) (pid $(cat "$REDIS_DIR/pid"))"
    return 0
  fi
  echo "redis: stopped"
  return 1
}

redis_env() { echo "CXR_REDIS_URL=redis://:$(cat "$REDIS_DIR/password")@127.0.0.1:$(redis_port)/0"; }
