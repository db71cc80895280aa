"""Process-wide settings of a run: seeds, deterministic ops, the mixed-precision policy and which
CPU kernels TensorFlow runs."""

import contextlib

import keras
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port

from core.cpu import cpu_flags

POLICIES = {"off": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def resolve_precision(setting: str, measure=None) -> tuple[str, str]:
    """The Keras dtype policy for ``--mixed-precision`` and why it was chosen.

    ``auto`` decides by what the machine has, and measures where that does not settle it:

    - a GPU: ``mixed_float16`` (tensor cores);
    - a CPU with AMX: ``mixed_bfloat16`` (AMX runs bf16 convolutions about twice as fast);
    - a CPU without bf16 instructions (no ``avx512_bf16``, no AMX): float32, since bf16 is emulated
      there, many times slower;
    - ``avx512_bf16`` without AMX: ``measure(policy) -> examples/s`` decides, when given.
    """
    if setting != "auto":
        return POLICIES[setting], f"--mixed-precision {setting}"
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16", "a GPU: float16 runs on its tensor cores"
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return "mixed_bfloat16", "this CPU has AMX, which runs bf16 convolutions about 2x faster"
    if "avx512_bf16" not in flags:
        return "float32", "this CPU has no bf16 instructions (avx512_bf16, AMX): bf16 is emulated"
    if measure is None:
        return "float32", "avx512_bf16 without AMX: not measured, float32 is the safe choice"
    speeds = {policy: measure(policy) for policy in ("float32", "mixed_bfloat16")}
    best = max(speeds, key=speeds.get)
    measured = ", ".join(f"{p} {s:,.0f} examples/s" for p, s in speeds.items())
    return best, f"avx512_bf16 without AMX, measured on this model: {measured}"


def cpu_kernels() -> str:
    """``oneDNN`` or ``Eigen``: the CPU kernels TensorFlow chose at import for this process (see
    ``core.cpu.prefer_onednn_kernels``)."""
    return "oneDNN" if _pywrap_util_port.IsMklEnabled() else "Eigen"


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seeds Python, NumPy and TensorFlow; with ``deterministic`` also TF's deterministic ops, so
    that a CPU rerun with the same seed reproduces its metrics."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def dtype_policy(name: str):
    """Sets Keras' global dtype policy while models are built and trained, then restores it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
