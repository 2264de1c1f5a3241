#!/usr/bin/env bash
# The last LINES lines of every program's log of `make run`, then follows them (Ctrl-C stops following).
set -euo pipefail
source "$(dirname "$0")/common.sh"
RUN_DIR="${RUN_DIR:-$ROOT/.run}"
exec tail -n "${LINES:-40}" -F "$RUN_DIR"/logs/{redis,model,gunicorn,nginx}.log
