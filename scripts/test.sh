#!/usr/bin/env bash
# Runs every test suite against real parts: it installs what is missing, converts ResNet50 with seeded
# random weights once (cached as version 1 of .run/test-repository), then runs each service's tests from inside its folder.
set -euo pipefail
source "$(dirname "$0")/common.sh"
export WEIGHTS="${TEST_WEIGHTS:-random:0}" INT8=1   # INT8 too, so its serving path is tested
# Its own model repository: the tests never touch the one `make run` serves (model/repository). Version 1 holds the
# seeded model; a test folder of the flat layout (.run/test-model) is reused instead of converting again.
export MODEL_REPOSITORY="${TEST_MODEL_REPOSITORY:-$ROOT/.run/test-repository}" MODEL_NAME=resnet50
export MODEL_REUSE_FROM="$ROOT/.run/test-model" MODEL_DIR="${TEST_MODEL_DIR:-}"
"$ROOT/scripts/install_system.sh" --test-tools
"$ROOT/scripts/make_venvs.sh" --test-clients
"$ROOT/scripts/ensure_model.sh"
if [ -z "$MODEL_DIR" ]; then   # the suites get the newest version folder as their MODEL_DIR (testkit.paths)
  latest="$(ls "$MODEL_REPOSITORY/$MODEL_NAME" | grep -E '^[0-9]+$' | sort -n | tail -1)"
  export MODEL_DIR="$MODEL_REPOSITORY/$MODEL_NAME/$latest"
fi
LOG="$(mktemp -d)"
trap 'rm -rf "$LOG"' EXIT
PYTEST=(-m pytest -q -p no:cacheprovider --timeout=600)
status=0
suite() {  # suite NAME DIR PYTHON
  log "$1: $3 ${PYTEST[*]} tests (in $2)"
  (cd "$ROOT/$2" && "$3" "${PYTEST[@]}" tests) 2>&1 | tee "$LOG/$1.txt" || status=1
}
log "lint: ruff check + ruff format --check"
"$ROOT/scripts/lint.sh" || status=1
suite common common "$VENV/bin/python"
suite conversion conversion "$VENV_CONVERT/bin/python"
suite api api "$VENV/bin/python"
suite model model "$VENV/bin/python"
suite stress-tools stress_test "$VENV/bin/python"
suite end-to-end . "$VENV/bin/python"
# The containers, really built and run (skipped, saying why, only where no Docker engine can run).
log "containers: scripts/compose_test.sh"
"$ROOT/scripts/compose_test.sh" 2>&1 | tee "$LOG/containers.txt" || status=1
# One closing line for the whole run, summed over the suites' own summaries.
cat "$LOG"/*.txt | "$VENV/bin/python" -c '
import re, sys
totals = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
for line in sys.stdin:
    if re.search(r" in [0-9.]+s", line):
        for count, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", line):
            totals[word.rstrip("s") if word.startswith("error") else word] += int(count)
passed, failed, skipped = totals["passed"], totals["failed"] + totals["error"], totals["skipped"]
print(f"total: {passed} passed, {failed} failed, {skipped} skipped")'
exit $status
