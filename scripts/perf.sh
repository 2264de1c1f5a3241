#!/usr/bin/env bash
# `make perf`: perf_analyzer (from the pinned tritonclient wheel in .venv) against the stack `make run` serves on PORT.
# perf_analyzer's connections all come from one address: run that stack with PER_CLIENT_INFLIGHT (and MAX_INFLIGHT)
# at least the highest concurrency, or nginx sheds the levels above them, and RESPONSE_CACHE=0 (perf_analyzer repeats
# some inputs at high concurrency; docs/protocol.md).
# Over HTTP it needs no GPU, only two shared libraries: Debian's libb64-0d (apt) and libcudart.so.12 from the
# nvidia-cuda-runtime-cu12 wheel, installed into a small venv of its own (.venv-perf) and found via LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
CUDART_VERSION=12.9.79

if ! dpkg -s libb64-0d >/dev/null 2>&1; then
    echo "installing libb64-0d (apt)"
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get install -y -q libb64-0d >/dev/null
fi
if [ ! -x .venv/bin/perf_analyzer ]; then
    echo "no .venv/bin/perf_analyzer: run make setup (requirements-dev.txt pins tritonclient)" >&2
    exit 1
fi
if ! .venv-perf/bin/python -c "import importlib.metadata as m; assert m.version('nvidia-cuda-runtime-cu12') == '$CUDART_VERSION'" 2>/dev/null; then
    echo "installing nvidia-cuda-runtime-cu12==$CUDART_VERSION into .venv-perf"
    python3 -m venv .venv-perf
    .venv-perf/bin/pip install -q "nvidia-cuda-runtime-cu12==$CUDART_VERSION"
fi
CUDART_LIB=$(.venv-perf/bin/python -c "import nvidia.cuda_runtime, os; print(os.path.join(nvidia.cuda_runtime.__path__[0], 'lib'))")
export LD_LIBRARY_PATH="$CUDART_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

if ! curl -fsS -o /dev/null "http://127.0.0.1:${PORT:-5000}/v2/health/ready"; then
    echo "nothing ready on http://127.0.0.1:${PORT:-5000}: start it with make run (same PORT)" >&2
    exit 1
fi
exec .venv/bin/python -m stress_test.perf_analyzer_run --url "http://127.0.0.1:${PORT:-5000}" "$@"
