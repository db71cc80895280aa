"""What this machine's CPU is, from ``/proc/cpuinfo``: training picks its precision and kernels by
it, and benchmark results are labelled with it."""

import functools
import math
import os
import platform
from pathlib import Path


@functools.cache
def _cpuinfo_lines() -> tuple[str, ...]:
    """``/proc/cpuinfo``, read once per process (the CPU does not change under it)."""
    try:
        return tuple(Path("/proc/cpuinfo").read_text().splitlines())
    except OSError:
        return ()


def _cpuinfo_field(name: str) -> str | None:
    for line in _cpuinfo_lines():
        if line.startswith(name):
            return line.split(":", 1)[1].strip()
    return None


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``avx2``, ``avx512_bf16``, ``amx_bf16``...); empty if unknown."""
    return set((_cpuinfo_field("flags") or "").split())


SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def speed_flags() -> list[str]:
    """The CPU's flags that decide training and inference speed."""
    flags = cpu_flags()
    return [flag for flag in SPEED_FLAGS if flag in flags]


ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def prefer_onednn_kernels() -> None:
    """Asks TensorFlow for its oneDNN CPU kernels, unless the environment already chose.

    TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI, AVX-512 bf16 or AMX; elsewhere
    it runs its Eigen kernels, which train the zoo's convnets more slowly on AVX2-only CPUs.
    Serving keeps TensorFlow's choice (oneDNN answers single requests no faster there). Takes
    effect only before TensorFlow is imported; ``TF_ENABLE_ONEDNN_OPTS=0`` keeps Eigen.
    """
    os.environ.setdefault(ONEDNN_VARIABLE, "1")


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPUs this container may use by its cgroup quota (``docker run --cpus``, a Kubernetes
    CPU limit): cgroup v2's ``cpu.max``, else v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``;
    None without a quota."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def usable_cores(root: Path = CGROUP_ROOT) -> int:
    """The cores this process may run on: its affinity, capped by the cgroup quota (rounded up,
    at least 1). ``os.cpu_count()`` counts the host's, which a container may not have."""
    cores = len(os.sched_getaffinity(0))
    quota = cpu_quota(root)
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))
