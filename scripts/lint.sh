#!/usr/bin/env bash
# ruff (configured in pyproject.toml): lint, then check that the code is formatted.
set -euo pipefail
source "$(dirname "$0")/common.sh"
[ -x "$VENV/bin/ruff" ] || { log "no ruff in $VENV yet: run \`make setup\` once"; exit 2; }
"$VENV/bin/ruff" check "$ROOT"
"$VENV/bin/ruff" format --check "$ROOT"
