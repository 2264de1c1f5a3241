#!/usr/bin/env bash
# The fast loop: the shared package's, API, model and stress-tool suites on the existing .venv, side by side, with the tiny model the
# tests build themselves (testkit/tiny_model.py). No apt, no environment rebuild, no conversion: tests that need the
# converted ResNet50 (marker real_model) are left to `make test`.
set -euo pipefail
source "$(dirname "$0")/common.sh"
[ -x "$VENV/bin/python" ] || { log "no $VENV yet: run \`make test\` or \`make setup\` once"; exit 2; }
command -v redis-server >/dev/null || { log "redis-server is not on PATH: run \`make setup\` once"; exit 2; }
LOG="$(mktemp -d)"
trap 'rm -rf "$LOG"' EXIT
# name:folder:test paths. The worker-process tests (the long pole, mostly waiting on child processes) get a job of
# their own so they overlap the rest.
JOBS=(common:common:tests api:api:tests model:model:"tests --ignore=tests/test_process.py" model-processes:model:tests/test_process.py
      stress_test:stress_test:tests)
pids=()
for job in "${JOBS[@]}"; do
  IFS=: read -r name folder paths <<<"$job"
  # shellcheck disable=SC2086  # paths is a word list
  (cd "$ROOT/$folder" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider --timeout=120 -m "not real_model" $paths) \
    >"$LOG/$name.txt" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
for job in "${JOBS[@]}"; do
  name="${job%%:*}"
  log "$name"
  cat "$LOG/$name.txt"
done
exit $status
