"""The cores a process may use: its affinity capped by the container's CPU quota (cgroup v2 or
v1), so ``zoo serve`` starts one worker per core it has, not per core of the host."""

import os

import pytest

from core.cpu import cpu_quota, usable_cores

AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
        ({"cpu.max": "garbage"}, None),
    ],
)
def test_the_quota_is_read_from_cgroup_v2_or_v1(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cpu_quota(tmp_path) == quota


def test_usable_cores_are_the_affinity_capped_by_the_quota_rounded_up(tmp_path):
    assert usable_cores(tmp_path) == AFFINITY  # no quota
    (tmp_path / "cpu.max").write_text("50000 100000")
    assert usable_cores(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{AFFINITY * 1000 * 100} 100000")
    assert usable_cores(tmp_path) == AFFINITY
    if AFFINITY > 1:
        (tmp_path / "cpu.max").write_text("120000 100000")
        assert usable_cores(tmp_path) == 2
