"""Measures which precision policy trains a run's model fastest on this machine, for
``mixed_precision: auto`` where the CPU's flags do not settle it (``avx512_bf16`` without AMX), and
remembers the answer so that only a model's first run on a machine pays for it.

The probe builds and traces the model once per policy: about 5 s of the 60 s that ``mnist_fastnet``
takes from process start on 2 cores of an AMD EPYC with ``avx512_bf16``. What it measures depends on
the machine (CPU, speed flags, cores, TensorFlow, Keras, the CPU kernels) and on the model's
training step (architecture and options, input, head, batch, augmentation, optimizer, steps per
execution, XLA): together they make the key under which the speeds are kept, in
``$ZOO_CACHE_DIR/precision.json`` (default ``$XDG_CACHE_HOME/zoo``, else ``~/.cache/zoo``). Delete
the file to measure again. A cache that cannot be read or written costs only the probe's seconds:
the run goes on with a warning.
"""

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from core.cpu import cpu_model, speed_flags
from training import runtime
from training.config import TrainConfig
from training.run_dir import write_json_atomic

CACHE_FILE = "precision.json"
STEP_FIELDS = (
    "model", "model_options", "dataset", "head", "batch_size", "augmentation", "optimizer",
    "steps_per_execution", "jit_compile", "strategy",
)  # fmt: skip


def cache_dir() -> Path:
    """``$ZOO_CACHE_DIR``, else ``$XDG_CACHE_HOME/zoo``, else ``~/.cache/zoo``."""
    if os.environ.get("ZOO_CACHE_DIR"):
        return Path(os.environ["ZOO_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "zoo"


def probe_setting(config: TrainConfig) -> dict:
    """What decides the policies' speeds: this machine and the config's training step."""
    step = {field: getattr(config, field) for field in STEP_FIELDS}
    return {
        "cpu": cpu_model(),
        "cpu_flags": speed_flags(),
        "cores": len(os.sched_getaffinity(0)),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cpu_kernels": runtime.cpu_kernels(),
        "step": json.loads(json.dumps(step, default=str)),
    }


class PrecisionCache:
    """Examples/s per policy, kept per probe setting in one JSON file, read once."""

    def __init__(self, path: Path):
        self.path = path
        self._entries: dict | None = None

    @classmethod
    def default(cls) -> "PrecisionCache":
        """The user's cache: ``precision.json`` in ``cache_dir()``."""
        return cls(cache_dir() / CACHE_FILE)

    @staticmethod
    def key(setting: dict) -> str:
        return hashlib.sha256(json.dumps(setting, sort_keys=True).encode()).hexdigest()[:16]

    def speed(self, setting: dict, policy: str) -> float | None:
        """The remembered examples/s of ``policy`` under ``setting``, or None."""
        value = _speeds(self._probes(), self.key(setting)).get(policy)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if number and math.isfinite(value) and value > 0 else None

    def remember(self, setting: dict, policy: str, speed: float) -> None:
        """Adds ``policy``'s speed to the file (written whole, atomically); a folder that cannot
        be written gets a warning, not an error."""
        entries = self._probes()
        key = self.key(setting)
        entries[key] = {
            **setting,
            "examples_per_second": {**_speeds(entries, key), policy: round(speed, 1)},
            "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, {"version": 1, "probes": entries})
        except OSError as error:
            _warn(f"could not remember the precision probe's speeds in {self.path}: {error}")

    def _probes(self) -> dict:
        if self._entries is None:
            self._entries = self._read()
        return self._entries

    def _read(self) -> dict:
        """The file's probes; an unreadable or malformed file counts as empty, with a warning."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
            _warn(f"ignoring the precision cache {self.path} ({error}); measuring again")
            return {}
        probes = data.get("probes") if isinstance(data, dict) else None
        if not isinstance(probes, dict):
            _warn(f"ignoring the precision cache {self.path} (no 'probes' object); measuring again")
            return {}
        return probes


class PrecisionProbe:
    """``probe(policy) -> examples/s`` of a few training steps of the run's own model and data,
    for ``runtime.resolve_precision``: looked up in the cache first, measured and remembered
    otherwise.

    Args:
        build: builds and compiles the model under the current dtype policy.
        make_batches: makes the training batches to time, a pipeline of the probe's own (made only
            when it measures): iterating the run's pipeline would advance its shuffling.
        steps: how many batches to time (as many again trace the step first).
        batch_size: examples per batch.
        setting: what the speeds depend on (``probe_setting``).
        cache: where speeds are remembered.
    """

    def __init__(self, build: Callable[[], keras.Model], make_batches: Callable[[], tf.data.Dataset],
                 steps: int, batch_size: int, setting: dict, cache: PrecisionCache):  # fmt: skip
        self.build, self.make_batches = build, make_batches
        self.steps, self.batch_size = steps, batch_size
        self.setting, self.cache = setting, cache
        self.remembered: list[str] = []  # the policies whose speeds came from the cache

    def __call__(self, policy: str) -> float:
        speed = self.cache.speed(self.setting, policy)
        if speed is not None:
            self.remembered.append(policy)
            return speed
        batches = self.make_batches().take(self.steps)
        with runtime.dtype_policy(policy):
            model = self.build()
            model.fit(batches, shuffle=False, verbose=0)  # traces
            start = time.perf_counter()
            model.fit(batches, shuffle=False, verbose=0)
            speed = self.steps * self.batch_size / (time.perf_counter() - start)
        self.cache.remember(self.setting, policy, speed)
        return speed


def _speeds(entries: dict, key: str) -> dict:
    """The ``examples_per_second`` object of the entry ``key``; empty where it is malformed."""
    entry = entries.get(key)
    speeds = entry.get("examples_per_second") if isinstance(entry, dict) else None
    return speeds if isinstance(speeds, dict) else {}


def _warn(message: str) -> None:
    print(f"Warning: {message}", file=sys.stderr, flush=True)
