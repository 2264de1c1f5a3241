#!/usr/bin/env bash
# `make model`: adds version N+1 to the model repository (MODEL_REPOSITORY/MODEL_NAME/<version>/) unless the newest
# version was already made from WEIGHTS with the class names LABELS (and, with INT8=1, calibrated on CALIBRATION); then deletes old versions,
# keeping the newest MODEL_KEEP_VERSIONS and every version a live worker still serves. Running workers pick the new
# version up within MODEL_POLL_S (docs/model-repository.md). MODEL_DIR set: converts into that one folder instead.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
extra=()
[ "${INT8:-0}" = "1" ] && extra+=(--int8)
[ "${INT8_FORCE:-0}" = "1" ] && extra+=(--int8-force)
[ -n "${CALIBRATION:-}" ] && extra+=(--calibration-dir "$CALIBRATION")
if [ -n "${MODEL_DIR:-}" ]; then   # the flat-folder override (tests, benchmarks): one folder, converted in place
  status=()
  [ "${INT8:-0}" = "1" ] && status+=(--int8)
  [ -n "${LABELS:-}" ] && status+=(--labels "$LABELS")
  if "$VENV_CONVERT/bin/python" conversion/card_status.py --weights "$WEIGHTS" --model-dir "$MODEL_DIR" "${status[@]}"; then
    log "model in $MODEL_DIR is up to date for WEIGHTS=$WEIGHTS"
    exit 0
  fi
  log "converting ResNet50 (WEIGHTS=$WEIGHTS ${extra[*]}) into $MODEL_DIR"
  exec "$VENV_CONVERT/bin/python" conversion/convert.py --weights "$WEIGHTS" --out-dir "$MODEL_DIR" "${extra[@]}" ${CONVERT_ARGS:-}
fi
# A flat model folder in model/artifacts (a conversion with MODEL_DIR set): its files are reused (hard links) when
# made from the same weights.
IFS=: read -ra reusable <<<"${MODEL_REUSE_FROM:-}"   # explicit --reuse-from options replace the variable: pass it on
for folder in "${reusable[@]}"; do [ -n "$folder" ] && extra+=(--reuse-from "$folder"); done
[ -f "$ROOT/model/artifacts/model_card.json" ] && extra+=(--reuse-from "$ROOT/model/artifacts")
log "model repository $MODEL_REPOSITORY/$MODEL_NAME: WEIGHTS=$WEIGHTS ${extra[*]}"
"$VENV_CONVERT/bin/python" conversion/publish_version.py --weights "$WEIGHTS" --repository "$MODEL_REPOSITORY" \
  --name "$MODEL_NAME" "${extra[@]}" ${CONVERT_ARGS:-}
"$VENV/bin/python" model/repository.py prune --keep "${MODEL_KEEP_VERSIONS:-3}"
