"""What can be checked of the container setup without a Docker engine."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from testkit import REPO

COMPOSE = REPO / "docker-compose.yml"


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_model_is_scalable_and_redis_private():
    svc = services()
    assert "container_name" not in svc["model"], "a fixed name breaks --scale model=N"
    assert "ports" not in svc["redis"] and "ports" not in svc["model"] and "ports" not in svc["api"]
    assert svc["nginx"]["ports"] == ["127.0.0.1:${HTTP_PORT:-80}:80"]  # only nginx, on loopback; gunicorn behind it
    published = [(name, p) for name, s in svc.items() for p in s.get("ports", [])]
    assert all(str(p).startswith("127.0.0.1:") for _, p in published), "ports are published on 127.0.0.1 only"


def test_stop_grace_memory_limits_and_redis_policy():
    svc = services()
    graceful = int(float(svc["api"]["environment"]["REQUEST_TIMEOUT_S"].split(":-")[1].rstrip("}"))) + 5
    assert int(svc["api"]["stop_grace_period"].rstrip("s")) > graceful  # gunicorn.conf.py: REQUEST_TIMEOUT_S + 5
    assert all(s.get("mem_limit") for s in svc.values())
    command = " ".join(svc["redis"]["command"])
    assert "requirepass %s" in command and "--requirepass" not in command and "${REDIS_PASSWORD" not in command
    assert "maxmemory-policy volatile-lru" in (REPO / "deploy" / "redis" / "redis.conf").read_text()
    assert svc["nginx"]["image"].startswith("${NGINX_IMAGE:-")


@pytest.mark.skipif(
    shutil.which("envsubst") is None or shutil.which("nginx") is None, reason="envsubst (gettext-base) or nginx missing"
)
def test_nginx_template_renders_as_the_nginx_image_does(tmp_path):
    """The image's entrypoint runs envsubst with only the defined variables; nginx must accept the result."""
    import os
    import re

    env = {k: re.sub(r"\$\{\w+:-(.*)\}", r"\1", str(v)) for k, v in services()["nginx"]["environment"].items()}
    env["API_UPSTREAM"] = "127.0.0.1:9"  # the compose name `api` does not resolve here
    names = " ".join(f"${{{k}}}" for k in env)
    template = (REPO / "deploy" / "nginx" / "templates" / "default.conf.template").read_text()
    rendered = subprocess.run(
        ["envsubst", names], input=template, capture_output=True, text=True, check=True, env={**os.environ, **env}
    ).stdout
    assert "${" not in rendered and "$binary_remote_addr" in rendered and "t=$msec" in rendered
    (tmp_path / "default.conf").write_text(rendered)
    (tmp_path / "nginx.conf").write_text(  # with the dynamic modules Debian's nginx.conf loads, as local/nginx:1's
        f"include /etc/nginx/modules-enabled/*.conf;\npid {tmp_path}/pid;\nevents {{}}\n"
        f"http {{ client_body_temp_path {tmp_path}/b; "
        f"include {tmp_path}/default.conf; }}\n"
    )
    subprocess.run(
        [shutil.which("nginx"), "-t", "-e", "stderr", "-c", str(tmp_path / "nginx.conf")],
        check=True,
        capture_output=True,
    )


@pytest.mark.parametrize("dockerfile", ["api/Dockerfile", "model/Dockerfile"])
def test_base_image_is_a_build_arg_defaulting_to_the_official_one(dockerfile):
    text = (REPO / dockerfile).read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert all(
        line == "FROM ${PYTHON_IMAGE}" or line.startswith("FROM ${PYTHON_IMAGE} AS ")
        for line in text.splitlines()
        if line.startswith("FROM ")
    )
    assert "COPY deploy/wheelhouse/ /wheels/" in text  # offline builds install from the wheelhouse


def test_compose_passes_base_images_through():
    svc = services()
    assert svc["redis"]["image"] == "${REDIS_IMAGE:-redis:7.4-alpine}"
    for name in ("api", "model"):
        assert svc[name]["build"]["args"]["PYTHON_IMAGE"] == "${PYTHON_IMAGE:-python:3.11-slim}"


def test_secrets_come_from_the_environment():
    text = COMPOSE.read_text()
    assert "${SECRET_KEY:?" in text and "${REDIS_PASSWORD:?" in text


def test_runtime_image_has_no_tensorflow():
    runtime_stage = (REPO / "model" / "Dockerfile").read_text().split("\nFROM ")[-1]
    assert "conversion/requirements" not in runtime_stage and "tensorflow" not in runtime_stage.lower()
    assert "tensorflow" not in (REPO / "model" / "requirements.txt").read_text().lower()
    assert "tensorflow" not in (REPO / "api" / "requirements.txt").read_text().lower()


@pytest.mark.parametrize("dockerfile", ["api/Dockerfile", "model/Dockerfile"])
def test_containers_run_as_non_root(dockerfile):
    lines = (REPO / dockerfile).read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_compose_file_validates():
    subprocess.run(
        ["docker-compose", "--env-file", str(REPO / ".env.example"), "-f", str(COMPOSE), "config", "-q"],
        check=True,
        cwd=REPO,
    )
