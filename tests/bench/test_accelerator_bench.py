"""The accelerator bench: the config's recipe on Keras' JAX backend, timed as its own process
(here on the CPU, with a few generated images; on the device machine on its GPU)."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bench.accelerator import (
    augment,
    augment_in_parallel,
    compiled_model,
    generated_cifar,
    on_jax,
    parse_args,
)

ROOT = Path(__file__).resolve().parents[2]


def test_shift_moves_each_image_by_at_most_two_pixels_with_zero_fill():
    images = np.zeros((64, 32, 32, 3), np.uint8)
    images[:, 10, 20] = 255  # one bright pixel, the same in every image
    shifted = augment(images, "shift", np.random.default_rng(0))
    assert shifted.shape == images.shape and shifted.dtype == np.uint8
    offsets = set()
    for image in shifted:
        (row, column, _), *_ = np.argwhere(image == 255)
        offsets.add((row - 10, column - 20))
        assert image.sum() == 3 * 255  # moved, not smeared: nothing else turned on
    assert offsets <= {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}
    assert len(offsets) > 10  # each image draws its own offset
    edge = np.full((200, 32, 32, 3), 7, np.uint8)
    assert (augment(edge, "shift", np.random.default_rng(1)) == 0).any()  # zero fill


def test_flip_shift_mirrors_about_half_the_images():
    images = np.zeros((400, 32, 32, 3), np.uint8)
    images[:, 16, 3] = 255  # near the left edge: mirrored, it lands near the right edge
    out = augment(images, "flip_shift", np.random.default_rng(0))
    mirrored = np.mean([np.argwhere(image == 255)[0][1] > 16 for image in out])
    assert 0.4 < mirrored < 0.6
    assert augment(images, "none", np.random.default_rng(0)) is images


def test_augmenting_in_slices_on_threads_keeps_every_image_in_its_place():
    images = np.zeros((90, 32, 32, 3), np.uint8)
    images[:, 16, 16] = np.arange(90)[:, None]  # each image marked with its index
    with ThreadPoolExecutor(3) as pool:
        out = augment_in_parallel(images, "flip_shift", np.random.default_rng(0), pool, parts=4)
        again = augment_in_parallel(images, "flip_shift", np.random.default_rng(0), pool, parts=4)
    assert out.shape == images.shape
    assert [int(image.max()) for image in out] == list(range(90))
    np.testing.assert_array_equal(out, again)  # one seed, one augmentation


def test_generated_images_have_cifars_shapes_and_every_class():
    images, labels = generated_cifar(500, seed=3)
    assert images.shape == (500, 32, 32, 3) and images.dtype == np.uint8
    assert set(labels.tolist()) == set(range(10))
    again, _ = generated_cifar(500, seed=3)
    np.testing.assert_array_equal(images, again)


def test_the_recipe_trains_on_jax_timed_from_process_start(tmp_path):
    results = tmp_path / "results.json"
    argv = ["-m", "bench.accelerator", "--generated", "--limit", "256", "--epochs", "2"]
    argv += ["--precisions", "float32", "--results", str(results)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("KERAS_BACKEND", None)  # the bench chooses JAX itself
    done = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "float32 seed 0:" in done.stdout
    result = json.loads(results.read_text())
    assert result["machine"]["keras_backend"] == "jax"
    assert result["machine"]["kind"] == "cpu"
    assert result["data"].startswith("generated")
    (run,) = result["runs"]
    assert run["precision"] == "float32" and run["examples"] == 256
    points = run["points"]
    assert [p["epoch"] for p in points] == [1, 2]
    for point in points:
        assert 0 < point["seconds"] < point["wall_seconds"] < run["wall_seconds"]
        assert 0.0 <= point["test_accuracy"] <= 1.0
    assert run["final_accuracy"] == points[-1]["test_accuracy"]
    assert run["steady_examples_per_second"] > 0
    assert "seconds_to_0.94" in run and "wall_seconds_to_0.94" in run


def test_a_missing_data_dir_is_refused_with_its_name(tmp_path):
    missing = tmp_path / "nowhere"
    done = subprocess.run(
        [sys.executable, "-m", "bench.accelerator", "--child", "--out", str(tmp_path / "o.json"),
         "--precision", "float32", "--data-dir", str(missing)],
        cwd=ROOT, env=on_jax({**os.environ, "JAX_PLATFORMS": "cpu"}), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert str(missing) in done.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--generated", "--precisions", "float32,fp8"], "unknown precision 'fp8'"),
        (["--data-dir", "/no/such/folder"], "--data-dir '/no/such/folder' is not a folder"),
        (["--generated", "--epochs", "0"], "expected an integer >= 1, got '0'"),
        (["--generated", "--seeds", "two"], "expected an integer >= 1, got 'two'"),
        (["--generated", "--config", "configs/none.yaml"], "'configs/none.yaml' does not exist"),
        (["--generated", "--config", "configs/mnist_fastnet.yaml"],
         "trains on 'mnist' (multiclass, 28x28x1)"),
        ([], "one of the arguments --data-dir --generated is required"),
    ],
)  # fmt: skip
def test_what_would_fail_every_run_is_refused_before_any_starts(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(flags)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_the_model_takes_uint8_pixels_and_its_schedule_spans_the_run():
    from training.config import build_config, load_yaml

    config = build_config(load_yaml(ROOT / "configs/cifar10_airnet.yaml"), {"epochs": 2})
    model, one_hot = compiled_model(config, "float32", examples=1000)
    assert model.input.dtype == "uint8" and tuple(model.input.shape[1:]) == (32, 32, 3)
    assert one_hot == 10  # label smoothing needs one-hot targets
    schedule = model.optimizer.get_config()["learning_rate"]["config"]
    assert schedule["total_steps"] == 2 * 2  # ceil(1000 / 512) steps, 2 epochs
