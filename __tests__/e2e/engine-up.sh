#!/usr/bin/env bash
# engine-up.sh STATE_DIR
#
# Brings up a real, local container stack for fleet-deploy's end-to-end tests (run as root):
#   * podman's Docker-compatible API on unix://STATE_DIR/podman.sock (for `docker` and Debian's
#     docker-compose 1.29 through DOCKER_HOST),
#   * a real registry (Debian's docker-registry) on 127.0.0.1:5000 (or the next free port),
#   * seven images pushed to it: REGISTRY/fleet/app:v1, :v2, :bad, :crash, :once, :slow1 and :slow2,
#   * a second registry that requires a login (htpasswd; user `fleet`, a random password kept in
#     STATE_DIR) on the next free port, holding AUTH_REGISTRY/fleet/private:v2 (the v2 image).
# Everything lives under STATE_DIR: configs, podman's own storage root (not /var/lib/containers),
# the registry's data, logs (the registry's access log, one line per request, is
# STATE_DIR/logs/registry.log: what tests and benchmarks count pulls by) and the PID files engine-down.sh uses.
#
# Idempotent: a second run with the same STATE_DIR reuses the running processes and the pushed
# images. Progress goes to stderr; stdout carries only `export` lines (also written to
# STATE_DIR/env), so either of these works:
#   eval "$(__tests__/e2e/engine-up.sh /tmp/fleet-e2e)"
#   __tests__/e2e/engine-up.sh /tmp/fleet-e2e >/dev/null && . /tmp/fleet-e2e/env
#
# The images (busybox-static rootfs, made with `podman import`) run
#   busybox httpd -f -p ${APP_ADDR:-127.0.0.1}:${APP_PORT:-8080} -h /www
# under a small sh wrapper that exits on SIGTERM (so `docker stop` / compose recreate is fast).
# Set APP_PORT per tenant (host networking); APP_ADDR defaults to 127.0.0.1 so tests listen on
# loopback only.
#   v1, v2: GET /health -> 200, body {"status":"ok","version":"v1"} (resp. "v2").
#   bad:    keeps running but never becomes healthy: GET /health -> 404 with body
#           {"status":"starting","version":"bad"}, i.e. it fails both a status-code check and a
#           body check. The container itself stays "running" (exit code never set).
#   crash:  its process exits at once (code 3), so a restart policy keeps restarting it: a crash loop.
#   once:   its first start exits (code 3) after 2 s; restarted (same container), it serves like v1
#           with version "once": a container that restarts once and recovers.
# Content-Type of /health is application/octet-stream (busybox httpd maps by file extension).
#
# Environment knobs: ENGINE_UP_WAIT (seconds to wait for each daemon, default 20),
# ENGINE_UP_REGISTRY_PORT (preferred registry port, default 5000).
set -euo pipefail

