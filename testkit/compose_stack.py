"""Drive docker-compose.yml as a user would (build, up --scale model=N, down -v), for tests and the matrix.

Works with both `docker compose` (plugin) and Debian's `docker-compose` 1.29. Base images come from
PYTHON_IMAGE / REDIS_IMAGE / NGINX_IMAGE (scripts/compose_test.sh points them at the local stand-ins). The
published port is found from the compose file itself (whichever service publishes one), so the stack's front
door can move (gunicorn, or nginx in front of it) without touching the tests.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time

import requests
import yaml

from testkit.paths import REPO
from testkit.processes import free_port, wait_until

COMPOSE_FILE = REPO / "docker-compose.yml"
STANDINS = {"PYTHON_IMAGE": "local/python:3.11", "REDIS_IMAGE": "local/redis:7", "NGINX_IMAGE": "local/nginx:1"}


def compose_command() -> list[str]:
    """`docker compose` when the plugin answers, else Debian's `docker-compose`."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise RuntimeError("neither `docker compose` nor `docker-compose` is installed")


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and out.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {out.stderr.strip()[-2000:]}")
    return out.stdout


class ComposeStack:
    """One compose project: `build()`, `up(models)`, `url`, `containers()`, `down()`."""

    def __init__(self, project: str, **env: str) -> None:
        self.project = project
        self.env = {
            **os.environ,
            **{k: os.environ.get(k, v) for k, v in STANDINS.items()},
            "COMPOSE_PROJECT_NAME": project,
            "SECRET_KEY": secrets.token_hex(16),
            "REDIS_PASSWORD": secrets.token_hex(16),
            "WEIGHTS": "random:0",
            "INT8": "0",
            "MODEL_CPUS": "1",
            "HTTP_PORT": str(free_port()),
            **env,
        }
        self.cmd = [*compose_command(), "-p", project, "-f", str(COMPOSE_FILE)]
        self.url = ""

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run(
            [*self.cmd, *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"compose {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return out

    def config(self) -> dict:
        return yaml.safe_load(self.compose("config").stdout)

    def public_service(self) -> tuple[str, int]:
        """(service, container port) of the one service of the started profiles that publishes a port."""
        published = []
        active = set(filter(None, self.env.get("COMPOSE_PROFILES", "").split(",")))
        for name, svc in self.config()["services"].items():
            if svc.get("profiles") and not active & set(svc["profiles"]):
                continue  # an optional profile (e.g. observability) that this stack does not start
            for port in svc.get("ports", []):
                target = port["target"] if isinstance(port, dict) else int(str(port).rsplit(":", 1)[-1].split("/")[0])
                published.append((name, int(target)))
        assert len(published) == 1, f"expected one published port, found {published}"
        return published[0]

    def build(self) -> float:
        """Build the project's images; seconds taken."""
        t0 = time.monotonic()
        self.compose("build", timeout=3600)
        return time.monotonic() - t0

    def up(self, models: int = 2, timeout: float = 420) -> None:
        """Start with `models` model containers and wait until every container reports healthy."""
        self.compose("up", "-d", "--no-build", "--scale", f"model={models}")
        service, target = self.public_service()
        host_port = self.compose("port", service, str(target)).stdout.strip()
        self.url = f"http://{host_port}"
        wait_until(lambda: self.unhealthy() == [], timeout, f"every container of {self.project} healthy", interval=2)

    def containers(self, service: str | None = None) -> list[dict]:
        """`docker inspect` of the project's containers (optionally one service's), running or not."""
        labels = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            labels += ["--filter", f"label=com.docker.compose.service={service}"]
        ids = docker("ps", "-aq", *labels).split()
        return json.loads(docker("inspect", *ids)) if ids else []

    def unhealthy(self) -> list[str]:
        """Names of containers not (yet) healthy; a container without a health check counts as unhealthy."""
        bad = []
        for c in self.containers():
            health = c["State"].get("Health", {}).get("Status")
            if not c["State"]["Running"] or health != "healthy":
                bad.append(f"{c['Name'].lstrip('/')}: {c['State']['Status']}/{health}")
        return bad

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes still carrying this project's label."""
        label = f"label=com.docker.compose.project={self.project}"
        return {
            "containers": docker("ps", "-aq", "--filter", label).split(),
            "networks": docker("network", "ls", "-q", "--filter", label).split(),
            "volumes": docker("volume", "ls", "-q", "--filter", label).split(),
        }

    def ready(self) -> dict:
        """/ready through nginx, as a client sees it (no worker names, hosts or pids)."""
        return requests.get(self.url + "/ready", timeout=5).json()

    def ready_details(self) -> dict:
        """/ready/details, asked inside the API container: nginx serves it to local clients only, and the test's
        requests reach nginx from the Docker bridge's gateway."""
        [api] = [c for c in self.containers("api") if c["State"]["Running"]]
        url = "http://127.0.0.1:5000/ready/details"
        code = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
        return json.loads(docker("exec", api["Id"], "python", "-c", code))

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "60", check=False).stdout

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "-t", "20", check=False)
