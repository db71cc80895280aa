"""What every benchmark result carries (the machine it ran on, and where it is written) and how
their accuracy points are read.

The machines this project runs on change from day to day (an Intel Xeon with AMX, AMD EPYCs with
and without AVX-512), and speed depends on which: every result names its CPU kind, and results of
different kinds live side by side as ``bench/results/NAME-KIND.json``.
"""

import json
import os
import platform
import subprocess
import time
from pathlib import Path

from core.cpu import cpu_flags, cpu_model, speed_flags

RESULTS = Path(__file__).resolve().parent / "results"


def machine_kind() -> str:
    """A short label of the CPU kind: vendor and widest matrix/vector unit, e.g.
    ``intel-amx``, ``amd-avx512-bf16``, ``amd-avx2``."""
    model, flags = cpu_model().lower(), cpu_flags()
    vendor = "intel" if "intel" in model else "amd" if "amd" in model else "cpu"
    if "amx_tile" in flags:
        unit = "amx"
    elif "avx512_bf16" in flags:
        unit = "avx512-bf16"
    elif "avx512f" in flags:
        unit = "avx512"
    else:
        unit = "avx2" if "avx2" in flags else "sse"
    return f"{vendor}-{unit}"


def host_info() -> dict:
    """The host's CPU, cores, Python and the time: what every result records."""
    return {
        "cpu": cpu_model(),
        "cpu_flags": speed_flags(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def machine_info() -> dict:
    """The host, its CPU kind and GPUs, and the versions that shape the numbers."""
    import grpc
    import keras
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {
        **host_info(),
        "kind": machine_kind(),
        "gpus": gpus,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "grpcio": grpc.__version__,
    }


def describe_checkout(tree: Path) -> str:
    """A checkout's path and its commit, for results measured against the code before a change."""
    commit = subprocess.run(
        ["git", "-C", str(tree), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    ).stdout.strip()
    return f"{tree} ({commit or 'not a git checkout'})"


def write_result(name: str, result: dict) -> Path:
    """Writes ``bench/results/NAME-KIND.json`` with the machine info added (results of other CPU
    kinds stay); returns the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{machine_kind()}.json"
    path.write_text(json.dumps({"machine": machine_info(), **result}, indent=2) + "\n")
    return path


def percentile(values, q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if len(values) else float("nan")


def time_to(points: list[dict], target: float, clock: str = "seconds") -> float | None:
    """Seconds until test accuracy first reached ``target`` (None if never), on ``clock``:
    ``"seconds"`` (training only) or ``"wall_seconds"`` (from process start)."""
    return next((p[clock] for p in points if p["test_accuracy"] >= target), None)


def as_runs(value: dict | list[dict]) -> list[dict]:
    """A benchmark side's runs: a list in results that repeat it, one run (a dict) in earlier
    ones."""
    return value if isinstance(value, list) else [value]
