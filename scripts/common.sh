# Shared defaults for the scripts (sourced, not run).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
VENV_CONVERT="$ROOT/.venv-convert"
PYTHON_BIN="${PYTHON_BIN:-python3.11}"
command -v "$PYTHON_BIN" >/dev/null 2>&1 || PYTHON_BIN=python3
export MODEL_REPOSITORY="${MODEL_REPOSITORY:-$ROOT/model/repository}" MODEL_NAME="${MODEL_NAME:-resnet50}"
export MODEL_DIR="${MODEL_DIR:-}"   # set: serve (and convert into) exactly this folder instead of the repository
WEIGHTS="${WEIGHTS:-imagenet}"
log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
