"""workloads: every process of the stack named with its part (cpu_roots), and the run names the report reads."""

from __future__ import annotations

import os
from types import SimpleNamespace

from stress_test.report_sections import SETTING_COMPARISONS
from stress_test.workloads import cpu_roots, run_names


def test_every_process_of_each_program_is_a_root_of_its_part():
    groups = {"redis": {10}, "model": {20, 21, 22}, "api": {30, 31}, "nginx": {40, 41}}
    leaders = {"model": 20, "gunicorn": 30}
    stack = SimpleNamespace(proc=SimpleNamespace(pid=5), program_pid=lambda name: leaders[name])
    svc = SimpleNamespace(stack=stack, parts=lambda: groups)
    roots = cpu_roots(svc)
    assert roots[5] == "supervisord" and roots[10] == "redis" and roots[20] == "model_service"
    assert roots[21] == roots[22] == "worker" and roots[30] == roots[31] == "gunicorn"
    assert roots[40] == roots[41] == "nginx" and roots[os.getpid()] == "load_generator"


def test_run_names_are_unique_and_give_every_comparison_the_report_makes():
    names = run_names()
    assert len(names) == len(set(names))
    assert "small-int8-keras-c8-read_ahead0" in names and "small-fp32-keras-c8-batch_share0" in names
    for default_run, other_run, *_ in SETTING_COMPARISONS:
        assert default_run in names and other_run in names
