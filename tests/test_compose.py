"""What can be checked of the container setup without a Docker engine."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from testkit.stack import ROOT

COMPOSE = ROOT / "docker-compose.yml"


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_model_is_scalable_and_redis_private():
    svc = services()
    assert "container_name" not in svc["model"], "a fixed name breaks --scale model=N"
    assert "ports" not in svc["redis"] and "ports" not in svc["model"]
    assert svc["api"]["ports"] == ["80:5000"]


def test_secrets_come_from_the_environment():
    text = COMPOSE.read_text()
    assert "${SECRET_KEY:?" in text and "${REDIS_PASSWORD:?" in text


def test_runtime_image_has_no_tensorflow():
    runtime_stage = (ROOT / "model" / "Dockerfile").read_text().split("\nFROM ")[-1]
    assert "conversion/requirements" not in runtime_stage and "tensorflow" not in runtime_stage.lower()
    assert "tensorflow" not in (ROOT / "model" / "requirements.txt").read_text().lower()
    assert "tensorflow" not in (ROOT / "api" / "requirements.txt").read_text().lower()


@pytest.mark.parametrize("dockerfile", ["api/Dockerfile", "model/Dockerfile"])
def test_containers_run_as_non_root(dockerfile):
    lines = (ROOT / dockerfile).read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_compose_file_validates():
    subprocess.run(["docker-compose", "--env-file", str(ROOT / ".env.example"), "-f", str(COMPOSE), "config", "-q"],
                   check=True, cwd=ROOT)
