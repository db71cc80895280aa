"""What this machine's CPU is, from ``/proc/cpuinfo``: training picks its precision by it, and
benchmark results are labelled with it."""

import platform
from pathlib import Path


def _cpuinfo_field(name: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``avx2``, ``avx512_bf16``, ``amx_bf16``...); empty if unknown."""
    return set((_cpuinfo_field("flags") or "").split())
