#!/usr/bin/env bash
# Builds local stand-ins for the official base images from Debian packages, for machines with no registry:
# debootstrap makes one bookworm root filesystem (from the Debian mirror this machine already uses), each image
# adds its packages in a chroot, `docker import` turns it into an image. Stand-ins get their own names (local/...),
# never an official image's. An image whose recipe (packages, setup script, image settings) is unchanged is kept.
#   local/python:3.11  bookworm's python3.11 (3.11.2) in a virtual environment at /opt/python (PEP 668)
#   local/redis:7      Debian's redis-server, runs as user redis in /data
#   local/nginx:1      Debian's nginx and its Lua module (+ curl for health checks, as the official image) with its
#                      template entrypoint
set -euo pipefail
source "$(dirname "$0")/common.sh"
SUITE=bookworm
MIRROR="$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
WORK="$ROOT/.run/base-images"
ROOTFS="$WORK/rootfs-$(echo "$SUITE $MIRROR minbase" | sha256sum | cut -c1-16).tar"
ENVPATH="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

fresh() {  # fresh NAME RECIPE: the image exists and was built from this recipe
  [ "$(docker image inspect -f '{{ index .Config.Labels "recipe" }}' "$1" 2>/dev/null)" = "$2" ]
}

rootfs() {  # the shared minimal root filesystem, made once per recipe
  [ -f "$ROOTFS" ] && return
  rm -rf "$WORK/rootfs" && mkdir -p "$WORK/rootfs"
  log "debootstrap $SUITE (minbase) from $MIRROR"
  debootstrap --variant=minbase "$SUITE" "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 20 "$WORK/debootstrap.log" >&2; exit 1; }
  cp /etc/apt/sources.list.d/debian.sources "$WORK/rootfs/etc/apt/sources.list.d/" 2>/dev/null || true
  printf '#!/bin/sh\nexit 101\n' >"$WORK/rootfs/usr/sbin/policy-rc.d"; chmod +x "$WORK/rootfs/usr/sbin/policy-rc.d"
  tar -C "$WORK/rootfs" -cf "$ROOTFS" . && rm -rf "$WORK/rootfs"
}

image() {  # image NAME "PACKAGES" SETUP_SCRIPT CHANGE...: the shared rootfs + packages + setup, imported as NAME
  local name="$1" packages="$2" setup="$3"; shift 3
  local recipe
  recipe="$( (echo "$SUITE $packages $*"; cat "$ROOT/deploy/base-images/$setup") | sha256sum | cut -c1-16)"
  if fresh "$name" "$recipe"; then log "$name is up to date"; return; fi
  rootfs
  local dir="$WORK/${name//[\/:]/_}"
  rm -rf "$dir" && mkdir -p "$dir" && tar -C "$dir" -xf "$ROOTFS"
  log "$name: installing $packages"
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  [ -f "$dir/etc/apt/sources.list.d/debian.sources" ] && rm -f "$dir/etc/apt/sources.list"  # one source list
  chroot "$dir" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends $packages >/dev/null"
  cp "$ROOT/deploy/base-images/$setup" "$dir/tmp/setup.sh" && chroot "$dir" sh -e /tmp/setup.sh
  chroot "$dir" sh -c 'apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/* /var/cache/debconf/*-old /usr/share/doc/* /usr/share/man/*'
  : >"$dir/etc/resolv.conf"
  local changes=(--change "LABEL recipe=$recipe" --change 'LABEL org.opencontainers.image.description="local stand-in built by scripts/base_images.sh"')
  for c in "$@"; do changes+=(--change "$c"); done
  tar -C "$dir" -c . | docker import "${changes[@]}" - "$name" >/dev/null
  rm -rf "$dir"
  log "$name built ($(docker image inspect -f '{{ .Size }}' "$name" | awk '{printf "%.0f MB", $1/1e6}'))"
}

mkdir -p "$WORK"
image local/python:3.11 "python3.11 python3.11-venv ca-certificates" python.sh \
  "ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "ENV LANG=C.UTF-8" \
  'CMD ["python3"]'
image local/redis:7 "redis-server" redis.sh "ENV $ENVPATH" "WORKDIR /data" "USER redis" "EXPOSE 6379" \
  'CMD ["redis-server"]'
# The official image's STOPSIGNAL SIGQUIT (graceful) cannot be set by `docker import`: compose sets stop_signal.
image local/nginx:1 "nginx-light libnginx-mod-http-lua gettext-base curl" nginx.sh "ENV $ENVPATH" "EXPOSE 80" \
  'ENTRYPOINT ["/docker-entrypoint.sh"]' 'CMD ["nginx", "-g", "daemon off;"]'
rm -f "$ROOTFS"   # the images hold everything now; a recipe change starts from debootstrap again
