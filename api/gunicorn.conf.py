"""gunicorn settings: `cd api && gunicorn -c gunicorn.conf.py app:app`.

Threads, not processes, carry concurrency: a request mostly waits on BLPOP, so 2 processes × 16 threads serve
32 requests at once on 2 cores — enough to keep every worker's batch full (the load matrix ran with this). Prometheus multiprocess files live in PROMETHEUS_MULTIPROC_DIR, emptied at start.
"""

import os
import shutil
import tempfile


def _float_env(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


# GUNICORN_BIND (e.g. unix:/path.sock behind nginx in `make run`) wins over HOST:PORT (direct, tests).
bind = os.environ.get("GUNICORN_BIND") or f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("GUNICORN_WORKERS") or 2)
threads = int(os.environ.get("GUNICORN_THREADS") or 16)
worker_class = "gthread"
# A request can wait REQUEST_TIMEOUT_S for a worker; the arbiter must not kill a thread that is merely waiting,
# and SIGTERM lets in-flight requests finish within graceful_timeout.
_request_timeout = _float_env("REQUEST_TIMEOUT_S", 30.0)
timeout = int(_request_timeout + 30)
graceful_timeout = int(_request_timeout + 5)
keepalive = 5
max_requests = 0
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None  # empty: no access log
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
control_socket_disable = True  # gunicorn ≥ 25 opens ~/.gunicorn/gunicorn.ctl: clashes between instances, needs $HOME
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Must be in the environment before any worker imports prometheus_client (workers fork after this file runs).
_own_multiproc_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_multiproc_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="api-prometheus-")


def on_starting(server) -> None:
    """Start from empty metric files: values of a previous run's dead pids would otherwise be summed forever."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for entry in os.listdir(path):
        target = os.path.join(path, entry)
        if os.path.isdir(target):
            shutil.rmtree(target, ignore_errors=True)
        else:
            os.unlink(target)


def child_exit(server, worker) -> None:
    """Let live gauges forget a worker that exited."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _own_multiproc_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
