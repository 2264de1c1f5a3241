"""`make run`'s configs come from the settings the services read (deploy/render.py), never a second copy."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest
from testkit import REPO, nginx_metrics


def render(tmp_path, **env) -> dict[str, str]:
    run = tmp_path / "run"
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GLIBC_", "GUNICORN_", "MAX_", "REQUEST_", "REDIS_", "RETRY_", "SHED_"))
    }
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


SHED_RETRY_AFTER = r"\n\s*shed\s+(\d+);"  # the Retry-After of a refusal at the admission bound ($refusal_retry_after)


def setting(text: str, pattern: str) -> str:
    return re.search(pattern, text).group(1)


def gunicorn_section(supervisord_conf: str) -> str:
    return supervisord_conf.split("[program:gunicorn]")[1].split("[program:")[0]


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
    assert int(setting(nginx, r"proxy_read_timeout (\d+)s;")) > 50
    assert setting(nginx, r"listen (\S+);") == "127.0.0.1:8123"
    graceful = 50 + 5  # gunicorn.conf.py: REQUEST_TIMEOUT_S + 5
    gunicorn = gunicorn_section(sup)
    assert int(setting(gunicorn, r"stopwaitsecs=(\d+)")) > graceful
    assert "stopasgroup=true" in gunicorn and "killasgroup=true" in gunicorn
    assert "port 7001" in conf["redis.conf"] and "requirepass s3cret" in conf["redis.conf"]
    assert "s3cret" not in sup  # never on a command line
    assert stat.S_IMODE((tmp_path / "run" / "redis.conf").stat().st_mode) == 0o600
    assert "${" not in nginx + sup + conf["nginx/nginx.conf"]


def test_gunicorn_logs_requests_only_when_asked_since_nginx_logs_them(tmp_path):
    def gunicorn_env(**env) -> str:
        return setting(gunicorn_section(render(tmp_path, **env)["supervisord.conf"]), r"environment=(.*)")

    assert 'GUNICORN_ACCESSLOG=""' in gunicorn_env()  # gunicorn.conf.py: set but empty means no access log
    assert 'GUNICORN_ACCESSLOG="-"' in gunicorn_env(GUNICORN_ACCESSLOG="-")
    assert "access_log /dev/stdout;" in render(tmp_path)["nginx/nginx.conf"]


def test_gunicorn_asks_glibc_for_huge_pages_as_the_api_image_does(tmp_path):
    def gunicorn_tunables(**env) -> str:
        return setting(gunicorn_section(render(tmp_path, **env)["supervisord.conf"]), r'GLIBC_TUNABLES="([^"]*)"')

    image_env = setting((REPO / "api" / "Dockerfile").read_text(), r"GLIBC_TUNABLES=(\S+)")
    assert gunicorn_tunables() == image_env == "glibc.malloc.hugetlb=1"
    assert gunicorn_tunables(GLIBC_TUNABLES="glibc.malloc.hugetlb=0") == "glibc.malloc.hugetlb=0"


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


def card_with_speed(tmp_path, fp32_img_s: float, threads: int = 2) -> str:
    """A model card whose conversion measured `fp32_img_s` at `threads` threads (what model/capacity.py reads)."""
    model = tmp_path / "model"
    model.mkdir()
    speed = {"fp32_img_s": fp32_img_s, "int8_img_s": 3 * fp32_img_s, "threads": threads, "batch": 8}
    card = {"serve": "fp32", "variants": {"fp32": {"file": "m.onnx"}, "int8": {"file": "q.onnx", "speed": speed}}}
    (model / "model_card.json").write_text(json.dumps(card))
    return str(model)


def admission_of(tmp_path) -> dict:
    return json.loads((tmp_path / "run" / "admission.json").read_text())


@pytest.mark.parametrize(
    ("img_s", "bound", "retry_after", "gunicorn_threads"),
    [
        (12.75, 26, 3, 16),  # ceil(12.75 x 2 s) = 26 > floor 24; ceil(26 / 12.75) = 3 s
        (38.25, 77, 3, 64),  # a machine 3x faster: 3x the bound, the same latency budget
        (38.25, 32, 1, 16),  # ... but never more than gunicorn's 2 x 16 threads serve at once
        (4.0, 24, 6, 16),  # slow: the floor (2 + 1) x 8 keeps batches full; Retry-After ceil(24 / 4)
    ],
)
def test_bound_and_retry_after_follow_the_measured_rate(tmp_path, img_s, bound, retry_after, gunicorn_threads):
    model = card_with_speed(tmp_path, img_s)
    conf = render(tmp_path, MODEL_DIR=model, WORKERS=2, THREADS=1, GUNICORN_THREADS=gunicorn_threads)[
        "nginx/default.conf"
    ]
    assert setting(conf, r"limit_conn predict_inflight (\d+);") == str(bound)
    assert setting(conf, SHED_RETRY_AFTER) == str(retry_after)
    shed = admission_of(tmp_path)
    assert shed["capacity"]["img_s"] == img_s and shed["max_inflight"] == bound
    env = (tmp_path / "run" / "admission.env").read_text()
    assert f"MAX_INFLIGHT={bound}\n" in env and f"RETRY_AFTER_S={retry_after}\n" in env


def test_rate_scales_to_the_cores_the_fleet_uses(tmp_path):
    render(tmp_path, MODEL_DIR=card_with_speed(tmp_path, 10.0, threads=2), WORKERS=1, THREADS=1)
    assert admission_of(tmp_path)["capacity"]["img_s"] == 5.0  # one of the two cores the card measured with


def test_explicit_retry_after_and_target_win(tmp_path):
    model = card_with_speed(tmp_path, 12.75)
    conf = render(
        tmp_path, MODEL_DIR=model, WORKERS=2, THREADS=1, RETRY_AFTER_S=9, SHED_LATENCY_TARGET_S=4, GUNICORN_THREADS=32
    )
    assert setting(conf["nginx/default.conf"], r"limit_conn predict_inflight (\d+);") == "51"  # ceil(12.75 x 4)
    assert setting(conf["nginx/default.conf"], SHED_RETRY_AFTER) == "9"


def test_without_a_measured_rate_the_floor_and_one_second(tmp_path):
    conf = render(tmp_path, MODEL_DIR=str(tmp_path / "none"), WORKERS=3, THREADS=1, BATCH_SIZE=4)
    assert setting(conf["nginx/default.conf"], r"limit_conn predict_inflight (\d+);") == "16"  # (3 + 1) x 4
    assert setting(conf["nginx/default.conf"], SHED_RETRY_AFTER) == "1"
    assert admission_of(tmp_path)["retry_after_source"] == "no measured rate"


def test_every_answer_nginx_can_make_itself_is_exported_from_zero():
    """The Lua table that starts nginx_refusals_total at zero names exactly the (refusal, status) pairs the error
    pages can answer with: one missing from it would appear at 1 and hide its first refusal from increase()."""
    template = nginx_metrics.TEMPLATE.read_text()
    answers = {("client_timeout", "408")}  # refusal_metrics.count(): nginx cut a slow client off
    for location in re.findall(r"\n    location [^{]*\{(.*?)\n    \}", template, re.S):
        name = re.search(r"set \$refusal (\$?\w+);", location)
        if name is None:
            continue
        codes = set(re.findall(r"return (\d{3}) ", location))
        names = set(re.findall(r'refusal = "(\w+)"', template)) if name.group(1) == "$arg_refusal" else {name.group(1)}
        answers |= {(n, code) for n in names for code in codes}
    assert nginx_metrics.declared_answers() == answers
