"""The per-epoch throughput numbers every run logs: training seconds without validation,
examples/s and the process's CPU use over the same seconds."""

import time

import keras
import pytest

from training.callbacks import LearningRateAndThroughput


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def callback_on_a_model(examples_per_epoch: int) -> LearningRateAndThroughput:
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    callback = LearningRateAndThroughput(examples_per_epoch)
    callback.set_model(model)
    return callback


def test_cpu_percent_counts_training_and_not_validation():
    callback = callback_on_a_model(examples_per_epoch=1000)
    logs = {}
    callback.on_epoch_begin(0)
    busy(0.3)  # training: one thread busy
    callback.on_test_begin()
    time.sleep(0.3)  # validation: idle, and outside the epoch's training time
    callback.on_epoch_end(0, logs)
    assert logs["train_seconds"] == pytest.approx(0.3, abs=0.05)
    assert logs["examples_per_second"] == pytest.approx(1000 / logs["train_seconds"])
    assert 70 <= logs["cpu_percent"] <= 130  # one core's worth, whatever the validation did
    assert logs["learning_rate"] == pytest.approx(0.01)


def test_without_validation_the_whole_epoch_counts():
    callback = callback_on_a_model(examples_per_epoch=10)
    logs = {}
    callback.on_epoch_begin(0)
    time.sleep(0.2)
    callback.on_epoch_end(0, logs)
    assert logs["train_seconds"] == pytest.approx(0.2, abs=0.05)
    assert logs["cpu_percent"] < 30  # asleep
