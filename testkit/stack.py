"""The stack exactly as `make run` starts it, for the end-to-end tests and the load benchmarks alike.

scripts/run.sh under supervisord: Redis (unless the caller brings one), the model service (WORKERS worker
processes), gunicorn on a unix socket and nginx on a free port, with its own run folder. Every request a test or a
benchmark sends goes through nginx, as a user's would. Programs are stopped, started and killed the way an operator
or a crash would: supervisorctl, or a signal to a program's process group.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from testkit.paths import PHOTOS, REPO, converted_model_dir
from testkit.processes import free_port, stop_process, wait_until
from testkit.redis_server import RedisServer

PROGRAMS = ("redis", "model", "gunicorn", "nginx")
# Short timings for the tests, so faults are detected within a test's patience (pass as `env`); the load
# benchmarks pass their own and otherwise measure the defaults `make run` serves.
TEST_ENV = {
    "THREADS": "1",
    "BATCH_SIZE": "8",
    "HEARTBEAT_INTERVAL_S": "0.5",
    "HEARTBEAT_TTL_S": "3",
    "METRICS_PUSH_INTERVAL_S": "1",
    "CLAIM_IDLE_MS": "2000",
    "CLAIM_INTERVAL_S": "0.5",
    "REQUEST_TIMEOUT_S": "20",
}
# Values a developer's shell (or `make test`) may export that would change what the stack serves.
_NOT_INHERITED = ("SECRET_KEY", "MAX_QUEUE_DEPTH", "GUNICORN_THREADS", "GUNICORN_WORKERS", "WORKERS", "THREADS")


@dataclass
class Stack:
    """`make run` on free ports in `tmp`. Environment: os.environ < wiring < `env`; `workers` sets WORKERS.

    `model=False` starts no model service (its program stays stopped: start it with `start_program("model")`);
    `redis` brings a Redis the caller runs (a Sentinel-watched master, one in a network namespace): run.sh uses it
    instead of starting its own. `host` and `prefix` put the whole stack behind another address and command, e.g.
    `ip netns exec NS` with the namespace's address: an API host of its own.
    """

    tmp: Path
    env: dict[str, Any] = field(default_factory=dict)
    workers: int | None = None
    model: bool = True
    redis: RedisServer | None = None
    port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    nginx_metrics_port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    prefix: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    first_workers: set[int] = field(default_factory=set)  # worker pids when start() returned: a change = a restart
    model_hosts: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tmp = Path(self.tmp)
        if self.redis is not None:
            self.redis_port = self.redis.port

    # --- addresses ---------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """nginx, the only public address."""
        return f"http://{self.host}:{self.port}"

    @property
    def nginx_metrics_url(self) -> str:
        """nginx's own figures (its refusal counts), on a listener of their own."""
        return f"http://{self.host}:{self.nginx_metrics_port}/metrics"

    def nginx_refusals(self) -> Counter:
        """nginx_refusals_total by (refusal, code): the answers nginx made itself so far."""
        from testkit.nginx_metrics import refusal_counts  # prometheus-client: not in the conversion environment

        return refusal_counts(self.nginx_metrics_url)

    def nginx_refusals_since(self, before: Counter, answers: int, timeout: float = 10) -> Counter:
        """What nginx counted since `before`, read once it holds at least `answers` (or after `timeout` s): nginx
        counts an answer in its log phase, after sending it, so the client of the last one can read before it."""
        deadline = time.monotonic() + timeout
        while True:
            counted = self.nginx_refusals() - before
            if sum(counted.values()) >= answers or time.monotonic() > deadline:
                return counted
            time.sleep(0.05)

    @property
    def run_dir(self) -> Path:
        return self.tmp / "run"

    @property
    def gunicorn_socket(self) -> Path:
        return self.run_dir / "gunicorn.sock"

    @property
    def admission_bound(self) -> int:
        """How many /predict requests nginx lets in at once (more are answered 503 + Retry-After at once)."""
        conf = (self.run_dir / "nginx" / "default.conf").read_text()
        return int(conf.split("limit_conn predict_inflight ")[1].split(";")[0])

    @property
    def redis_host(self) -> str:
        return self.redis.host if self.redis else "127.0.0.1"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.redis_host}:{self.redis_port}/0"

    def api_get(self, path: str, timeout: float = 10) -> tuple[int, str]:
        """GET straight from gunicorn's unix socket, bypassing nginx: only for what a test cannot reach through it
        (e.g. /metrics, which nginx serves to local scrapers only, of an API host in another network namespace)."""
        conn = _UnixHTTPConnection(str(self.gunicorn_socket), timeout)
        try:
            conn.request("GET", path, headers={"Host": "localhost"})
            response = conn.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            conn.close()

    @property
    def redis_password(self) -> str:
        """The caller's Redis's password, or the one run.sh generates into the run folder (as `make run` does),
        waiting for it right after launch()."""
        if self.redis is not None:
            return self.redis.password or ""
        path = self.run_dir / "redis.password"
        wait_until(lambda: path.exists() and path.stat().st_size > 0, 30, "run.sh to write the Redis password")
        return path.read_text().strip()

    def redis_client(self, **kwargs):
        import redis

        return redis.Redis(
            host=self.redis_host, port=self.redis_port, password=self.redis_password, **{"socket_timeout": 2, **kwargs}
        )

    # --- start and wait -----------------------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        env.update(
            {
                "RUN_DIR": str(self.run_dir),
                "PORT": str(self.port),
                "HOST": self.host,
                "REDIS_HOST": self.redis_host,
                "REDIS_PORT": str(self.redis_port),
                "NGINX_METRICS_PORT": str(self.nginx_metrics_port),
                "MODEL_DIR": str(converted_model_dir()),
                "INSTANCE_PATH": str(self.tmp / "instance"),
                "UPLOAD_FOLDER": str(self.tmp / "uploads"),
                "FEEDBACK_FILEPATH": str(self.tmp / "feedback" / "feedback.csv"),
                "START_MODEL": "1" if self.model else "0",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.redis is not None:  # run.sh uses a Redis it is given only if that Redis asks for this password
            env["REDIS_PASSWORD"] = self.redis.password or ""
        else:
            env.pop("REDIS_PASSWORD", None)  # generated into the run folder, as `make run` does
        if self.workers is not None:
            env["WORKERS"] = str(self.workers)
        env.update({k: str(v) for k, v in self.env.items()})
        return env

    def start(self, timeout: float = 120) -> Stack:
        """run.sh in a process group of its own; returns once nginx answers /health and every worker is ready."""
        return self.launch().wait_started(timeout)

    @contextlib.contextmanager
    def running(self, timeout: float = 120) -> Iterator[Stack]:
        """start(), yield, stop(): a fixture's whole life. A start that fails prints the programs' logs first."""
        try:
            self.start(timeout)
        except Exception:
            print(self.logs())
            self.stop()
            raise
        try:
            yield self
        finally:
            self.stop()

    def launch(self) -> Stack:
        """run.sh in a process group of its own, without waiting (a benchmark times the start itself)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [*self.prefix, str(REPO / "scripts" / "run.sh")],
            env=self.environment(),
            start_new_session=True,
            stdout=open(self.tmp / "run.sh.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_started(self, timeout: float = 120) -> Stack:
        """Until nginx answers /health and the model service's workers are ready; on failure: logs, stop, raise."""
        try:
            wait_until(self._healthy, timeout, "nginx + gunicorn /health")
            if self.model:
                self.wait_ready(self.expected_workers(), timeout)
                self.first_workers = {p.pid for p in self.model_workers()}
        except Exception:
            print(self.logs())
            self.stop()
            raise
        return self

    def expected_workers(self) -> int:
        """How many workers the model service runs: `workers`, or the machine's default topology (>= 1)."""
        if self.workers is not None:
            return self.workers
        return int(self.env.get("WORKERS") or 1)

    def check_alive(self) -> None:
        """Raise with the logs if run.sh (supervisord) exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"run.sh exited with {self.proc.returncode}:\n{self.logs()}")

    def _healthy(self) -> bool:
        self.check_alive()
        return _get_ok(self.url + "/health")

    def ready_workers(self) -> list[dict[str, Any]]:
        """The ready workers /ready/details lists (name, host, pid, variant, ...), through nginx; from an address
        nginx does not count as local (a stack in a network namespace), /ready's public fields."""
        import requests

        try:
            response = requests.get(self.url + "/ready/details", timeout=2)
            if response.status_code == 403:
                response = requests.get(self.url + "/ready", timeout=2)
            body = response.json()
        except (requests.RequestException, ValueError):
            return []
        return [w for w in body.get("workers", []) if w.get("ready")]

    def wait_ready(self, n_workers: int = 1, timeout: float = 90) -> None:
        wait_until(lambda: len(self.ready_workers()) >= n_workers, timeout, f"{n_workers} ready worker(s)", 0.2)

    # --- programs -------------------------------------------------------------------------------------------------

    def supervisorctl(self, *args: str, timeout: float = 120) -> str:
        """supervisorctl against this stack's supervisord (what `make status` runs); returns its output."""
        ctl = Path(sys.executable).with_name("supervisorctl")
        out = subprocess.run(
            [*self.prefix, str(ctl), "-c", str(self.run_dir / "supervisord.conf"), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return out.stdout + out.stderr

    def stop_program(self, name: str) -> str:
        """Stop one program the way supervisord does (its stopsignal, then a wait); returns supervisorctl's words."""
        return self.supervisorctl("stop", name)

    def start_program(self, name: str) -> str:
        return self.supervisorctl("start", name)

    def stopped_cleanly(self, name: str) -> bool:
        """supervisord logged that `name` stopped with exit status 0 (it finished its work; nothing killed it)."""
        log = self.run_dir / "logs" / "supervisord.log"
        return log.exists() and f"stopped: {name} (exit status 0)" in log.read_text()

    def program_pid(self, name: str) -> int:
        """The pid (= process group) of a program, as run_program.sh recorded it."""
        return int((self.run_dir / "pgid" / name).read_text())

    @staticmethod
    def group_members(pgid: int) -> list[int]:
        """Live processes of a process group (zombies excluded)."""
        import psutil

        members = []
        for p in psutil.process_iter(["pid", "status"]):
            try:
                if p.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(p.pid) == pgid:
                    members.append(p.pid)
            except (ProcessLookupError, psutil.Error):
                continue
        return members

    def program_pids(self, *names: str) -> set[int]:
        """Every live process of these programs (all of them by default): their whole process groups."""
        pids: set[int] = set()
        for name in names or PROGRAMS:
            try:
                pids |= set(self.group_members(self.program_pid(name)))
            except (FileNotFoundError, ValueError):  # not started (Redis brought by the caller, no model service)
                continue
        return pids

    def cpu_seconds(self, *names: str) -> dict[str, float]:
        """CPU time (user + system) used so far by each of these programs' live processes, by program."""
        import psutil

        used = {}
        for name in names or PROGRAMS:
            total = 0.0
            for pid in self.program_pids(name):
                try:
                    times = psutil.Process(pid).cpu_times()
                    total += times.user + times.system
                except psutil.Error:  # ended between listing and reading
                    continue
            used[name] = total
        return used

    def model_workers(self) -> list:
        """The model service's worker processes (psutil.Process), not the service's parent or helpers."""
        import psutil

        workers = []
        for p in psutil.Process(self.program_pid("model")).children():
            try:
                if "spawn_main" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE:
                    workers.append(p)
            except psutil.Error:  # a killed worker not reaped yet, or gone
                pass
        return workers

    def start_model_host(self, prefix: list[str] | None = None, **env: Any) -> subprocess.Popen:
        """Another model service (`python ml_service.py`) serving this stack's queue, as a worker host would;
        `prefix`: a command to run it under (`ip netns exec NS`). Stopped with the stack."""
        environment = self.environment() | {"REDIS_PASSWORD": self.redis_password} | {k: str(v) for k, v in env.items()}
        environment.pop(
            "PROMETHEUS_MULTIPROC_DIR", None
        )  # the API's folder: a worker's files there would join its scrape
        log = open(self.tmp / f"model-host-{len(self.model_hosts)}.log", "wb")
        proc = subprocess.Popen(
            [*(prefix or []), sys.executable, "ml_service.py"],
            cwd=REPO / "model",
            env=environment,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.model_hosts.append(proc)
        return proc

    # --- logs and stop --------------------------------------------------------------------------------------------

    def log_lines(self, program: str, needle: str) -> list[str]:
        """The lines of one supervised program's log (`nginx`, `gunicorn`, `model`, …) that contain `needle`."""
        path = self.run_dir / "logs" / f"{program}.log"
        return [line for line in path.read_text(errors="replace").splitlines() if needle in line]

    def logs(self) -> str:
        files = [self.tmp / "run.sh.log", *sorted(self.tmp.glob("model-host-*.log"))]
        files += sorted((self.run_dir / "logs").glob("*.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in files if p.exists())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90) -> int | None:
        """Signal run.sh's whole process group, as Ctrl-C or `kill -TERM -PGID` would; returns supervisord's code."""
        for proc in self.model_hosts:
            stop_process(proc)
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        os.killpg(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(5)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def _get_ok(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def post_photo(url: str, name: str = "cat.jpg", timeout: float = 60, client: int | None = None, **kwargs):
    """POST one sample photo to <url>/predict; returns the requests.Response. `client`: send it from that load
    client's own loopback address (testkit/source_addresses.py) instead of 127.0.0.1."""
    import requests

    from testkit.source_addresses import session

    with open(PHOTOS / name, "rb") as fh, session(client) if client is not None else requests.Session() as http:
        return http.post(url + "/predict", files={"file": (name, fh, "image/jpeg")}, timeout=timeout, **kwargs)


def make_model(repository: Path, stack: Stack | None = None, **env: str) -> subprocess.CompletedProcess:
    """scripts/ensure_model.sh, the script `make model` runs, into `repository` (model name resnet50, no INT8 unless
    `env` asks), against `stack`'s Redis when given (the versions its workers serve are kept)."""
    full = {**os.environ, "MODEL_DIR": "", "MODEL_REPOSITORY": str(repository), "MODEL_NAME": "resnet50", "INT8": "0"}
    if stack is not None:
        full |= {
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(stack.redis_port),
            "REDIS_PASSWORD": stack.redis_password,
        }
    return subprocess.run(
        [str(REPO / "scripts" / "ensure_model.sh")], env=full | env, capture_output=True, text=True, timeout=900
    )
