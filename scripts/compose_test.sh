#!/usr/bin/env bash
# `make compose-test`: the containers really built and run. scripts/compose_images.sh prepares the engine and
# builds the images offline, then tests/containers checks the compose stack with two model containers through
# its published port, and the Kubernetes dev overlay's pod templates run under Docker (test_pod_spec.py). Where no
# Docker engine can run, the tests are reported as skipped with the reason.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
export COMPOSE_TEST=1
t0=$SECONDS
set +e
"$ROOT/scripts/compose_images.sh" 2> >(tee "$ROOT/.run/compose_images.log" >&2)
rc=$?
set -e
if [ $rc -eq 3 ]; then
  export COMPOSE_ENGINE_UNAVAILABLE="$(grep -v '^\[.*\] starting' "$ROOT/.run/compose_images.log" | tail -n 1)"
elif [ $rc -ne 0 ]; then
  exit $rc
fi
"$VENV/bin/python" -m pytest -q -p no:cacheprovider --timeout=900 -s tests/containers "$@"
log "compose-test: $((SECONDS - t0)) s in all"
