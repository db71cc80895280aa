"""Callbacks of every run: atomic checkpoints, the history file, learning rate and throughput."""

import time

import keras

from training.run_dir import RunDir


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves model and optimizer state after every epoch as ``checkpoints/epoch-NNNN.keras``.

    The file is written under a temporary name and renamed into place, so the newest complete
    checkpoint is always loadable; ``zoo train --resume`` continues from it.
    """

    def __init__(self, run: RunDir, history: list[dict]):
        super().__init__()
        self.run = run
        self.history = history

    def on_epoch_end(self, epoch, logs=None):
        # 1. The history line goes first: a checkpoint never exists without its epoch's metrics.
        row = {"epoch": epoch, "finished_at": time.time()}
        self.history.append({**row, **{k: float(v) for k, v in (logs or {}).items()}})
        self.run.write_history(self.history)
        # 2. Then model and optimizer state.
        self.run.save_checkpoint(self.model, epoch + 1)


class LearningRateAndThroughput(keras.callbacks.Callback):
    """Adds ``learning_rate``, ``train_seconds`` (the epoch's training, without validation) and
    ``examples_per_second`` to each epoch's logs, so the history, the progress line and
    TensorBoard's scalars all show them."""

    def __init__(self, examples_per_epoch: int):
        super().__init__()
        self.examples_per_epoch = examples_per_epoch
        self.train_seconds = None

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
        self.train_seconds = None

    def on_test_begin(self, logs=None):
        if self.train_seconds is None:  # validation inside fit starts: training time ends here
            self.train_seconds = time.perf_counter() - self.start

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        seconds = self.train_seconds or (time.perf_counter() - self.start)
        logs["train_seconds"] = seconds
        logs["examples_per_second"] = self.examples_per_epoch / max(seconds, 1e-9)
        logs["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )
