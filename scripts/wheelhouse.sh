#!/usr/bin/env bash
# Builds the wheelhouse the images install from, so `docker build` never reaches a package index (offline,
# air-gapped builds): `pip wheel` on this machine, for every pinned requirement of the images, with the same
# interpreter as the image's (WHEEL_PYTHON, default Debian bookworm's python3.11 = 3.11.2, so markers such as
# redis' `async-timeout; python_full_version < "3.11.3"` resolve as they will inside). Cached in
# .run/wheelhouse/<hash of requirements + interpreter>/, then linked into deploy/wheelhouse/ (the build context).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
WHEEL_PYTHON="${WHEEL_PYTHON:-/usr/bin/python3.11}"
REQS=(api/requirements.txt model/requirements.txt conversion/requirements.txt)
# The images build the shared package (./common in those files) from source: its pinned build backend is
# wheeled too, and its own wheel is left out (built from the context each time, never a stale copy).
BACKEND="$("$WHEEL_PYTHON" -c 'import tomllib; print(*tomllib.load(open("common/pyproject.toml", "rb"))["build-system"]["requires"])')"
version="$("$WHEEL_PYTHON" -c 'import platform; print(platform.python_version())')"
key="$( (cat "${REQS[@]}"; echo "$BACKEND") | sha256sum | cut -c1-16)-py$version"
cache="$ROOT/.run/wheelhouse/$key"
if [ ! -f "$cache/.complete" ]; then
  log "pip wheel for Python $version (${REQS[*]}) into $cache"
  venv="$ROOT/.run/wheelhouse/venv-py$version"
  [ -x "$venv/bin/pip" ] || "$WHEEL_PYTHON" -m venv "$venv"
  rm -rf "$cache" && mkdir -p "$cache"
  args=(); for r in "${REQS[@]}"; do args+=(-r "$r"); done
  # shellcheck disable=SC2086  # BACKEND is a word list
  "$venv/bin/pip" wheel -q --wheel-dir "$cache" "${args[@]}" $BACKEND
  rm -f "$cache"/resnet_common-*.whl
  touch "$cache/.complete"
fi
# Link (no copy) the wheels into the build context; only this key's wheels, so the images get exactly these.
find deploy/wheelhouse -maxdepth 1 -name '*.whl' -delete
ln "$cache"/*.whl deploy/wheelhouse/ 2>/dev/null || cp "$cache"/*.whl deploy/wheelhouse/
log "deploy/wheelhouse: $(ls deploy/wheelhouse/*.whl | wc -l) wheels for Python $version ($(du -shL deploy/wheelhouse | cut -f1))"