log() { printf 'engine-up: %s\n' "$*" >&2; }
die() { printf 'engine-up: ERROR: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 && -n "$1" ]] || die "usage: $0 STATE_DIR"
[ "$(id -u)" = 0 ] || die "must run as root"
mkdir -p "$1"
STATE=$(cd "$1" && pwd -P)
WAIT_S=${ENGINE_UP_WAIT:-20}
PREFERRED_PORT=${ENGINE_UP_REGISTRY_PORT:-5000}

# One engine-up at a time per STATE_DIR. fd 9 is closed for every daemon started below, so the
# lock is released when this script exits.
exec 9>"$STATE/.engine-up.lock"
flock -w 600 9 || die "could not lock $STATE/.engine-up.lock"

# ---------------------------------------------------------------------------------------------
# 1. Packages (only if missing).
# ---------------------------------------------------------------------------------------------
PKGS=(podman runc busybox-static docker-registry docker-compose apache2-utils)
command -v curl >/dev/null 2>&1 || PKGS+=(curl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} (log: $STATE/apt.log)"
  export DEBIAN_FRONTEND=noninteractive
  APT_OPTS=(-y -qq --no-install-recommends -o DPkg::Lock::Timeout=300)
  # Keep package scripts from starting daemons (docker-registry would listen on :5000 on every
  # interface). Only add a policy-rc.d if the machine has none, and remove it afterwards.
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  # apt-get update first if the package lists do not know the packages yet.
  if ! apt-cache show --no-all-versions "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq -o DPkg::Lock::Timeout=300 >>"$STATE/apt.log" 2>&1 || true
  fi
  rc=0
  apt-get install "${APT_OPTS[@]}" "${missing[@]}" >>"$STATE/apt.log" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then # stale lists: update once and retry
    apt-get update -qq -o DPkg::Lock::Timeout=300 >>"$STATE/apt.log" 2>&1 || true
    rc=0; apt-get install "${APT_OPTS[@]}" "${missing[@]}" >>"$STATE/apt.log" 2>&1 || rc=$?
  fi
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
  [ $rc -eq 0 ] || { tail -n 20 "$STATE/apt.log" >&2; die "apt-get install failed"; }
fi

# ---------------------------------------------------------------------------------------------
# 2. Configuration, all under STATE_DIR.
# ---------------------------------------------------------------------------------------------
SOCK="$STATE/podman.sock"
# sun_path is 108 bytes including the NUL.
[ ${#SOCK} -le 100 ] || die "STATE_DIR path too long for a unix socket: $SOCK"
mkdir -p "$STATE/storage" "$STATE/run" "$STATE/tmp" "$STATE/cni" "$STATE/registry-data" \
  "$STATE/build" "$STATE/logs"

pid_alive() { # pid_alive PIDFILE NEEDLE -> true if the PID in PIDFILE runs and its cmdline has NEEDLE
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$2"
}

port_free() { [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# Registry port: keep the running registry's port, else the preferred one, else the next free.
if pid_alive "$STATE/registry.pid" "$STATE/registry.yml" && [ -s "$STATE/registry.port" ]; then
  PORT=$(cat "$STATE/registry.port")
else
  PORT=
  # A restart keeps the port of the previous run when it is still free.
  if grep -qx "[0-9]\+" "$STATE/registry.port" 2>/dev/null && port_free "$(cat "$STATE/registry.port")"; then
    PORT=$(cat "$STATE/registry.port")
  fi
  for ((p = PREFERRED_PORT; ${#PORT} == 0 && p < PREFERRED_PORT + 100; p++)); do
    if port_free "$p"; then PORT=$p; fi
  done
  [ -n "$PORT" ] || die "no free port in $PREFERRED_PORT..$((PREFERRED_PORT + 99))"
  [ "$PORT" = "$PREFERRED_PORT" ] || log "registry uses port $PORT (port $PREFERRED_PORT is busy or an earlier run used $PORT)"
fi
REGISTRY="127.0.0.1:$PORT"

# The registry that requires a login: its running port, else the first free one after PORT.
if pid_alive "$STATE/registry-auth.pid" "$STATE/registry-auth.yml" && [ -s "$STATE/registry-auth.port" ]; then
  AUTH_PORT=$(cat "$STATE/registry-auth.port")
else
  AUTH_PORT=
  for ((p = PORT + 1; ${#AUTH_PORT} == 0 && p < PORT + 100; p++)); do
    if port_free "$p"; then AUTH_PORT=$p; fi
  done
  [ -n "$AUTH_PORT" ] || die "no free port for the registry that requires a login"
fi
# Images are named by localhost:PORT: podman's Docker-API login (/auth) ignores registries.conf's
# `insecure` and speaks plain HTTP only to a localhost registry. It listens on 127.0.0.1 all the same.
AUTH_ADDR="127.0.0.1:$AUTH_PORT"
AUTH_REGISTRY="localhost:$AUTH_PORT"
AUTH_USER=fleet
[ -s "$STATE/registry-auth.password" ] ||
  (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STATE/registry-auth.password")
AUTH_PASSWORD=$(cat "$STATE/registry-auth.password")
htpasswd -Bbn "$AUTH_USER" "$AUTH_PASSWORD" >"$STATE/htpasswd" 2>/dev/null || die "htpasswd failed"

cat >"$STATE/containers.conf" <<EOF
# Written by engine-up.sh. crun fails on this kernel (setrlimit RLIMIT_NOFILE, cgroups hybrid
# mode); runc with lowered ulimits works.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$STATE/logs/events.log"
tmp_dir = "$STATE/tmp"

[network]
network_config_dir = "$STATE/cni"
EOF

{
  echo '# Written by engine-up.sh: the local test registry speaks plain HTTP.'
  echo 'unqualified-search-registries = []'
  for loc in 127.0.0.1:5000 localhost:5000 "127.0.0.1:$PORT" "localhost:$PORT" "$AUTH_ADDR" "$AUTH_REGISTRY"; do
    echo "$loc"
  done | awk '!seen[$0]++' | while read -r loc; do
    printf '\n[[registry]]\nlocation = "%s"\ninsecure = true\n' "$loc"
  done
} >"$STATE/registries.conf"

cat >"$STATE/storage.conf" <<EOF
# Written by engine-up.sh: a storage root of its own, so tests leave /var/lib/containers alone.
[storage]
driver = "overlay"
graphroot = "$STATE/storage"
runroot = "$STATE/run"
EOF

cat >"$STATE/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $STATE/registry-data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $REGISTRY
  secret: fleet-e2e-local-only
EOF

# The same registry program, but every request needs the htpasswd user (plain HTTP: local only).
sed -e "s|^  addr: .*|  addr: $AUTH_ADDR|" -e "s|rootdirectory: .*|rootdirectory: $STATE/registry-auth-data|" \
  "$STATE/registry.yml" >"$STATE/registry-auth.yml"
cat >>"$STATE/registry-auth.yml" <<EOF
auth:
  htpasswd:
    realm: fleet-e2e
    path: $STATE/htpasswd
EOF

export CONTAINERS_CONF="$STATE/containers.conf"
export CONTAINERS_REGISTRIES_CONF="$STATE/registries.conf"
export CONTAINERS_STORAGE_CONF="$STATE/storage.conf"
unset DOCKER_HOST CONTAINER_HOST CONTAINER_CONNECTION

# overlay needs kernel support for overlay on this filesystem; fall back to vfs if it is missing.
if ! podman info --format '{{.Store.GraphDriverName}}' >"$STATE/logs/podman-info.log" 2>&1; then
  log "overlay storage failed ($(tail -n 1 "$STATE/logs/podman-info.log")); using vfs"
  sed -i 's/^driver = "overlay"/driver = "vfs"/' "$STATE/storage.conf"
  podman info >/dev/null 2>>"$STATE/logs/podman-info.log" || die "podman info fails, see $STATE/logs/podman-info.log"
fi

# ---------------------------------------------------------------------------------------------
# 3. Daemons.
# ---------------------------------------------------------------------------------------------
wait_for() { # wait_for WHAT PIDFILE NEEDLE CMD... : poll CMD every 0.1 s for at most WAIT_S s
  local what=$1 pidfile=$2 needle=$3 i max=$((WAIT_S * 10)) start=$SECONDS
  shift 3
  for ((i = 0; i < max && SECONDS - start <= WAIT_S; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    pid_alive "$pidfile" "$needle" || die "$what exited; see $STATE/logs"
    sleep 0.1
  done
  die "$what did not answer within ${WAIT_S}s; see $STATE/logs"
}

start_daemon() { # start_daemon NAME LOGFILE CMD... : detached, own session, no inherited fds
  local name=$1 logf=$2
  shift 2
  setsid "$@" </dev/null >>"$logf" 2>&1 9>&- &
  echo $! >"$STATE/$name.pid"
}

registry_ok() { curl -fsS --max-time 2 "http://$REGISTRY/v2/"; }
if pid_alive "$STATE/registry.pid" "$STATE/registry.yml"; then
  log "registry already running (pid $(cat "$STATE/registry.pid")) on $REGISTRY"
else
  start_daemon registry "$STATE/logs/registry.log" docker-registry serve "$STATE/registry.yml"
  echo "$PORT" >"$STATE/registry.port"
  log "registry started (pid $(cat "$STATE/registry.pid")) on $REGISTRY"
fi
wait_for registry "$STATE/registry.pid" "$STATE/registry.yml" registry_ok

# Answers 401 without credentials, 200 with them.
auth_registry_ok() { curl -fsS --max-time 2 -u "$AUTH_USER:$AUTH_PASSWORD" "http://$AUTH_ADDR/v2/"; }
if pid_alive "$STATE/registry-auth.pid" "$STATE/registry-auth.yml"; then
  log "registry with login already running (pid $(cat "$STATE/registry-auth.pid")) on $AUTH_ADDR"
else
  mkdir -p "$STATE/registry-auth-data"
  start_daemon registry-auth "$STATE/logs/registry-auth.log" docker-registry serve "$STATE/registry-auth.yml"
  echo "$AUTH_PORT" >"$STATE/registry-auth.port"
  log "registry with login started (pid $(cat "$STATE/registry-auth.pid")) on $AUTH_ADDR"
fi
wait_for "registry with login" "$STATE/registry-auth.pid" "$STATE/registry-auth.yml" auth_registry_ok
[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$AUTH_ADDR/v2/")" = 401 ] ||
  die "the registry on $AUTH_ADDR answers without a login"

service_ok() { curl -fsS --max-time 2 --unix-socket "$SOCK" http://d/_ping; }
if pid_alive "$STATE/podman.pid" "$SOCK"; then
  log "podman service already running (pid $(cat "$STATE/podman.pid"))"
else
  rm -f "$SOCK"
  start_daemon podman "$STATE/logs/podman-service.log" \
    podman system service --time=0 "unix://$SOCK"
  log "podman service started (pid $(cat "$STATE/podman.pid")) on $SOCK"
fi
wait_for "podman service" "$STATE/podman.pid" "$SOCK" service_ok

# ---------------------------------------------------------------------------------------------
# 4. Images: build, push, and drop them from the engine's store again so that a deploy really
#    pulls them from the registry.
# ---------------------------------------------------------------------------------------------
TAGS=(v1 v2 bad crash once slow1 slow2)
MANIFEST_ACCEPT='application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json'
registry_digest() { # digest of REGISTRY/fleet/app:TAG as the registry serves it, or nothing
  curl -fsS --max-time 5 -o /dev/null -D - -I -H "Accept: $MANIFEST_ACCEPT" \
    "http://$REGISTRY/v2/fleet/app/manifests/$1" 2>/dev/null |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }'; true
}

build_image() { # build_image TAG
  local tag=$1 root="$STATE/build/rootfs-$1" ref="$REGISTRY/fleet/app:$1"
  rm -rf "$root"
  mkdir -p "$root/bin" "$root/www" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev"
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  printf 'root:x:0:0:root:/:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  echo "$tag" >"$root/www/VERSION"
  if [ "$tag" = bad ]; then
    # No /www/health: httpd answers 404 and sends this error page as the body.
    printf '{"status":"starting","version":"%s"}\n' "$tag" >"$root/www/starting.json"
    printf 'E404:starting.json\n' >"$root/www/httpd.conf"
  else
    printf '{"status":"ok","version":"%s"}\n' "$tag" >"$root/www/health"
    : >"$root/www/httpd.conf"
  fi
  local boot=0
  case $tag in slow*)
    # A real app's boot (BOOT_SECONDS, default 3, before it listens) and a slow endpoint: GET
    # /cgi-bin/slow answers after 5 s, to tell requests cut mid-flight (bench/downtime.ts).
    boot='${BOOT_SECONDS:-3}'
    mkdir -p "$root/www/cgi-bin"
    printf '#!/bin/sh\n/bin/busybox sleep 5\nprintf "Content-Type: text/plain\\r\\n\\r\\nslow %s\\n"\n' "$tag" \
      >"$root/www/cgi-bin/slow"
    chmod 755 "$root/www/cgi-bin/slow"
    ;;
  esac
  # PID 1 ignores SIGTERM unless it has a handler: this wrapper makes `docker stop` quick.
  if [ "$tag" = crash ]; then
    printf '#!/bin/sh\necho "crash: exits at once" >&2\nexit 3\n' >"$root/bin/app-start"
  else
    { printf '#!/bin/sh\n'; cat <<'SH'; } >"$root/bin/app-start"
trap 'kill "$pid" 2>/dev/null; exit 0' TERM INT
SH
    if [ "$tag" = once ]; then # a restart keeps the container's files: only the first start fails
      printf '[ -e /tmp/started ] || { : >/tmp/started; /bin/busybox sleep 2; echo "once: first start fails" >&2; exit 3; }\n' \
        >>"$root/bin/app-start"
    fi
    printf '/bin/busybox sleep %s\n' "$boot" >>"$root/bin/app-start"
    cat >>"$root/bin/app-start" <<'SH'
/bin/busybox httpd -f -c /www/httpd.conf -p "${APP_ADDR:-127.0.0.1}:${APP_PORT:-8080}" -h /www &
pid=$!
wait "$pid"
SH
  fi
  chmod 755 "$root/bin/app-start"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$STATE/build/$tag.tar" .
  podman import -q \
    --change 'CMD ["/bin/app-start"]' \
    --change "ENV APP_PORT=8080" \
    --change "LABEL org.opencontainers.image.version=$tag" \
    --change "EXPOSE 8080" \
    "$STATE/build/$tag.tar" "$ref" >/dev/null
  podman push -q --tls-verify=false --format v2s2 --digestfile "$STATE/build/$tag.digest" "$ref" \
    >>"$STATE/logs/push.log" 2>&1 || die "push of $ref failed; see $STATE/logs/push.log"
  podman rmi -f "$ref" >/dev/null 2>&1 || true
}

declare -A DIGEST
need_build=
for t in "${TAGS[@]}"; do
  DIGEST[$t]=$(registry_digest "$t")
  [ -n "${DIGEST[$t]}" ] || need_build=1
done
if [ -n "$need_build" ]; then
  log "building and pushing $REGISTRY/fleet/app:{${TAGS[*]}}"
  for t in "${TAGS[@]}"; do
    build_image "$t"
    DIGEST[$t]=$(registry_digest "$t")
    [ -n "${DIGEST[$t]}" ] || die "registry does not serve fleet/app:$t after push"
  done
else
  log "images already in the registry"
fi
[ "${DIGEST[v1]}" != "${DIGEST[v2]}" ] || die "v1 and v2 have the same digest"

# The v2 image again, in the registry that requires a login: pulled from the open one, pushed with a
# login whose password goes on stdin to an auth file of this STATE_DIR, and dropped from the store again.
PRIVATE="$AUTH_REGISTRY/fleet/private:v2"
if ! curl -fsS --max-time 5 -o /dev/null -u "$AUTH_USER:$AUTH_PASSWORD" -H "Accept: $MANIFEST_ACCEPT" \
  "http://$AUTH_ADDR/v2/fleet/private/manifests/v2"; then
  log "pushing $PRIVATE"
  {
    podman pull -q --tls-verify=false "$REGISTRY/fleet/app:v2" &&
      podman tag "$REGISTRY/fleet/app:v2" "$PRIVATE" &&
      podman login --authfile "$STATE/push-auth.json" --tls-verify=false -u "$AUTH_USER" --password-stdin \
        "$AUTH_REGISTRY" <"$STATE/registry-auth.password" &&
      podman push -q --authfile "$STATE/push-auth.json" --tls-verify=false --format v2s2 "$PRIVATE"
  } >>"$STATE/logs/push.log" 2>&1 || die "push of $PRIVATE failed; see $STATE/logs/push.log"
  podman rmi -f "$PRIVATE" "$REGISTRY/fleet/app:v2" >/dev/null 2>&1 || true
fi

# ---------------------------------------------------------------------------------------------
# 5. Environment for the tests.
# ---------------------------------------------------------------------------------------------
{
  printf 'export DOCKER_HOST=%q\n' "unix://$SOCK"
  printf 'export FLEET_E2E_REGISTRY=%q\n' "$REGISTRY"
  printf 'export FLEET_E2E_AUTH_REGISTRY=%q\n' "$AUTH_REGISTRY"
  printf 'export FLEET_E2E_AUTH_USER=%q\n' "$AUTH_USER"
  printf 'export FLEET_E2E_AUTH_PASSWORD_FILE=%q\n' "$STATE/registry-auth.password"
  printf 'export FLEET_E2E_IMAGE_PRIVATE=%q\n' "$PRIVATE"
  printf 'export CONTAINERS_CONF=%q\n' "$CONTAINERS_CONF"
  printf 'export CONTAINERS_REGISTRIES_CONF=%q\n' "$CONTAINERS_REGISTRIES_CONF"
  printf 'export CONTAINERS_STORAGE_CONF=%q\n' "$CONTAINERS_STORAGE_CONF"
  printf 'export FLEET_E2E_STATE_DIR=%q\n' "$STATE"
  for t in "${TAGS[@]}"; do
    T=${t^^}
    printf 'export FLEET_E2E_IMAGE_%s=%q\n' "$T" "$REGISTRY/fleet/app:$t"
    printf 'export FLEET_E2E_DIGEST_%s=%q\n' "$T" "${DIGEST[$t]}"
  done
} >"$STATE/env.tmp"
mv "$STATE/env.tmp" "$STATE/env"
cat "$STATE/env"
