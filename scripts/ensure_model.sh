#!/usr/bin/env bash
# Converts ResNet50 to ONNX when MODEL_DIR has no model card, or one made from other weights than WEIGHTS.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
if "$VENV_CONVERT/bin/python" conversion/card_status.py --weights "$WEIGHTS" --model-dir "$MODEL_DIR"; then
  log "model in $MODEL_DIR is up to date for WEIGHTS=$WEIGHTS"
  exit 0
fi
log "converting ResNet50 (WEIGHTS=$WEIGHTS) into $MODEL_DIR"
"$VENV_CONVERT/bin/python" conversion/convert.py --weights "$WEIGHTS" --out-dir "$MODEL_DIR" ${CONVERT_ARGS:-}
