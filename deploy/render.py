"""Render the run folder's configs for `make run` from the settings the services read (one source of values).

    PYTHONPATH=api python deploy/render.py RUN_DIR

writes RUN_DIR/supervisord.conf, RUN_DIR/nginx/{nginx.conf,default.conf} and RUN_DIR/redis.conf (mode 0600: it
may hold the Redis password). Templates use upper-case $-brace names (nginx's own $lower_case variables are left
alone), so compose renders the same nginx template with the nginx image's envsubst.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import settings  # api/settings.py (PYTHONPATH=api): the values the API itself reads
from resnet_common import shed_sizing

ROOT = Path(__file__).resolve().parents[1]
API_GLIBC_TUNABLES = "glibc.malloc.hugetlb=1"  # gunicorn's unless GLIBC_TUNABLES is set (api/Dockerfile sets the same)

_NAME = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def render(template: str, values: dict[str, object]) -> str:
    """Replace every ${NAME}; a name without a value is an error, never an empty string in a config."""

    def one(match: re.Match) -> str:
        if match.group(1) not in values:
            raise KeyError(f"template needs {match.group(1)}, which has no value")
        return str(values[match.group(1)])

    return _NAME.sub(one, template)


def gunicorn_config() -> dict:
    """Evaluate api/gunicorn.conf.py as gunicorn would (without letting it create its metrics folder)."""
    env_had = "PROMETHEUS_MULTIPROC_DIR" in os.environ
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/nonexistent")
    try:
        return runpy.run_path(str(ROOT / "api" / "gunicorn.conf.py"))
    finally:
        if not env_had:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def nginx_user_directive(run_dir: Path) -> str:
    """As root, nginx would run its workers as `nobody`, who cannot open a socket in a private run folder."""
    if os.geteuid() != 0:
        return ""
    import grp
    import pwd

    st = run_dir.stat()
    return f"user {pwd.getpwuid(st.st_uid).pw_name} {grp.getgrgid(st.st_gid).gr_name};"


def listen_address(host: str, port: object) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def public_address() -> tuple[str, str]:
    """nginx's public HOST and PORT: loopback unless asked otherwise (run.sh exports both)."""
    return os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "5000")


def taken_port(host: str, ports: dict[str, int]) -> str | None:
    """Why nginx could not start, or None: the first of `ports` (setting -> port) another program holds on `host`.
    Checked before anything is written: supervisord would otherwise restart nginx in a loop, the reason in its log."""
    for name, port in ports.items():
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                return f"{host}:{port} is already in use: stop what listens there or choose another {name}"
    return None


def admission() -> dict:
    """MAX_INFLIGHT and Retry-After sized from the model fleet's measured rate (model/capacity.py, run in the
    model service's own settings) and SHED_LATENCY_TARGET_S, at most what gunicorn serves at once; explicit values
    win (resnet_common/shed_sizing.py)."""
    done = subprocess.run(
        [sys.executable, "capacity.py"], cwd=ROOT / "model", capture_output=True, text=True, timeout=60, check=False
    )
    try:
        capacity = json.loads(done.stdout)
    except ValueError:
        raise SystemExit(f"model/capacity.py failed: {done.stderr.strip()[-2000:]}") from None
    return shed_sizing.derive(
        capacity,
        settings.SHED_LATENCY_TARGET_S,
        settings.MAX_INFLIGHT,
        settings.RETRY_AFTER_S,
        api_concurrency=settings.GUNICORN_WORKERS * settings.GUNICORN_THREADS,
    )


