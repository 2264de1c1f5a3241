"""workloads.cpu_roots: every process of the stack named with its part, workers apart from their model service."""

from __future__ import annotations

import os
from types import SimpleNamespace

from stress_test.workloads import cpu_roots


def test_every_process_of_each_program_is_a_root_of_its_part():
    groups = {"redis": {10}, "model": {20, 21, 22}, "api": {30, 31}, "nginx": {40, 41}}
    leaders = {"model": 20, "gunicorn": 30}
    stack = SimpleNamespace(proc=SimpleNamespace(pid=5), program_pid=lambda name: leaders[name])
    svc = SimpleNamespace(stack=stack, parts=lambda: groups)
    roots = cpu_roots(svc)
    assert roots[5] == "supervisord" and roots[10] == "redis" and roots[20] == "model_service"
    assert roots[21] == roots[22] == "worker" and roots[30] == roots[31] == "gunicorn"
    assert roots[40] == roots[41] == "nginx" and roots[os.getpid()] == "load_generator"
