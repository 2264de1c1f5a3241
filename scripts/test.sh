#!/usr/bin/env bash
# Runs every test suite against real parts: it installs what is missing, converts ResNet50 with seeded
# random weights once (cached in MODEL_DIR), then runs each service's tests from inside its folder.
set -euo pipefail
source "$(dirname "$0")/common.sh"
export WEIGHTS="${TEST_WEIGHTS:-random:0}"
"$ROOT/scripts/install_system.sh" --test-tools
"$ROOT/scripts/make_venvs.sh"
"$ROOT/scripts/ensure_model.sh"
cd "$ROOT"
PYTEST=(-q -p no:cacheprovider --timeout=600)
status=0
run() { log "$*"; "$@" || status=1; }
run bash -c "cd conversion && '$VENV_CONVERT/bin/python' -m pytest ${PYTEST[*]} tests"
run bash -c "cd api && '$VENV/bin/python' -m pytest ${PYTEST[*]} tests"
run bash -c "cd model && '$VENV/bin/python' -m pytest ${PYTEST[*]} tests"
run "$VENV/bin/python" -m pytest "${PYTEST[@]}" tests
exit $status
