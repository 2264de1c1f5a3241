#!/usr/bin/env bash
# Installs the system packages the project needs (Debian): redis-server and nginx if not on PATH, nginx's Lua module
# if missing, and with --test-tools Chromium (browser test), docker-compose (offline compose check), kubectl
# (kustomize builds), promtool (Prometheus config and dashboard queries), iproute2 and iptables (network-namespace
# test).
# Needs root (or sudo) only when something is missing.
set -euo pipefail
source "$(dirname "$0")/common.sh"
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)   # make run's front door
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || need+=(libnginx-mod-http-lua)   # nginx counts its refusals
if [ "${1:-}" = "--test-tools" ]; then   # the browser test and the offline compose check
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
  command -v envsubst >/dev/null 2>&1 || need+=(gettext-base)   # renders the nginx template as the nginx image does
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)  # Debian's kubectl (kustomize built in)
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  command -v iptables >/dev/null 2>&1 || need+=(iptables)
fi
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
log "installing ${need[*]} with apt-get"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
