"""CPU quota from fake cgroup v1 / v2 trees, and the worker topology it leads to (`cpus: 1` → 1 × 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

import cpu_quota
import session


def v2(root: Path, text: str) -> Path:
    (root / "cpu.max").write_text(text + "\n")
    return root


def v1(root: Path, quota: int, period: int = 100_000, folder: str = "cpu") -> Path:
    (root / folder).mkdir()
    (root / folder / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (root / folder / "cpu.cfs_period_us").write_text(f"{period}\n")
    return root


@pytest.mark.parametrize(
    "text,expected",
    [
        ("100000 100000", 1.0),
        ("150000 100000", 1.5),
        ("50000 100000", 0.5),
        ("max 100000", None),
        ("200000 50000", 4.0),
        ("garbage", None),
    ],
)
def test_cgroup_v2_cpu_max(tmp_path, text, expected):
    assert cpu_quota.cpu_quota(v2(tmp_path, text)) == expected


@pytest.mark.parametrize(
    "quota,period,expected",
    [(100_000, 100_000, 1.0), (-1, 100_000, None), (250_000, 100_000, 2.5), (50_000, 100_000, 0.5)],
)
def test_cgroup_v1_cfs_quota(tmp_path, quota, period, expected):
    assert cpu_quota.cpu_quota(v1(tmp_path, quota, period)) == expected


def test_cgroup_v1_co_mounted_with_cpuacct(tmp_path):
    assert cpu_quota.cpu_quota(v1(tmp_path, 200_000, folder="cpu,cpuacct")) == 2.0


def test_no_cgroup_files_means_no_quota(tmp_path):
    assert cpu_quota.cpu_quota(tmp_path) is None
    assert cpu_quota.quota_cores(8, tmp_path) == 8


def test_v2_file_wins_over_v1_leftovers(tmp_path):
    v1(tmp_path, 400_000)
    assert cpu_quota.cpu_quota(v2(tmp_path, "100000 100000")) == 1.0


@pytest.mark.parametrize(
    "visible,quota,expected", [(2, 100_000, 1), (2, 50_000, 1), (8, 250_000, 2), (2, 400_000, 2), (4, -1, 4)]
)
def test_quota_caps_visible_cores_rounding_down(tmp_path, visible, quota, expected):
    assert cpu_quota.quota_cores(visible, v1(tmp_path, quota)) == expected


@pytest.mark.parametrize("make_tree", [lambda root: v1(root, 100_000), lambda root: v2(root, "100000 100000")])
def test_one_cpu_container_runs_one_worker_with_one_thread(tmp_path, monkeypatch, make_tree):
    monkeypatch.setattr(cpu_quota, "CGROUP_ROOT", make_tree(tmp_path))
    cores = session.available_cores()
    assert cores == 1
    assert session.default_topology(cores) == (1, 1)
