"""The machine-dependent choices of a run: the precision policy and TensorFlow's CPU kernels."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import cpu
from training import runtime

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("flags", "policy", "why"),
    [
        ({"avx2", "avx512_bf16", "amx_bf16"}, "mixed_bfloat16", "AMX"),
        ({"avx2", "fma"}, "float32", "no bf16 instructions"),
        ({"avx2", "avx512f", "avx512_bf16"}, "float32", "not measured"),
    ],
)
def test_auto_precision_follows_the_cpu_flags(monkeypatch, flags, policy, why):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: flags)
    monkeypatch.setattr(runtime.tf.config, "list_physical_devices", lambda kind: [])
    chosen, reason = runtime.resolve_precision("auto")
    assert chosen == policy and why in reason


def test_auto_precision_measures_where_the_flags_do_not_settle_it(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    monkeypatch.setattr(runtime.tf.config, "list_physical_devices", lambda kind: [])
    speeds = {"float32": 900.0, "mixed_bfloat16": 1200.0}
    chosen, reason = runtime.resolve_precision("auto", speeds.get)
    assert chosen == "mixed_bfloat16"
    assert "float32 900 examples/s" in reason and "mixed_bfloat16 1,200 examples/s" in reason
    assert runtime.resolve_precision("off", speeds.get) == ("float32", "--mixed-precision off")


def test_onednn_kernels_are_asked_for_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv(cpu.ONEDNN_VARIABLE, raising=False)
    cpu.prefer_onednn_kernels()
    assert os.environ[cpu.ONEDNN_VARIABLE] == "1"
    monkeypatch.setenv(cpu.ONEDNN_VARIABLE, "0")
    cpu.prefer_onednn_kernels()
    assert os.environ[cpu.ONEDNN_VARIABLE] == "0", "the user's choice stays"


@pytest.mark.parametrize(("setting", "kernels"), [("1", "oneDNN"), ("0", "Eigen")])
def test_cpu_kernels_names_what_tensorflow_chose_at_import(setting, kernels):
    script = "from training.runtime import cpu_kernels; print(cpu_kernels())"
    env = {**os.environ, cpu.ONEDNN_VARIABLE: setting, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == kernels
