#!/usr/bin/env bash
# Creates one virtual environment per serving peer (.venv-peer-bentoml, .venv-peer-ray, .venv-peer-mlserver) for
# `make bench-peers`, each from its pinned stress_test/peers/requirements-<peer>.txt; a stamp holding the
# requirements' checksum skips the install when nothing changed. Usage: peer_envs.sh [PEER...] (default: all).
set -euo pipefail
source "$(dirname "$0")/common.sh"
peer_env() {  # peer_env NAME
  local name="$1" dir="$ROOT/.venv-peer-$1" req="stress_test/peers/requirements-$1.txt" sum
  sum="$(cd "$ROOT" && cat "$req" model/requirements.txt | sha256sum | cut -c1-64)"
  if [ -f "$dir/.requirements.sha256" ] && [ "$(cat "$dir/.requirements.sha256")" = "$sum" ]; then return; fi
  log "installing $req into $dir"
  [ -x "$dir/bin/python" ] || "$PYTHON_BIN" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --upgrade pip
  (cd "$ROOT" && "$dir/bin/python" -m pip install -q -r "$req")
  echo "$sum" > "$dir/.requirements.sha256"
}
for peer in "${@:-bentoml ray mlserver}"; do
  for p in $peer; do peer_env "$p"; done
done
