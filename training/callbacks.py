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
    """Adds ``learning_rate``, ``train_seconds`` (the epoch's training, without validation),
    ``examples_per_second`` and ``cpu_percent`` to each epoch's logs, so the history, the progress
    line and TensorBoard's scalars all show them.

    ``cpu_percent`` is the process's CPU time (every thread: TensorFlow's, the input pipeline's)
    over the same training seconds: 200 % means two cores busy all along, and a training that
    stays far below the cores it has is waiting on something.
    """

    def __init__(self, examples_per_epoch: int):
        super().__init__()
        self.examples_per_epoch = examples_per_epoch
        self.trained = None

    def on_epoch_begin(self, epoch, logs=None):
        self.start = (time.perf_counter(), time.process_time())
        self.trained = None

    def on_test_begin(self, logs=None):
        if self.trained is None:  # validation inside fit starts: training time ends here
            self.trained = self._since_start()

    def _since_start(self) -> tuple[float, float]:
        """Wall and CPU seconds since the epoch began."""
        return time.perf_counter() - self.start[0], time.process_time() - self.start[1]

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        seconds, cpu_seconds = self.trained or self._since_start()
        seconds = max(seconds, 1e-9)
        logs["train_seconds"] = seconds
        logs["examples_per_second"] = self.examples_per_epoch / seconds
        logs["cpu_percent"] = 100 * cpu_seconds / seconds
        logs["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )


class EpochLine(keras.callbacks.Callback):
    """One line per finished epoch, for logs and pipes (a terminal gets Keras' progress bar):
    the epoch, its seconds, each metric, then throughput, CPU and learning rate."""

    ADDED = ("train_seconds", "examples_per_second", "cpu_percent", "learning_rate")

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [f"Epoch {epoch + 1}/{self.epochs}", f"{time.perf_counter() - self.start:.0f}s"]
        parts += [f"{name} {value:.4f}" for name, value in logs.items() if name not in self.ADDED]
        if "examples_per_second" in logs:
            parts += [f"{logs['examples_per_second']:,.0f} examples/s",
                      f"CPU {logs['cpu_percent']:.0f}%", f"lr {logs['learning_rate']:.3g}"]  # fmt: skip
        print(" - ".join(parts), flush=True)
