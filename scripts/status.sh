#!/usr/bin/env bash
# State of every program of a running `make run` (supervisorctl against the run folder's supervisord).
set -euo pipefail
source "$(dirname "$0")/common.sh"
RUN_DIR="${RUN_DIR:-$ROOT/.run}"
[ -S "$RUN_DIR/supervisor.sock" ] || { log "no supervisord socket in $RUN_DIR: is make run running?"; exit 1; }
exec "$VENV/bin/supervisorctl" -c "$RUN_DIR/supervisord.conf" status "$@"
