#!/usr/bin/env bash
# ruff (configured in pyproject.toml): lint, then check that the code is formatted.
set -euo pipefail
source "$(dirname "$0")/common.sh"
"$VENV/bin/ruff" check "$ROOT"
"$VENV/bin/ruff" format --check "$ROOT"
