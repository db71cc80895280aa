"""The classic Keras CIFAR-10 ResNet-20 v1 example recipe: the reference the CIFAR-10 benchmark
measures the zoo's quick recipe against, in the same run, for the same wall-clock budget.

ResNet v1 with depth 20 (three stages of three basic blocks, 16/32/64 filters, He-normal
initialisation, L2 1e-4), inputs scaled to [0, 1] with the training set's per-pixel mean
subtracted, Adam at 1e-3 with the example's steps (x0.1 after epoch 80, x0.01 after 120, x0.001
after 160, x0.0005 after 180) and ReduceLROnPlateau (factor sqrt(0.1), patience 5), batches of 32,
random shifts of up to 10 % (nearest fill) and horizontal flips, the test split as validation data.

Run as its own process (``python -m bench.reference_cifar --seconds 900 --out result.json``): it
trains until ``--seconds`` have passed since the process started, stopping mid-epoch if need be,
and records the test accuracy after each epoch and at the stop.
"""

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np

STARTED = time.time()
L2 = keras.regularizers.L2(1e-4)


def _conv(x, filters: int, strides: int = 1, activation: bool = True, kernel: int = 3,
          batch_norm: bool = True):  # fmt: skip
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same",
                            kernel_initializer="he_normal", kernel_regularizer=L2)(x)  # fmt: skip
    x = keras.layers.BatchNormalization()(x) if batch_norm else x
    return keras.layers.Activation("relu")(x) if activation else x


def build_reference_model(input_shape=(32, 32, 3), num_classes: int = 10) -> keras.Model:
    """ResNet-20 v1 as the Keras example builds it (``resnet_v1(depth=20)``)."""
    inputs = keras.Input(input_shape)
    x = _conv(inputs, 16)
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            strides = 2 if stage > 0 and block == 0 else 1
            y = _conv(x, filters, strides)
            y = _conv(y, filters, activation=False)
            if strides == 2:
                x = _conv(x, filters, strides, activation=False, kernel=1, batch_norm=False)
            x = keras.layers.Activation("relu")(keras.layers.add([x, y]))
    x = keras.layers.AveragePooling2D(pool_size=8)(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax",
                                 kernel_initializer="he_normal")(x)  # fmt: skip
    return keras.Model(inputs, outputs)


def learning_rate(epoch: int) -> float:
    """The example's schedule by epoch."""
    rate = 1e-3
    for after, factor in ((180, 0.5e-3), (160, 1e-3), (120, 1e-2), (80, 1e-1)):
        if epoch > after:
            return rate * factor
    return rate


class Budget(keras.callbacks.Callback):
    """Stops training once ``seconds`` have passed since the process started (mid-epoch: Keras
    then ends the epoch there, validation included) and records the test accuracy at each epoch's
    end, with the epochs done as a fraction."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.points: list[dict] = []
        self.done = 0.0

    def on_train_batch_end(self, batch, logs=None):
        self.done = len(self.points) + (batch + 1) / self.params["steps"]
        if time.time() - STARTED >= self.seconds:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.points.append({"epoch": round(self.done, 3), "finished_at": time.time(),
                            "test_accuracy": round(float(logs["val_accuracy"]), 6)})  # fmt: skip


def augmentation(seed: int) -> keras.Sequential:
    """Random shifts of up to 10 % with nearest fill and horizontal flips, per image."""
    return keras.Sequential([
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed),
        keras.layers.RandomFlip("horizontal", seed=seed),
    ])  # fmt: skip


def train_reference(x_train, y_train, x_test, y_test, *, seconds: float, seed: int = 0) -> dict:
    """Trains the recipe until ``seconds`` from process start; returns its accuracy points."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    mean = (x_train.astype("float32") / 255).mean(axis=0)
    x_test = x_test.astype("float32") / 255 - mean
    augment = augmentation(seed)
    train = (
        tf.data.Dataset.from_tensor_slices((x_train, keras.utils.to_categorical(y_train, 10)))
        .shuffle(len(x_train), seed=seed)
        .batch(32)
        .map(lambda x, y: (augment(tf.cast(x, tf.float32) / 255, training=True) - mean, y))
        .prefetch(4)
    )
    model = build_reference_model()
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(1e-3),
                  metrics=["accuracy"])  # fmt: skip
    budget = Budget(seconds)
    callbacks = [
        keras.callbacks.LearningRateScheduler(learning_rate),
        keras.callbacks.ReduceLROnPlateau(factor=np.sqrt(0.1), patience=5, min_lr=0.5e-6),
        budget,
    ]
    model.fit(train, epochs=200, validation_data=(x_test, keras.utils.to_categorical(y_test, 10)),
              callbacks=callbacks, verbose=0)  # fmt: skip
    return {"points": budget.points, "seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    """Trains the recipe on CIFAR-10 from ``--data-dir`` and writes its points as JSON."""
    from training import datasets
    from training.runtime import cpu_kernels

    parser = argparse.ArgumentParser(description="The Keras CIFAR-10 ResNet-20 v1 recipe.")
    parser.add_argument("--seconds", type=float, default=900, help="budget from process start")
    parser.add_argument("--data-dir", required=True, help="folder holding CIFAR-10")
    parser.add_argument("--limit", type=int, help="only the first LIMIT images of each split")
    parser.add_argument("--out", required=True, help="where the result JSON goes")
    args = parser.parse_args(argv)
    (x_train, y_train), (x_test, y_test) = (
        datasets.load_arrays("cifar10", split, data_dir=args.data_dir, limit=args.limit)
        for split in ("train", "test")
    )
    result = train_reference(x_train, y_train, x_test, y_test, seconds=args.seconds)
    Path(args.out).write_text(json.dumps({**result, "cpu_kernels": cpu_kernels()}))


if __name__ == "__main__":
    main()
