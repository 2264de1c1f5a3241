"""Secrets stay out of git and images; run_program.sh ends only processes that are its own (no stack needed)."""

from __future__ import annotations

import fnmatch
import os
import shlex
import sys
import signal
import subprocess

import psutil
import pytest

from testkit.paths import REPO
from testkit.processes import wait_until

RUN_PROGRAM = REPO / "deploy" / "supervisor" / "run_program.sh"


def dockerignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern also excludes everything under a matched folder."""
    excluded = False
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate, pattern = line.startswith("!"), line.lstrip("!")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/")) for p in prefixes):
            excluded = not negate
    return excluded


@pytest.mark.parametrize(
    "path",
    [".env", ".env.production", "api/instance/secret_key", "model/instance/x", "deploy/tls.key", "certs/a.pem"],
)
def test_secrets_never_enter_an_image(path):
    assert dockerignored(path)


def test_images_still_get_the_code_and_the_example_env():
    assert not dockerignored("api/app.py") and not dockerignored(".env.example")


@pytest.mark.parametrize("path", [".env", "api/instance/secret_key", "server.key", ".run/redis.password"])
def test_secrets_are_git_ignored(path):
    assert subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0, path


def start_in_own_group(args: list[str], env: dict | None = None) -> subprocess.Popen:
    """As supervisord starts a program: a new process group."""
    return subprocess.Popen(args, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run_program(run_dir, name: str, *command: str, **extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, RUN_DIR=str(run_dir), **extra)
    return subprocess.run(
        [str(RUN_PROGRAM), name, *command], env=env, capture_output=True, timeout=30, start_new_session=True
    )


def test_a_recycled_group_id_is_left_alone(tmp_path):
    """The record names a group whose id now belongs to an unrelated process: it is not signalled."""
    stranger = start_in_own_group(["sleep", "60"])
    try:
        (tmp_path / "pgid").mkdir()
        (tmp_path / "pgid" / "nginx").write_text(f"{stranger.pid}\n")
        (tmp_path / "pgid" / "nginx.start").write_text("1\n")  # the recorded leader started at another time
        done = run_program(tmp_path, "nginx", "true")
        assert done.returncode == 0, done.stderr
        assert stranger.poll() is None and b"ending what is left" not in done.stderr
        assert int((tmp_path / "pgid" / "nginx").read_text()) != stranger.pid  # the new run recorded itself
    finally:
        stranger.kill()
        stranger.wait(5)


def test_its_own_orphans_are_ended(tmp_path):
    """A predecessor SIGKILLed with a child still running: the child (marked by run_program.sh) is ended."""
    env = dict(os.environ, RUN_DIR=str(tmp_path))
    leader = start_in_own_group([str(RUN_PROGRAM), "model", "sh", "-c", "sleep 300 & exec sleep 300"], env)
    try:

        def sleeping_child() -> psutil.Process | None:  # once run_program.sh has exec'ed the command
            proc = psutil.Process(leader.pid)
            kids = [c for c in proc.children() if c.name() == "sleep"]
            return kids[0] if proc.name() == "sleep" and kids else None

        orphan = wait_until(sleeping_child, 10, "the command and its child")
        os.kill(leader.pid, signal.SIGKILL)
        leader.wait(5)
        done = run_program(tmp_path, "model", "true")
        assert done.returncode == 0 and b"ending what is left" in done.stderr, done.stderr
        orphan.wait(10)
        assert not orphan.is_running()
    finally:
        try:
            os.killpg(leader.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_leftovers_get_the_programs_own_signal(tmp_path):
    """nginx's leftover workers get QUIT (finish what they hold), not TERM (drop it): the signal reaches them."""
    env = dict(os.environ, RUN_DIR=str(tmp_path))
    said, listening = tmp_path / "signal", tmp_path / "listening"
    worker = (  # a shell's background job would ignore QUIT: a program that handles it, as nginx's workers do
        "import signal, sys, time\n"
        "def say(n, _):\n"
        f"    open({str(said)!r}, 'w').write(signal.Signals(n).name)\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGQUIT, say)\n"
        "signal.signal(signal.SIGTERM, say)\n"
        f"open({str(listening)!r}, 'w').close()\n"
        "time.sleep(300)\n"
    )
    command = f"{shlex.quote(sys.executable)} -c {shlex.quote(worker)} & exec sleep 300"
    leader = start_in_own_group([str(RUN_PROGRAM), "nginx", "sh", "-c", command], env)
    try:
        wait_until(listening.exists, 10, "the worker to install its signal handlers")
        os.kill(leader.pid, signal.SIGKILL)
        leader.wait(5)
        done = run_program(tmp_path, "nginx", "true", RUN_PROGRAM_LEFTOVER_SIGNAL="QUIT")
        assert done.returncode == 0 and b"ending what is left" in done.stderr, done.stderr
        wait_until(said.exists, 10, "the leftover to report its signal")
        assert said.read_text() == "SIGQUIT"
    finally:
        try:
            os.killpg(leader.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_make_run_refuses_an_unprotected_redis_on_its_port(tmp_path):
    """Anyone on the host could read and forge what the service keeps there: run.sh stops before starting anything."""
    from testkit.processes import free_port
    from testkit.redis_server import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    try:
        env = {k: v for k, v in os.environ.items() if k != "REDIS_PASSWORD"}
        env |= {"RUN_DIR": str(tmp_path / "run"), "PORT": str(free_port()), "REDIS_PORT": str(server.port)}
        done = subprocess.run([str(REPO / "scripts" / "run.sh")], env=env, capture_output=True, timeout=60)
    finally:
        server.stop()
    print(f"make run beside an unprotected Redis: exit {done.returncode}: {done.stderr.decode().strip()[-160:]}")
    assert done.returncode == 1 and b"without a password" in done.stderr
    assert not (tmp_path / "run" / "supervisord.conf").exists()  # nothing was started