def values(run_dir: Path, shed: dict | None = None) -> dict[str, object]:
    gconf = gunicorn_config()
    shed = shed or admission()
    host, port = public_address()
    return {
        "ROOT": ROOT,
        "RUN_DIR": run_dir,
        "PYTHON": sys.executable,
        "GUNICORN": Path(sys.executable).with_name("gunicorn"),
        "NGINX": shutil.which("nginx") or "/usr/sbin/nginx",
        "NGINX_USER_DIRECTIVE": nginx_user_directive(run_dir),
        "REDIS_AUTOSTART": "true" if os.environ.get("START_REDIS", "1") == "1" else "false",
        # START_MODEL=0: an API host whose model workers run elsewhere (or start later: supervisorctl start model)
        "MODEL_AUTOSTART": "true" if os.environ.get("START_MODEL", "1") == "1" else "false",
        "NGINX_LISTEN": listen_address(host, port),
        "NGINX_METRICS_LISTEN": listen_address(host, settings.NGINX_METRICS_PORT),
        "API_UPSTREAM": f"unix:{run_dir}/gunicorn.sock",
        # nginx in front logs every request: gunicorn's own access log only when asked for (GUNICORN_ACCESSLOG=-)
        "GUNICORN_ACCESSLOG": os.environ.get("GUNICORN_ACCESSLOG", ""),
        # glibc asks for transparent huge pages for its large mmapped blocks (each decoded photo's image memory):
        # a 12 MP decode then faults its 48 MB in 2 MiB pages, not 4 KiB ones (docs/operations.md#images)
        "API_GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES", API_GLIBC_TUNABLES),
        "STATIC_ROOT": ROOT / "api" / "static",
        "MAX_CONTENT_LENGTH": settings.MAX_CONTENT_LENGTH,
        "MAX_INFLIGHT": shed["max_inflight"],
        "PER_CLIENT_CONNECTIONS": settings.PER_CLIENT_CONNECTIONS,
        "PER_CLIENT_INFLIGHT": settings.PER_CLIENT_INFLIGHT,
        "PER_CLIENT_RATE_PER_S": settings.PER_CLIENT_RATE_PER_S,
        "PER_CLIENT_RATE_BURST": settings.PER_CLIENT_RATE_BURST,
        "ADMISSION_SOCKET": run_dir / "nginx" / "admission.sock",
        "RETRY_AFTER_S": shed["retry_after_s"],
        "PROXY_READ_TIMEOUT_S": int(settings.REQUEST_TIMEOUT_S + settings.MAX_QUEUE_WAIT_S + 10),
        "GUNICORN_GRACEFUL_TIMEOUT_S": gconf["graceful_timeout"],
        "GUNICORN_STOP_WAIT_S": gconf["graceful_timeout"] + 10,
        "MODEL_STOP_WAIT_S": 30,
    }


def redis_conf(run_dir: Path) -> str:
    lines = [
        f"include {ROOT}/deploy/redis/redis.conf",
        f"port {settings.REDIS_PORT}",
        "bind 127.0.0.1",
        f"dir {run_dir}/redis",
        f"maxmemory {settings.REDIS_MAXMEMORY}",
        "loglevel warning",
    ]
    if settings.REDIS_PASSWORD:
        lines.append(f"requirepass {settings.REDIS_PASSWORD}")
    return "\n".join(lines) + "\n"


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def main(run_dir: str) -> None:
    host, port = public_address()
    if why := taken_port(host, {"PORT": int(port), "NGINX_METRICS_PORT": settings.NGINX_METRICS_PORT}):
        sys.exit(f"[render.py] {why}")
    run = Path(run_dir).resolve()
    for sub in ("logs", "redis", "nginx", "pgid"):
        (run / sub).mkdir(parents=True, exist_ok=True)
    shed = admission()
    vals = values(run, shed)
    write(run / "supervisord.conf", render((ROOT / "deploy/supervisor/supervisord.conf.template").read_text(), vals))
    write(run / "nginx" / "nginx.conf", render((ROOT / "deploy/nginx/nginx.conf").read_text(), vals))
    write(
        run / "nginx" / "default.conf",
        render((ROOT / "deploy/nginx/templates/default.conf.template").read_text(), vals),
    )
    write(run / "redis.conf", redis_conf(run), 0o600)
    # The derivation, for the benchmarks' JSON; admission.env gives the API the same values as nginx (run.sh).
    write(run / "admission.json", json.dumps(shed, indent=2) + "\n")
    write(run / "admission.env", f"MAX_INFLIGHT={shed['max_inflight']}\nRETRY_AFTER_S={shed['retry_after_s']}\n")
    print(shed_sizing.describe(shed))
    print(f"upload limit {vals['MAX_CONTENT_LENGTH']} B")
    print(f"nginx's refusal counts for Prometheus: http://{vals['NGINX_METRICS_LISTEN']}/metrics")


if __name__ == "__main__":
    main(sys.argv[1])
