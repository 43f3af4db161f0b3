#!/usr/bin/env bash
# The hospital-side services cxr talks to, run locally as the current user in one data folder:
# PostgreSQL (the shared audit log), Orthanc (PACS, with its DICOMweb plugin) and Redis (the job
# queue of `cxr worker`). Each service is a file in scripts/stack/ with the functions
# <name>_install / <name>_up / <name>_down / <name>_kill / <name>_status / <name>_env, and SERVICES
# lists them in start order, so adding one is adding its file and its name.
#
# Usage: scripts/stack.sh up|down|kill|status [SERVICE...]   (default: every service)
#   kill: stop at once, without a clean shutdown (queued jobs since the last fsync may be lost): for a
#         data folder about to be thrown away, as the tests' is.
#   CXR_STACK_DIR  data folder (default: .stack/ in the repository; git-ignored)
# `up` is idempotent: a running service is left alone; ports and passwords are kept between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
STACK_DIR=${CXR_STACK_DIR:-$REPO/.stack}
SERVICES=(postgresql orthanc redis)
ALL_SERVICES=("${SERVICES[@]}")
ORTHANC_USER=cxr

# shellcheck source=stack/common.sh
. "$REPO/scripts/stack/common.sh"
for s in "${ALL_SERVICES[@]}"; do
  # shellcheck source=/dev/null
  . "$REPO/scripts/stack/$s.sh"
done

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

# $1: down or kill. Reverse order: dependants stop before what they depend on.
cmd_stop() {
  local i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do "${SERVICES[$i]}_$1"; done
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
  down | kill) cmd_stop "$cmd" ;;
  status) cmd_status ;;
  *) echo "usage: scripts/stack.sh up|down|kill|status [SERVICE...]   (data folder: \$CXR_STACK_DIR, default .stack/)" >&2; exit 2 ;;
esac
