#!/usr/bin/env bash
# The fast loop: the API, model and stress-tool suites on the existing .venv, side by side, with the tiny model the
# tests build themselves (testkit/tiny_model.py). No apt, no environment rebuild, no conversion: tests that need the
# converted ResNet50 (marker real_model) are left to `make test`.
set -euo pipefail
source "$(dirname "$0")/common.sh"
[ -x "$VENV/bin/python" ] || { log "no $VENV yet: run \`make test\` or \`make setup\` once"; exit 2; }
command -v redis-server >/dev/null || { log "redis-server is not on PATH: run \`make setup\` once"; exit 2; }
LOG="$(mktemp -d)"
trap 'rm -rf "$LOG"' EXIT
pids=()
for suite in api model stress_test; do
  (cd "$ROOT/$suite" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider --timeout=120 -m "not real_model" tests) \
    >"$LOG/$suite.txt" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || status=1
done
for suite in api model stress_test; do
  log "$suite"
  cat "$LOG/$suite.txt"
done
exit $status
