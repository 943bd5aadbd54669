#!/usr/bin/env bash
# engine-down.sh [--purge] STATE_DIR
#
# Tears down what engine-up.sh STATE_DIR started: removes every container (and pod, non-default
# network and volume) in the stack's own podman storage, stops the podman API service and the
# registry by the PIDs engine-up wrote (TERM, then KILL after 10 s), waits for them to exit, and
# checks that no process started for this STATE_DIR is left. Safe to run any number of times.
#
# --purge also deletes STATE_DIR (images, registry data, logs). Without it, a later engine-up
# with the same STATE_DIR starts fast: the images are still in the registry's data directory.
#
# Exit status: 0 when nothing is left running, 1 otherwise.
set -uo pipefail

log() { printf 'engine-down: %s\n' "$*" >&2; }

PURGE=
if [ "${1:-}" = --purge ]; then PURGE=1; shift; fi
[[ $# -eq 1 && -n "$1" ]] || { log "usage: $0 [--purge] STATE_DIR"; exit 2; }
if [ ! -d "$1" ]; then log "$1 does not exist: nothing to do"; exit 0; fi
STATE=$(cd "$1" && pwd -P)
SOCK="$STATE/podman.sock"

# Serialize with engine-up.sh for the same STATE_DIR.
exec 9>"$STATE/.engine-up.lock"
flock -w 120 9 || log "could not lock $STATE/.engine-up.lock; going on anyway"

cmdline() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline"; }
alive() { [ -d "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
wait_gone() { # wait_gone PID TENTHS: poll until PID is gone, at most TENTHS * 0.1 s
  local i
  for ((i = 0; i < $2; i++)); do alive "$1" || return 0; sleep 0.1; done
  ! alive "$1"
}

# PIDs to see vanish at the end: the daemons and every container's conmon.
WATCH=()
for f in "$STATE/podman.pid" "$STATE/registry.pid" "$STATE/registry-auth.pid" "$STATE"/run/overlay-containers/*/userdata/conmon.pid; do
  [ -s "$f" ] && WATCH+=("$(cat "$f")")
done

# 1. Containers, through podman's CLI on the same (private) storage: works whether or not the
#    API service is still up. Only touch the store if it is really this STATE_DIR's own.
if [ -f "$STATE/storage.conf" ] && grep -qF "graphroot = \"$STATE/storage\"" "$STATE/storage.conf" &&
  command -v podman >/dev/null 2>&1; then
  export CONTAINERS_CONF="$STATE/containers.conf"
  export CONTAINERS_REGISTRIES_CONF="$STATE/registries.conf"
  export CONTAINERS_STORAGE_CONF="$STATE/storage.conf"
  unset DOCKER_HOST CONTAINER_HOST CONTAINER_CONNECTION
  n=$(podman ps -aq 2>/dev/null | wc -l)
  if [ "$n" -gt 0 ]; then
    log "removing $n container(s)"
    timeout 60 podman rm --all --force --time 2 >/dev/null 2>&1 || log "podman rm failed"
  fi
  timeout 30 podman pod rm --all --force >/dev/null 2>&1 || true
  timeout 30 podman network prune --force >/dev/null 2>&1 || true
  timeout 30 podman volume prune --force >/dev/null 2>&1 || true
  left=$(podman ps -aq 2>/dev/null | wc -l)
  [ "$left" -eq 0 ] || log "WARNING: $left container(s) still there"
elif [ -S "$SOCK" ] && command -v docker >/dev/null 2>&1; then
  # Fallback (engine-up ran with the default storage): the containers the API knows about.
  ids=$(DOCKER_HOST="unix://$SOCK" timeout 20 docker ps -aq 2>/dev/null)
  if [ -n "$ids" ]; then
    log "removing containers via the API socket"
    # shellcheck disable=SC2086
    DOCKER_HOST="unix://$SOCK" timeout 60 docker rm -f $ids >/dev/null 2>&1 || log "docker rm failed"
  fi
fi

# 2. The daemons, by PID (only if the PID still belongs to this STATE_DIR's process).
stop_pid() { # stop_pid NAME NEEDLE
  local name=$1 needle=$2 pidfile="$STATE/$1.pid" pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" && cmdline "$pid" | grep -qF -- "$needle"; then
    kill -TERM "$pid" 2>/dev/null
    if ! wait_gone "$pid" 100; then
      log "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null
      wait_gone "$pid" 50
    fi
    alive "$pid" && { log "$name (pid $pid) is still running"; return 1; }
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}
rc=0
stop_pid podman "$SOCK" || rc=1
stop_pid registry "$STATE/registry.yml" || rc=1
stop_pid registry-auth "$STATE/registry-auth.yml" || rc=1
rm -f "$SOCK"

# 3. Anything else started for this STATE_DIR (e.g. a conmon left by a killed service): every
#    process whose command line names STATE_DIR, except this script's own ancestry.
mine=" $$ $PPID "
p=$PPID
for _ in 1 2 3 4 5 6 7 8; do
  p=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null) || break
  [[ -n "$p" && "$p" != 0 ]] || break
  mine+="$p "
done
stray() {
  local d pid
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [[ "$mine" == *" $pid "* ]] && continue
    alive "$pid" || continue
    cmdline "$pid" 2>/dev/null | grep -qF -- "$STATE/" && echo "$pid"
  done
}
left=$(stray)
if [ -n "$left" ]; then
  for pid in $left; do log "stray process $pid: $(cmdline "$pid")"; kill -TERM "$pid" 2>/dev/null; done
  for ((i = 0; i < 50; i++)); do [ -z "$(stray)" ] && break; sleep 0.1; done
  for pid in $(stray); do kill -KILL "$pid" 2>/dev/null; done
  sleep 0.2
  if [ -n "$(stray)" ]; then log "still running: $(stray | tr '\n' ' ')"; rc=1; fi
fi

# 4. Dead processes whose parent is PID 1 stay zombies until init reaps them; on this VM that
#    takes a few seconds. Wait (at most 10 s) so that `ps` right after this script is clean.
for ((i = 0; i < 100; i++)); do
  z=
  for pid in "${WATCH[@]}"; do
    [[ "$pid" =~ ^[0-9]+$ ]] && [ -d "/proc/$pid" ] && ! alive "$pid" && z+=" $pid"
  done
  [ -z "$z" ] && break
  sleep 0.1
done
[ -z "${z:-}" ] || log "not yet reaped by init (zombies, harmless):$z"

# 5. Optionally the whole state directory (after unmounting anything left under it).
if [ -n "$PURGE" ] && [ $rc -eq 0 ]; then
  awk -v s="$STATE/" 'index($2, s) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  exec 9>&-
  rm -rf "$STATE" && log "removed $STATE"
fi
[ $rc -eq 0 ] && log "done: nothing left running for $STATE"
exit $rc
