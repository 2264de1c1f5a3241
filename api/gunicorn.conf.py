"""gunicorn settings: `cd api && gunicorn -c gunicorn.conf.py app:app`.

Every value comes from settings.py (GUNICORN_WORKERS, GUNICORN_THREADS, REQUEST_TIMEOUT_S, ...). Threads, not
processes, carry concurrency: a request mostly waits on BLPOP, so the default 2 processes × 16 threads serve 32
requests at once, enough to keep every worker's batch full (see hardware_report.md). Prometheus multiprocess files
live in PROMETHEUS_MULTIPROC_DIR, emptied at start.
"""

import os
import shutil
import tempfile

import settings  # gunicorn puts its working directory (api/) on sys.path before it reads this file

_cfg = settings.load()  # validated once, with the variable's name in any error
# GUNICORN_BIND (e.g. unix:/path.sock behind nginx in `make run`) wins over HOST:PORT (direct, tests).
bind = _cfg.GUNICORN_BIND or f"{_cfg.HOST}:{_cfg.PORT}"
workers = _cfg.GUNICORN_WORKERS
threads = _cfg.GUNICORN_THREADS
worker_class = "gthread"
# A request can wait REQUEST_TIMEOUT_S for a worker; the arbiter must not kill a thread that is merely waiting,
# and SIGTERM lets in-flight requests finish within graceful_timeout.
timeout = int(_cfg.REQUEST_TIMEOUT_S + 30)
graceful_timeout = int(_cfg.REQUEST_TIMEOUT_S + 5)
keepalive = 5
max_requests = 0
accesslog = _cfg.GUNICORN_ACCESSLOG  # None (set but empty): no access log
errorlog = "-"
loglevel = _cfg.LOG_LEVEL.lower()
control_socket_disable = True  # gunicorn ≥ 25 opens ~/.gunicorn/gunicorn.ctl: clashes between instances, needs $HOME
forwarded_allow_ips = _cfg.FORWARDED_ALLOW_IPS
# nginx bounds what reaches gunicorn (4 x 8 KiB header buffers: a request line or header line of at most 8 KiB, at
# most 32 KiB of headers) and answers anything beyond in the route's JSON. gunicorn's own limits sit at or above
# that, so a request nginx passed on is never refused here with gunicorn's HTML 414 or 431.
limit_request_line = 8190  # gunicorn's maximum: nginx's 8 KiB buffer holds no longer line
limit_request_fields = 32768  # gunicorn's maximum: nginx refuses a header block long before that many
limit_request_field_size = 16384  # the admission server's buffers: a line may grow on the way (X-Forwarded-For)
# nginx passes on only methods of capital letters, '_' and '-'; gunicorn's own convention (3 to 20 characters) would
# refuse a shorter or longer one with its HTML 400 where the API answers 405 (Method Not Allowed) in JSON.
permit_unconventional_http_method = True

# Must be in the environment before any worker imports prometheus_client (workers fork after this file runs).
_own_multiproc_dir = not _cfg.PROMETHEUS_MULTIPROC_DIR
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


def when_ready(server) -> None:
    """METRICS_PORT set: the master serves /metrics there (the cluster's scrape port), not on the public port."""
    port = int(os.environ.get("METRICS_PORT") or 0)
    if port:
        import metrics_server

        metrics_server.start(port)
        server.log.info("metrics on port %d", port)


def child_exit(server, worker) -> None:
    """Let live gauges forget a worker that exited."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _own_multiproc_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
