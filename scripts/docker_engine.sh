#!/usr/bin/env bash
# Makes a Docker engine answer: installs Debian's docker.io, debootstrap and docker-compose when missing,
# writes /etc/docker/daemon.json first (bridges inside 198.19.0.0/16, this project's network rule, in place before
# the daemon ever starts), and starts dockerd when no daemon answers (no init system is assumed), with Docker's
# own defaults for the storage driver, iptables and cgroups; dockerd's log is /var/log/dockerd.log.
# Exit 0: `docker info` answers. Exit 3: no engine can run here (the reason is printed).
set -euo pipefail
source "$(dirname "$0")/common.sh"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
running=0; docker info >/dev/null 2>&1 && running=1
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
if [ $running -eq 0 ]; then
  # Docker picks addresses in the private ranges unless told otherwise; here every bridge must live in 198.19.0.0/16.
  # Written before docker.io is installed: where an init system runs, the package starts the daemon at once.
  if [ ! -s /etc/docker/daemon.json ]; then
    $SUDO mkdir -p /etc/docker
    printf '%s\n' '{' '  "bip": "198.19.0.1/24",' \
      '  "default-address-pools": [{"base": "198.19.0.0/16", "size": 24}]' '}' | $SUDO tee /etc/docker/daemon.json >/dev/null
  fi
  grep -q '198\.19\.' /etc/docker/daemon.json || { log "/etc/docker/daemon.json sets no 198.19.0.0/16 network: fix it"; exit 1; }
fi
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || { log "cannot install ${need[*]}: no apt-get"; exit 3; }
  log "installing ${need[*]} with apt-get"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: /var/log/dockerd.log)"
  # A daemon must hold none of the caller's descriptors: an inherited pipe (e.g. `make test | tee`, or a process
  # substitution) would keep the reader waiting for EOF for as long as dockerd lives.
  $SUDO bash -c 'for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
               setsid dockerd </dev/null >>/var/log/dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
docker info >/dev/null 2>&1 || { log "dockerd did not come up: $(tail -n 3 /var/log/dockerd.log 2>/dev/null)"; exit 3; }
