"""The keras-io "Simple MNIST convnet" recipe, exactly as published: the reference every training
benchmark is measured against in the same run.

Conv32-Pool-Conv64-Pool-Flatten-Dropout(0.5)-Dense10 softmax, categorical cross-entropy, Adam,
batch 128, 15 epochs, validation_split 0.1, ``model.fit`` on numpy arrays scaled to [0, 1].

Run as its own process (``python -m bench.reference --out result.json``), so the training bench
can time it as a user waits for it, from process start to the final test accuracy.
"""

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np


def build_reference_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


class TestAccuracyClock(keras.callbacks.Callback):
    """Records, after each epoch, the training time so far (the clock stops while the test split
    is evaluated), the test accuracy, the Unix time when that accuracy was known, and the
    process's CPU use over the epoch's training (as the zoo's runs log it)."""

    def __init__(self, x_test, y_test):
        super().__init__()
        self.x_test, self.y_test = x_test, y_test
        self.points: list[dict] = []
        self.train_seconds = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.start[0]
        cpu_percent = 100 * (time.process_time() - self.start[1]) / seconds
        self.train_seconds += seconds
        # Batch by batch, not predict(): on numpy arrays, predict builds a tf.data pipeline whose
        # autotuning at times stalls for seconds as its iterator goes, which would charge the
        # reference for our measurement.
        predictions = np.concatenate(
            [
                self.model.predict_on_batch(self.x_test[start : start + 1024])
                for start in range(0, len(self.x_test), 1024)
            ]
        ).argmax(axis=1)
        accuracy = float((predictions == self.y_test).mean())
        self.points.append(
            {
                "epoch": epoch + 1,
                "seconds": self.train_seconds,
                "test_accuracy": accuracy,
                "finished_at": time.time(),
                "cpu_percent": cpu_percent,
            }
        )


def train_reference(x_train, y_train, x_test, y_test, *, epochs: int = 15, seed: int = 0) -> dict:
    """Trains the keras-io recipe; returns its accuracy-over-time points and examples/s."""
    keras.utils.set_random_seed(seed)
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    model = build_reference_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    clock = TestAccuracyClock(x_test, y_test)
    model.fit(
        x_train,
        keras.utils.to_categorical(y_train, 10),
        batch_size=128,
        epochs=epochs,
        validation_split=0.1,
        callbacks=[clock],
        verbose=0,
    )
    examples = int(len(x_train) * 0.9) * epochs
    return {"points": clock.points, "examples_per_second": examples / clock.train_seconds}


def reference_throughput(x_train, y_train, steps: int = 100) -> float:
    """examples/s of the reference recipe's ``fit`` over ``steps`` batches of 128, after warm-up."""
    x = x_train[: 128 * steps].astype("float32") / 255
    y = keras.utils.to_categorical(y_train[: 128 * steps], 10)
    model = build_reference_model()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x[: 128 * 10], y[: 128 * 10], batch_size=128, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    return len(x) / (time.perf_counter() - start)


def accuracy_points(history: list[dict]) -> list[dict]:
    """A zoo run's history as the same points: cumulative training seconds, test accuracy.

    Keras counts accuracy in float32, where 9,920 of 10,000 reads 0.99199998 and would miss a
    0.992 target; six decimals give the fraction back (test splits hold far fewer than 10^6)."""
    seconds = np.cumsum([row["train_seconds"] for row in history])
    return [
        {
            "epoch": row["epoch"] + 1,
            "seconds": float(s),
            "test_accuracy": round(row["val_accuracy"], 6),
            "finished_at": row["finished_at"],
            "cpu_percent": row["cpu_percent"],
        }
        for row, s in zip(history, seconds, strict=True)
    ]


def main(argv: list[str] | None = None) -> None:
    """Trains the recipe on a dataset's arrays and writes its points and examples/s as JSON."""
    from training import datasets
    from training.runtime import cpu_kernels

    parser = argparse.ArgumentParser(description="The keras-io MNIST convnet recipe.")
    parser.add_argument("--dataset", choices=("mnist", "fashion_mnist"), default="mnist")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--data-dir", help="folder with the dataset's .npz (default: vendored)")
    parser.add_argument("--limit", type=int, help="only the first LIMIT images of each split")
    parser.add_argument("--out", required=True, help="where the result JSON goes")
    args = parser.parse_args(argv)
    splits = [
        datasets.load_arrays(args.dataset, split, data_dir=args.data_dir, limit=args.limit)
        for split in ("train", "test")
    ]
    (x_train, y_train), (x_test, y_test) = splits
    result = train_reference(x_train, y_train, x_test, y_test, epochs=args.epochs)
    Path(args.out).write_text(json.dumps({**result, "cpu_kernels": cpu_kernels()}))


if __name__ == "__main__":
    main()
