#!/bin/sh
# pip-install.sh VENV REQUIREMENTS: a virtual environment with the pinned requirements. With wheels in /wheels
# (deploy/wheelhouse/, filled by scripts/wheelhouse.sh) pip installs from them alone (--no-index: an offline,
# air-gapped build, and a missing wheel fails the build); with none, pip uses the package index as usual.
set -eu
python -m venv "$1"
if ls /wheels/*.whl >/dev/null 2>&1; then
  echo "pip-install: offline, from the wheelhouse ($(ls /wheels/*.whl | wc -l) wheels)"
  set -- "$1" "$2" --no-index --find-links /wheels
else
  echo "pip-install: from the package index (deploy/wheelhouse/ is empty)"
  set -- "$1" "$2"
fi
venv="$1" req="$2"; shift 2
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install --no-cache-dir -q "$@" -r "$req"
