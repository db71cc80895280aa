"""The training bench times each training as its own process, from process start to the final
test accuracy (issue 9: wall time is what a user waits for)."""

import numpy as np
import pytest

from bench.reference import accuracy_points
from bench.report import time_to
from bench.train import reference_run, summarize, zoo_run


def check_clocks(run: dict, epochs: int) -> None:
    points = run["points"]
    assert [p["epoch"] for p in points] == list(range(1, epochs + 1))
    for point in points:
        assert 0.0 <= point["test_accuracy"] <= 1.0
        # Imports and data loading come before the first step: wall > training seconds.
        assert 0 < point["seconds"] < point["wall_seconds"] < run["wall_seconds"]
        assert point["cpu_percent"] > 0  # the process's CPU use over the epoch's training
    assert points[0]["wall_seconds"] < points[-1]["wall_seconds"]
    summary = summarize(run, targets=(0.0, 1.01))
    assert summary["cpu_percent"] == points[1]["cpu_percent"]  # after the first epoch
    assert summary["wall_seconds_to_0.000"] == pytest.approx(points[0]["wall_seconds"])
    assert summary["wall_seconds_to_1.010"] is None
    assert summary["seconds_to_0.000"] == pytest.approx(points[0]["seconds"])


def test_reference_runs_as_its_own_process_on_the_users_kernels(monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # as a user's environment may say
    run = reference_run("mnist", 2, limit=600)
    check_clocks(run, epochs=2)
    assert run["examples_per_second"] > 0
    assert summarize(run)["cpu_kernels"] == "Eigen"


def test_zoo_run_is_the_zoo_train_command(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")  # `zoo train` asks for oneDNN itself
    run = zoo_run(
        "mnist_cnn", 0, str(tmp_path), epochs=2, train_limit=512, test_limit=256,
        mixed_precision="off",
    )  # fmt: skip
    check_clocks(run, epochs=2)
    assert run["config"] == "mnist_cnn" and run["last_epoch_examples_per_second"] > 0
    assert run["cpu_kernels"] == "oneDNN"
    assert len(list(tmp_path.glob("mnist_cnn-seed0-*/*/*/metrics.json"))) == 1  # completed


def test_a_failing_run_reports_its_command_and_output(tmp_path):
    with pytest.raises(RuntimeError, match=r"zoo train .*batch-size.*exited with 2"):
        zoo_run("mnist_cnn", 0, str(tmp_path), batch_size=0)


def test_an_accuracy_keras_counted_in_float32_reaches_its_fraction():
    """9,920 of 10,000 right is 99.2 %, though Keras' float32 reads it as 0.99199998."""
    history = [
        {"epoch": epoch, "train_seconds": 10.0, "val_accuracy": float(np.float32(accuracy)),
         "finished_at": 100.0 + 10 * epoch, "cpu_percent": 180.0}
        for epoch, accuracy in enumerate([0.9917, 0.9920, 0.9931])
    ]  # fmt: skip
    assert history[1]["val_accuracy"] < 0.992
    points = accuracy_points(history)
    assert [p["test_accuracy"] for p in points] == [0.9917, 0.992, 0.9931]
    assert time_to(points, 0.992) == 20.0
