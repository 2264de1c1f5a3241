#!/usr/bin/env bash
# Creates .venv (service + tests) and .venv-convert (TensorFlow, conversion only) and installs the pinned
# requirements, then the shared package (common/) editable, so a change to it needs no reinstall; with --test-clients
# also .venv-kserve, KServe's SDK alone (a client the end-to-end tests drive; its pins clash with the service's).
# A stamp holding the requirements' checksum skips the install when nothing changed.
set -euo pipefail
source "$(dirname "$0")/common.sh"
make_venv() {  # make_venv DIR REQUIREMENTS_FILE [no-common]
  local dir="$1" req="$2" common="${3:-common}" sum inputs
  inputs=("$req")   # what the install reads: a change to any of them reinstalls
  [ "$common" = common ] && inputs+=(api/requirements.txt model/requirements.txt common/pyproject.toml)
  sum="$(cd "$ROOT" && cat "${inputs[@]}" | sha256sum | cut -c1-64)"
  if [ -f "$dir/.requirements.sha256" ] && [ "$(cat "$dir/.requirements.sha256")" = "$sum" ]; then return; fi
  log "installing $req into $dir"
  [ -x "$dir/bin/python" ] || "$PYTHON_BIN" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --upgrade pip
  (cd "$ROOT" && "$dir/bin/python" -m pip install -q -r "$req")
  if [ "$common" = common ]; then (cd "$ROOT" && "$dir/bin/python" -m pip install -q --no-deps -e ./common); fi
  echo "$sum" > "$dir/.requirements.sha256"
}
make_venv "$VENV" requirements-dev.txt
make_venv "$VENV_CONVERT" conversion/requirements.txt
if [ "${1:-}" = --test-clients ]; then make_venv "$ROOT/.venv-kserve" testkit/requirements-kserve.txt no-common; fi
