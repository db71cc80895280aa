"""The precision probe: real steps of a small model, measured once per machine and step, then
remembered; a broken cache costs only the measurement."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from training import runtime
from training.config import build_config, load_yaml
from training.loop import train
from training.precision_probe import PrecisionCache, PrecisionProbe, cache_dir, probe_setting

ROOT = Path(__file__).resolve().parents[2]
SETTING = {"cpu": "test CPU", "cores": 2, "step": {"model": "tiny", "batch_size": 8}}


def tiny_batches() -> tf.data.Dataset:
    images = np.random.default_rng(0).random((32, 4), np.float32)
    return tf.data.Dataset.from_tensor_slices((images, np.arange(32) % 2)).batch(8).repeat()


class CountingBuilder:
    """Builds a small compiled model under the current dtype policy, makes its batches, and
    counts both."""

    def __init__(self):
        self.builds, self.policies, self.pipelines = 0, [], 0

    def make_batches(self) -> tf.data.Dataset:
        self.pipelines += 1
        return tiny_batches()

    def __call__(self) -> keras.Model:
        self.builds += 1
        self.policies.append(keras.config.dtype_policy().name)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, dtype="float32")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model


def learned(run) -> tuple[list[dict], dict]:
    """A run's losses and accuracies per epoch and its final test metrics: no timings."""
    epochs = [{k: v for k, v in row.items() if "loss" in k or "accuracy" in k}
              for row in run.read_history()]  # fmt: skip
    return epochs, json.loads(run.metrics_path.read_text())["test"]


def probe(cache: PrecisionCache, builder: CountingBuilder, setting=SETTING) -> PrecisionProbe:
    return PrecisionProbe(builder, builder.make_batches, 2, 8, setting, cache)


def test_a_speed_is_measured_once_then_remembered(tmp_path):
    cache, builder = PrecisionCache(tmp_path / "zoo" / "precision.json"), CountingBuilder()
    first = probe(cache, builder)
    speeds = {policy: first(policy) for policy in ("float32", "mixed_bfloat16")}
    assert builder.builds == 2 and builder.policies == ["float32", "mixed_bfloat16"]
    assert all(speed > 0 for speed in speeds.values()) and first.remembered == []

    again = probe(cache, builder)
    assert again("float32") == pytest.approx(speeds["float32"], abs=0.05)
    assert again("mixed_bfloat16") == pytest.approx(speeds["mixed_bfloat16"], abs=0.05)
    assert builder.builds == 2 and again.remembered == ["float32", "mixed_bfloat16"]
    assert builder.pipelines == 2  # a remembered speed makes no pipeline

    other_step = {**SETTING, "step": {"model": "tiny", "batch_size": 16}}
    probe(cache, builder, other_step)("float32")
    assert builder.builds == 3, "another batch size is another measurement"
    stored = json.loads(cache.path.read_text())
    assert len(stored["probes"]) == 2
    entry = stored["probes"][PrecisionCache.key(SETTING)]
    assert entry["cpu"] == "test CPU" and set(entry["examples_per_second"]) == set(speeds)


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe not UTF-8",
        b"{ not json",
        b"[1, 2]",
        b'{"probes": []}',
        json.dumps({"probes": {PrecisionCache.key(SETTING): "fast"}}).encode(),
        json.dumps(
            {"probes": {PrecisionCache.key(SETTING): {"examples_per_second": {"float32": -1}}}}
        ).encode(),
        json.dumps(
            {"probes": {PrecisionCache.key(SETTING): {"examples_per_second": {"float32": True}}}}
        ).encode(),
        b'{"probes": {"%s": {"examples_per_second": {"float32": NaN}}}}'
        % PrecisionCache.key(SETTING).encode(),
        b"[" * 100_000,
    ],
    ids=["binary", "truncated", "a list", "probes a list", "entry a string", "negative", "bool",
         "nan", "deeply nested"],
)  # fmt: skip
def test_a_broken_cache_is_measured_again_and_rewritten(tmp_path, content, capsys):
    cache, builder = PrecisionCache(tmp_path / "precision.json"), CountingBuilder()
    cache.path.write_bytes(content)
    speeds = [probe(cache, builder)(policy) for policy in ("float32", "mixed_bfloat16")]
    assert min(speeds) > 0 and builder.builds == 2
    assert capsys.readouterr().err.count("Warning") <= 1, "one warning, not one per lookup"
    stored = json.loads(cache.path.read_text())
    assert stored["probes"][PrecisionCache.key(SETTING)]["examples_per_second"]["float32"] > 0


def test_a_cache_folder_that_cannot_be_written_costs_only_a_warning(tmp_path, capsys):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    cache, builder = PrecisionCache(blocker / "precision.json"), CountingBuilder()
    assert probe(cache, builder)("float32") > 0
    assert "could not remember the precision probe's speeds" in capsys.readouterr().err
    assert blocker.read_text() == "not a folder" and list(tmp_path.iterdir()) == [blocker]


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("ZOO_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "zoo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "zoo"


def test_the_setting_holds_the_step_and_not_the_schedule():
    config = build_config(load_yaml(ROOT / "configs/mnist_fastnet.yaml"))
    setting = probe_setting(config)
    assert setting["step"]["model"] == "mnist_fastnet" and setting["cores"] >= 1
    assert setting["cpu_kernels"] == runtime.cpu_kernels()
    key = PrecisionCache.key
    same_step = config.model_copy(update={"seed": 7, "epochs": 9, "lr": 0.1})
    assert key(probe_setting(same_step)) == key(setting)
    other_batch = config.model_copy(update={"batch_size": 64})
    assert key(probe_setting(other_batch)) != key(setting)


def test_train_measures_on_its_first_run_and_says_where_it_remembered(
    monkeypatch, tmp_path, capsys
):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    monkeypatch.setattr(runtime.tf.config, "list_physical_devices", lambda kind=None: [])
    overrides = {"epochs": 1, "train_limit": 64, "test_limit": 32, "batch_size": 32,
                 "steps_per_execution": 1, "runs_root": str(tmp_path / "runs")}  # fmt: skip
    config = build_config(load_yaml(ROOT / "configs/mnist_fastnet.yaml"), overrides)
    probed = train(config, verbose=2)
    first = capsys.readouterr().out
    assert "avx512_bf16 without AMX, measured on this model" in first
    assert "remembered" not in first
    again = train(config, verbose=2)
    second = capsys.readouterr().out
    assert f"remembered from an earlier run in {PrecisionCache.default().path}" in second
    chosen = second.split("Precision: ")[1].split(" ")[0]
    assert chosen == first.split("Precision: ")[1].split(" ")[0]
    # The probe's models and batches draw on the run's random streams: a run that measured and
    # one that remembered must still start from the same weights and see the same batches.
    assert learned(again) == learned(probed)
