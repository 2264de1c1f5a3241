#!/usr/bin/env bash
# Converts ResNet50 to ONNX when MODEL_DIR has no model card, or one made from other weights than WEIGHTS
# (or, with INT8=1, one without the INT8 variant).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
extra=()
[ "${INT8:-0}" = "1" ] && extra+=(--int8)
if "$VENV_CONVERT/bin/python" conversion/card_status.py --weights "$WEIGHTS" --model-dir "$MODEL_DIR" "${extra[@]}"; then
  log "model in $MODEL_DIR is up to date for WEIGHTS=$WEIGHTS ${extra[*]}"
  exit 0
fi
log "converting ResNet50 (WEIGHTS=$WEIGHTS ${extra[*]}) into $MODEL_DIR"
"$VENV_CONVERT/bin/python" conversion/convert.py --weights "$WEIGHTS" --out-dir "$MODEL_DIR" "${extra[@]}" ${CONVERT_ARGS:-}
