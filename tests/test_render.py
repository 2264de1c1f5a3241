"""`make run`'s configs come from the settings the services read (deploy/render.py), never a second copy."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys

import pytest
from testkit import REPO


def render(tmp_path, **env) -> dict[str, str]:
    run = tmp_path / "run"
    full = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "MAX_", "REQUEST_", "REDIS_"))}
    subprocess.run(
        [sys.executable, str(REPO / "deploy" / "render.py"), str(run)],
        check=True,
        capture_output=True,
        env={**full, "PYTHONPATH": str(REPO / "api"), **{k: str(v) for k, v in env.items()}},
    )
    return {
        name: (run / name).read_text()
        for name in ("supervisord.conf", "nginx/nginx.conf", "nginx/default.conf", "redis.conf")
    }


def setting(text: str, pattern: str) -> str:
    return re.search(pattern, text).group(1)


def test_values_follow_the_services_settings(tmp_path):
    conf = render(
        tmp_path,
        REQUEST_TIMEOUT_S=50,
        MAX_CONTENT_LENGTH=12345,
        GUNICORN_WORKERS=3,
        GUNICORN_THREADS=4,
        PORT=8123,
        REDIS_PORT=7001,
        REDIS_PASSWORD="s3cret",
    )
    nginx, sup = conf["nginx/default.conf"], conf["supervisord.conf"]
    assert setting(nginx, r"client_max_body_size (\d+);") == "12345"
    assert setting(nginx, r"limit_conn predict_inflight (\d+);") == "12"  # 3 workers x 4 threads
    assert int(setting(nginx, r"proxy_read_timeout (\d+)s;")) > 50
    assert setting(nginx, r"listen (\S+);") == "127.0.0.1:8123"
    graceful = 50 + 5  # gunicorn.conf.py: REQUEST_TIMEOUT_S + 5
    gunicorn_section = sup.split("[program:gunicorn]")[1].split("[program:")[0]
    assert int(setting(gunicorn_section, r"stopwaitsecs=(\d+)")) > graceful
    assert "stopasgroup=true" in gunicorn_section and "killasgroup=true" in gunicorn_section
    assert "port 7001" in conf["redis.conf"] and "requirepass s3cret" in conf["redis.conf"]
    assert "s3cret" not in sup  # never on a command line
    assert stat.S_IMODE((tmp_path / "run" / "redis.conf").stat().st_mode) == 0o600
    assert "${" not in nginx + sup + conf["nginx/nginx.conf"]


def test_explicit_admission_bound_wins(tmp_path):
    assert setting(render(tmp_path, MAX_INFLIGHT=7)["nginx/default.conf"], r"limit_conn predict_inflight (\d+);") == "7"


@pytest.mark.skipif(shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"), reason="no nginx")
def test_rendered_nginx_config_is_valid(tmp_path):
    render(tmp_path)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    run = tmp_path / "run" / "nginx"
    subprocess.run(
        [nginx, "-t", "-e", "stderr", "-p", f"{run}/", "-c", str(run / "nginx.conf")], check=True, capture_output=True
    )
