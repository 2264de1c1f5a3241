#!/usr/bin/env bash
# Installs the system packages the project needs (Debian): redis-server and nginx if not on PATH, and with
# --test-tools Chromium (browser test) and docker-compose (offline compose check). Needs root (or sudo) only when something is missing.
set -euo pipefail
source "$(dirname "$0")/common.sh"
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)   # make run's front door
if [ "${1:-}" = "--test-tools" ]; then   # the browser test and the offline compose check
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
  command -v envsubst >/dev/null 2>&1 || need+=(gettext-base)   # renders the nginx template as the nginx image does
fi
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
log "installing ${need[*]} with apt-get"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
