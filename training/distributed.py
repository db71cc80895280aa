"""tf.distribute: building the strategy, and the custom training step for multi-worker runs.

With Keras 3.15 and TF 2.21, ``model.fit`` under MultiWorkerMirroredStrategy fails ("unsupported
type PerReplica"), so multi-worker runs train with :func:`fit_multiworker`: a ``tf.function`` step
run on every replica through ``strategy.run``, gradients all-reduced by the optimizer, identical
weights on every worker. On a cluster each worker runs the same ``zoo train`` command with its own
``TF_CONFIG`` (a Kubeflow TFJob sets it); see docs/training.md.
"""

import json
import os
import time

import keras
import tensorflow as tf

from training.config import ConfigError, TrainConfig
from training.run_dir import RunDir


def build_strategy(name: str) -> tf.distribute.Strategy:
    """``none`` -> the default strategy, ``mirrored`` -> all local GPUs (or the CPU),
    ``multiworker`` -> MultiWorkerMirroredStrategy over the cluster in ``TF_CONFIG``."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError(
                "strategy 'multiworker' needs TF_CONFIG, e.g. "
                '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}.'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def _task() -> tuple[str, int]:
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return task.get("type", "worker"), int(task.get("index", 0))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for single-process runs and for the chief (or worker 0) of a multi-worker run."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, index = _task()
    return task_type == "chief" or (task_type == "worker" and index == 0)


def create_run_dir(config: TrainConfig, strategy: tf.distribute.Strategy) -> RunDir:
    """The chief writes the run; other workers write theirs beside it, named ``NAME-worker{i}``."""
    if is_chief(strategy):
        return RunDir.create(config.runs_root, config.run_name)
    task_type, index = _task()
    return RunDir.create(config.runs_root, f"{config.run_name}-{task_type}{index}")


def fit_multiworker(
    strategy: tf.distribute.Strategy,
    model: keras.Model,
    dataset: tf.data.Dataset,
    *,
    run: RunDir,
    history: list[dict],
    epochs: int,
    initial_epoch: int,
    steps_per_epoch: int,
    batch_size: int,
    verbose: int,
) -> None:
    """Trains ``model`` (compiled inside ``strategy.scope()``) with a custom distributed step.

    Each replica computes its examples' losses; dividing their sum by the *global* batch size
    (``compute_average_loss``) makes the all-reduced gradient equal the single-machine gradient.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    distributed = strategy.experimental_distribute_dataset(dataset.with_options(options))
    loss_fn = model.loss
    optimizer = model.optimizer

    def replica_step(images, labels):
        with tf.GradientTape() as tape:
            outputs = model(images, training=True)
            per_example = loss_fn.call(labels, tf.cast(outputs, tf.float32))
            loss = tf.nn.compute_average_loss(per_example)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss

    @tf.function
    def train_step(batch):
        per_replica = strategy.run(replica_step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    writer = tf.summary.create_file_writer(str(run.logs / "train"))
    for epoch in range(initial_epoch, epochs):
        iterator = iter(distributed)  # one pass over the (reshuffled) data per epoch
        start = time.perf_counter()
        total = 0.0
        for _ in range(steps_per_epoch):
            total += float(train_step(next(iterator)))
        seconds = time.perf_counter() - start
        row = {
            "epoch": epoch,
            "loss": total / steps_per_epoch,
            "examples_per_second": steps_per_epoch * batch_size / seconds,
        }
        history.append(row)
        run.write_history(history)
        with writer.as_default(step=epoch):
            tf.summary.scalar("epoch_loss", row["loss"])
            tf.summary.scalar("epoch_examples_per_second", row["examples_per_second"])
        if verbose:
            print(
                f"Epoch {epoch + 1}/{epochs} - loss: {row['loss']:.4f} - {seconds:.1f}s", flush=True
            )
        # Every worker saves, each into its own run directory: reading mirrored variables for the
        # save is a collective step that all workers must take together.
        run.save_checkpoint(model, epoch + 1)
