#!/usr/bin/env bash
# Builds the dbpulse container image from packaging/docker/Dockerfile (`make image`).
#
#   packaging/docker/build-image.sh [--tag NAME] [--cache-store] [--also TAG FILE]...
#                                   [--save FILE]
#
# * Engine: podman (with buildah inside) when installed, else docker; DBPULSE_IMAGE_ENGINE
#   picks one. podman uses packaging/docker/containers.conf (runc, cgroupfs, ulimits).
# * Tag: dbpulse:<CMake project version>, e.g. dbpulse:0.1.0.
# * Base image: debian:12 from the engine's storage; else a pull; else (no registry
#   reachable) a local debian:12 imported from `debootstrap --variant=minbase bookworm`,
#   whose root filesystem is kept as a tarball in the cache directory
#   (DBPULSE_IMAGE_CACHE, default /var/cache/dbpulse-image; rebuilt after 30 days).
#   apt inside the build reaches the Debian archive through the host's network.
# * --cache-store (podman): build in a storage of dbpulse's own under the cache directory
#   instead of the engine's default one, so its layers (the base image, both stages' apt
#   layers, the compiled build stage) survive from one fresh clone's test run to the next;
#   layers that older builds left there are pruned. The pod test builds this way.
# * --also TAG FILE: build one more image, from the Dockerfile FILE with the repository
#   as its context, in the same storage (the pod test's chat-server stand-in).
# * --save FILE: write the image (and the --also ones) to one docker-archive, to
#   `podman load` into another storage.
# Prints the image's size at the end. A missing cache only means a slower build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
version=$(sed -n 's/^project(dbpulse VERSION \([0-9][0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
tag="dbpulse:${version:?no project version in CMakeLists.txt}"
cache=${DBPULSE_IMAGE_CACHE:-/var/cache/dbpulse-image}
mirror=${DBPULSE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=docker.io/library/debian:12
cache_store=0
save=""
also=()

while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --cache-store) cache_store=1; shift ;;
    --also) also+=("$2" "$3"); shift 3 ;;
    --save) save=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) echo "build-image.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { echo "build-image.sh: $*" >&2; }

engine=${DBPULSE_IMAGE_ENGINE:-}
if [ -z "$engine" ]; then
  if command -v podman >/dev/null 2>&1; then engine=podman
  elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then engine=docker
  else
    log "neither podman nor a running Docker engine; bash packaging/deps.sh installs podman"
    exit 1
  fi
fi

ctl=("$engine")
if [ "$engine" = podman ]; then
  export CONTAINERS_CONF="$here/containers.conf"
  if [ "$cache_store" = 1 ]; then
    # Storage of our own: the image layers persist under the cache directory; the run
    # root (locks, mounts of build containers) goes with the machine's boot.
    ctl+=(--root "$cache/storage" --runroot /run/dbpulse-image/storage
          --tmpdir /run/dbpulse-image/libpod)
  fi
elif [ "$cache_store" = 1 ]; then
  log "--cache-store needs podman; building in docker's own storage"
  cache_store=0
fi

mkdir -p "$cache"
# One build at a time per cache directory: the rootfs tarball and the storage are shared
# by every clone on this machine.
exec 9>"$cache/lock"
flock 9

image_exists() {
  if [ "$engine" = podman ]; then "${ctl[@]}" image exists "$1"
  else docker image inspect "$1" >/dev/null 2>&1; fi
}

# ---- the base image ---------------------------------------------------------------
rootfs="$cache/debian-12-minbase.tar"
make_rootfs() {
  command -v debootstrap >/dev/null || { log "debootstrap missing (packaging/deps.sh)"; exit 1; }
  local tmp
  tmp=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  log "debootstrap --variant=minbase bookworm from $mirror (about 30 s)"
  debootstrap --variant=minbase bookworm "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
    tail -20 "$tmp/debootstrap.log" >&2; exit 1; }
  # The sources of Debian's own debian:12 image (with updates and security).
  rm -f "$tmp/root/etc/apt/sources.list"
  cat >"$tmp/root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${DBPULSE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  chroot "$tmp/root" apt-get clean
  rm -rf "$tmp/root/var/lib/apt/lists/"* "$tmp/root/var/log/"*.log "$tmp/root/var/cache/debconf/"*-old
  tar -C "$tmp/root" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' \
      --exclude='./sys/*' -cf "$rootfs.tmp" .
  mv "$rootfs.tmp" "$rootfs"
}

if ! image_exists "$base" && ! image_exists debian:12; then
  if [ "${DBPULSE_IMAGE_PULL:-1}" = 1 ] && timeout 120 "${ctl[@]}" pull -q "$base" >/dev/null 2>&1; then
    log "pulled $base"
  else
    if [ ! -s "$rootfs" ] || [ -n "$(find "$rootfs" -mtime +30)" ]; then make_rootfs; fi
    log "no registry: importing $rootfs as $base"
    "${ctl[@]}" import --change 'CMD ["bash"]' "$rootfs" "$base" >/dev/null
  fi
fi

# ---- the image --------------------------------------------------------------------
build=("${ctl[@]}" build --network host -f "$here/Dockerfile")
if [ "$engine" = podman ]; then
  # docker format: the OCI format has no HEALTHCHECK. --pull=never: debian:12 is local.
  build+=(--format docker --pull=never --layers)
fi
start=$SECONDS
if [ "$cache_store" = 1 ]; then
  # The build stage under a name of its own, so pruning keeps its layers (the compiled
  # tree) for the next build of the same sources.
  "${build[@]}" --target build -t localhost/dbpulse-build:cache "$src"
fi
"${build[@]}" -t "$tag" "$src"
log "built $tag in $((SECONDS - start)) s"
extra_tags=()
for ((i = 0; i < ${#also[@]}; i += 2)); do
  "${ctl[@]}" build --network host --format docker --pull=never --layers \
      -f "${also[i+1]}" -t "${also[i]}" "$src"
  extra_tags+=("${also[i]}")
done
if [ "$cache_store" = 1 ]; then
  # What older builds left: containers of interrupted builds, then images nothing names
  # any more, leaf first, until none is left (the cached chains have tagged leaves).
  buildah --root "$cache/storage" --runroot /run/dbpulse-image/storage rm --all >/dev/null ||
    log "could not remove the containers of interrupted builds (buildah rm --all)"
  while [ -n "$("${ctl[@]}" image prune -f 2>/dev/null)" ]; do :; done
fi

if [ -n "$save" ]; then
  rm -f "$save"
  "${ctl[@]}" save --format docker-archive -m -o "$save" "$tag" "${extra_tags[@]}"
fi

if [ "$engine" = podman ]; then
  size=$("${ctl[@]}" image inspect --format '{{.Size}}' "$tag")
else
  size=$(docker image inspect --format '{{.Size}}' "$tag")
fi
log "$tag: $((size / 1000000)) MB ($size bytes)"
