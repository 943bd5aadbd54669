#!/usr/bin/env bash
# postgres-image.sh STATE_DIR
#
# Builds a PostgreSQL 15 server image from this machine's Debian binaries (package postgresql-15; no
# image is pulled from the internet) and pushes it to the e2e stack's registry that engine-up.sh STATE_DIR
# started, as REGISTRY/fleet/postgres:15. Run as root, after engine-up.sh. Prints the image reference on
# stdout; progress and errors go to stderr. A second run with the same STATE_DIR reuses the pushed image.
#
# The image: a busybox-static rootfs, /usr/lib/postgresql/15 (without the LLVM JIT), /usr/share/postgresql/15,
# the shared libraries `ldd` lists for the programs and the modules initdb loads, a postgres user, and
# /bin/pg-start as its command. pg-start (as root) makes PGDATA (default /var/lib/postgresql/data, mount a
# volume there) and the socket directory /var/run/postgresql postgres's, runs initdb on the first start
# (locale C, UTF8, trust for local connections) and creates the role and database POSTGRES_USER /
# POSTGRES_DB (default app/app) in single-user mode, then execs the server as postgres with
# listen_addresses='' — no TCP at all: clients connect through the unix socket inside the container
# (`docker compose exec -T db psql -U app app`). The server is PID 1 and shuts down on SIGTERM.
set -euo pipefail

log() { printf 'postgres-image: %s\n' "$*" >&2; }
die() { printf 'postgres-image: ERROR: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 && -n "$1" ]] || die "usage: $0 STATE_DIR"
[ "$(id -u)" = 0 ] || die "must run as root"
STATE=$(cd "$1" && pwd -P)
[ -s "$STATE/env" ] || die "$STATE/env is missing: run engine-up.sh $STATE first"
# shellcheck disable=SC1091
. "$STATE/env" # CONTAINERS_* (the stack's own podman storage and registries) and FLEET_E2E_REGISTRY
unset DOCKER_HOST

PG=/usr/lib/postgresql/15
[ -x "$PG/bin/postgres" ] || die "$PG/bin/postgres is missing: apt-get install postgresql-15 (.ci/setup.sh does)"
REF="$FLEET_E2E_REGISTRY/fleet/postgres:15"
ACCEPT='application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json'
if curl -fsS --max-time 5 -o /dev/null -I -H "Accept: $ACCEPT" \
  "http://$FLEET_E2E_REGISTRY/v2/fleet/postgres/manifests/15" 2>/dev/null; then
  log "$REF already in the registry"
  echo "$REF"
  exit 0
fi

BUILD="$STATE/build/postgres"
root="$BUILD/rootfs"
rm -rf "$BUILD"
mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,var/run/postgresql,var/lib/postgresql/data,usr/lib/postgresql,usr/share/postgresql,usr/share/zoneinfo/Etc}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in sh mkdir chown chmod su cat; do ln -s busybox "$root/bin/$applet"; done

# The server and its programs; the JIT (LLVM, ~100 MB of libraries) is left out and turned off.
cp -a "$PG" "$root/usr/lib/postgresql/"
rm -rf "$root$PG/lib/bitcode" "$root$PG/lib/llvmjit.so" "$root$PG/lib/llvmjit_types.bc"
cp -a /usr/share/postgresql/15 "$root/usr/share/postgresql/"
rm -rf "$root/usr/share/postgresql/15/man"
# Debian's postgres reads the system's time zone data: UTC is enough (TZ=UTC below).
cp /usr/share/zoneinfo/UTC "$root/usr/share/zoneinfo/UTC"
cp /usr/share/zoneinfo/Etc/UTC "$root/usr/share/zoneinfo/Etc/UTC"

# Every shared library the programs and the loadable modules need, at the path the loader looks in.
libs=$(for f in "$root$PG"/bin/* "$root$PG"/lib/*.so; do ldd "$f" 2>/dev/null || true; done |
  awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
for lib in $libs; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# The loader at its canonical path (ldd prints /lib64/ld-linux-x86-64.so.2 on amd64).
[ -e "$root/lib64/ld-linux-x86-64.so.2" ] || [ "$(uname -m)" != x86_64 ] || die "no dynamic loader in the image"

printf 'root:x:0:0:root:/:/bin/sh\npostgres:x:70:70:PostgreSQL:/var/lib/postgresql:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\npostgres:x:70:\n' >"$root/etc/group"

cat >"$root/bin/pg-start" <<'SH'
#!/bin/sh
# The container's command: initdb on the first start, then the server as postgres, unix socket only.
set -eu
export PATH=/usr/lib/postgresql/15/bin:/bin
data=${PGDATA:-/var/lib/postgresql/data}
user=${POSTGRES_USER:-app}
db=${POSTGRES_DB:-$user}
mkdir -p "$data" /var/run/postgresql
chown postgres:postgres "$data" /var/run/postgresql
chmod 700 "$data"
if [ ! -s "$data/PG_VERSION" ]; then
  su -s /bin/sh postgres -c "initdb -D '$data' -U postgres --auth=trust -E UTF8 --locale=C >/dev/null"
  printf 'CREATE ROLE "%s" LOGIN;\nCREATE DATABASE "%s" OWNER "%s";\n' "$user" "$db" "$user" |
    su -s /bin/sh postgres -c "postgres --single -D '$data' -c jit=off postgres >/dev/null"
fi
exec su -s /bin/sh postgres -c "exec postgres -D '$data' -c listen_addresses= -c jit=off"
SH
chmod 755 "$root/bin/pg-start"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$BUILD/postgres.tar" .
log "importing $REF ($(du -sh "$BUILD/postgres.tar" | cut -f1))"
podman import -q \
  --change 'CMD ["/bin/pg-start"]' \
  --change 'ENV PATH=/usr/lib/postgresql/15/bin:/bin' \
  --change 'ENV TZ=UTC' \
  --change 'ENV PGDATA=/var/lib/postgresql/data' \
  --change 'STOPSIGNAL SIGINT' \
  --change 'LABEL org.opencontainers.image.title=postgres-15-e2e' \
  "$BUILD/postgres.tar" "$REF" >/dev/null
podman push -q --tls-verify=false --format v2s2 "$REF" >>"$STATE/logs/push.log" 2>&1 ||
  die "push of $REF failed; see $STATE/logs/push.log"
podman rmi -f "$REF" >/dev/null 2>&1 || true
rm -rf "$BUILD"
log "pushed $REF"
echo "$REF"
