#!/usr/bin/env bash
# Per-core scaling in containers (`make matrix CONTAINERS=1`): images built offline by compose_images.sh, then
# the same load against 1 and 2 model containers at cpus: 1 each. Arguments go to `python -m stress_test.compose_matrix`.
set -euo pipefail
source "$(dirname "$0")/common.sh"
"$ROOT/scripts/compose_images.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m stress_test.compose_matrix "$@"
