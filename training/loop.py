"""A training run, top to bottom: data, model, compile, fit, final evaluation.

``train(config)`` starts a run; ``train(config, resume=run)`` continues one from its newest
checkpoint. Single-process runs (and ``mirrored``) use Keras ``fit``; ``multiworker`` uses the
custom step of ``training.distributed`` because ``fit`` fails under MultiWorkerMirroredStrategy
with Keras 3.15 / TF 2.21.
"""

import math
import sys
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

import models
from training import datasets, distributed, preprocess, runtime
from training.calibration import calibrate, probabilities, scale
from training.callbacks import AtomicCheckpoint, EpochLine, LearningRateAndThroughput
from training.config import TrainConfig
from training.datasets import pipeline
from training.metrics import keras_metrics, multiclass_report, multilabel_report
from training.precision_probe import PrecisionCache, PrecisionProbe, probe_setting
from training.recipe import build_model, build_optimizer, label_format_for
from training.run_dir import RunDir, RunDirError, write_json_atomic
from training.tensorboard import (
    TensorBoardExtras,
    write_final_images,
    write_final_metrics,
    write_graph,
    write_hparams,
)

EVAL_BATCH_SIZE = 512
TENSORBOARD_EVAL_EXAMPLES = 512
ADAPT_IMAGES = 2000  # training images the adapting layers (patch whitening) are fitted to


@dataclass
class Data:
    """The arrays of the three splits and the pipelines built from them. The validation split
    (``validation_split`` of the training examples, held out from its end) may be empty."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train: tf.data.Dataset
    validation: tf.data.Dataset  # the validation split, or the test split when there is none
    steps_per_epoch: int

    @property
    def has_validation_split(self) -> bool:
        return len(self.x_val) > 0

    @property
    def monitored(self) -> tuple[np.ndarray, np.ndarray]:
        """The images and labels Keras validates on each epoch."""
        if self.has_validation_split:
            return self.x_val, self.y_val
        return self.x_test, self.y_test


def one_hot_classes(info: datasets.DatasetInfo, label_format: str) -> int | None:
    """The width the pipelines turn integer labels into one-hot rows of, or None to keep them."""
    return info.num_classes if label_format == "one_hot" else None


def train_pipeline(config: TrainConfig, info: datasets.DatasetInfo, label_format: str,
                   images: np.ndarray, labels: np.ndarray) -> tf.data.Dataset:  # fmt: skip
    """Shuffled, augmented training batches; multi-worker runs drop the last, partial batch so
    that every worker takes the same number of steps."""
    return pipeline.make_pipeline(
        images, labels, batch_size=config.batch_size, shuffle=True, seed=config.seed,
        augmentation=config.augmentation, max_shift=config.max_shift,
        drop_remainder=config.strategy == "multiworker",
        one_hot_classes=one_hot_classes(info, label_format),
    )  # fmt: skip


def load_data(config: TrainConfig, info: datasets.DatasetInfo, label_format: str) -> Data:
    """The three splits and their pipelines; multi-worker runs count whole batches only (see
    ``train_pipeline``)."""

    def arrays(split: str, limit: int):
        return datasets.load_arrays(config.dataset, split, data_dir=config.data_dir or None,
                                    limit=limit or None, seed=config.seed,
                                    image_size=config.image_hw)  # fmt: skip

    (x_train, y_train), (x_test, y_test) = (
        arrays("train", config.train_limit),
        arrays("test", config.test_limit),
    )
    if "validation" in info.split_sizes:  # an image folder's own validation/
        x_val, y_val = arrays("validation", 0)
    else:
        held_out = math.ceil(len(x_train) * config.validation_split)
        keep = len(x_train) - held_out
        (x_train, x_val), (y_train, y_val) = (
            (x_train[:keep], x_train[keep:]),
            (y_train[:keep], y_train[keep:]),
        )
    multiworker = config.strategy == "multiworker"
    train = train_pipeline(config, info, label_format, x_train, y_train)
    x_monitored, y_monitored = (x_val, y_val) if len(x_val) else (x_test, y_test)
    validation = pipeline.make_pipeline(
        x_monitored,
        y_monitored,
        batch_size=EVAL_BATCH_SIZE,
        one_hot_classes=one_hot_classes(info, label_format),
    )
    steps = (
        len(x_train) // config.batch_size
        if multiworker
        else math.ceil(len(x_train) / config.batch_size)
    )
    return Data(x_train, y_train, x_val, y_val, x_test, y_test, train, validation, steps)


def load_newest_checkpoint(run: RunDir) -> tuple[int, keras.Model] | None:
    """``(epochs_done, model)`` from the newest checkpoint that loads, or None without any.

    Checkpoints are written atomically, but a copy of the run cut short, a full disk or a damaged
    file can still leave one unreadable: it is skipped, with a warning, for the one before it.
    When none loads, RunDirError names each and why, rather than training from scratch.
    """
    failures = []
    for epochs_done, path in run.checkpoints_newest_first():
        try:
            return epochs_done, run.load_model(path)
        except RunDirError as error:
            failures.append(str(error))
            print(f"Warning: {error}; trying an older checkpoint.", file=sys.stderr, flush=True)
    if failures:
        raise RunDirError(
            f"No checkpoint of {str(run.path)!r} loads ({'; '.join(failures)}). Start a new run "
            f"from its config: zoo train --config {run.config_path}"
        )
    return None


def open_run(config: TrainConfig, strategy, resume: RunDir | None):
    """A new run directory, or the resumed one with its newest loadable checkpoint; returns
    ``(run, checkpoint, history)``, ``checkpoint`` being ``(epochs_done, model)`` or None."""
    run = resume or distributed.create_run_dir(config, strategy)
    if resume is None:
        config.save(run.config_path)
        run.write_state(status="running", epochs_done=0, planned_epochs=config.epochs, resumes=[])
    checkpoint = load_newest_checkpoint(run)
    initial_epoch = checkpoint[0] if checkpoint else 0
    if resume is not None:
        state = run.read_state()
        resumes = [*state.get("resumes", []), initial_epoch]
        run.write_state(**{**state, "status": "running", "resumes": resumes})
    return run, checkpoint, run.read_history(initial_epoch)


def positive_weights(setting: str, targets: np.ndarray) -> list[float] | None:
    """The multilabel loss' per-class positive weights: None, one number for every class, or
    (``auto``) each class's negatives / positives in the training labels, within [1, 100]."""
    if setting == "none":
        return None
    if setting != "auto":
        return [float(setting)] * targets.shape[1]
    positives = targets.sum(axis=0)
    ratio = (len(targets) - positives) / np.maximum(positives, 1)
    return np.clip(ratio, 1.0, 100.0).round(4).tolist()


def adapt_layers(model: keras.Model, images: np.ndarray) -> None:
    """Fits the layers that learn from the data before training (those with ``adapt``: the
    patch-whitening stem) to the first ``ADAPT_IMAGES`` training images."""
    for layer in model.layers:
        if callable(getattr(layer, "adapt", None)):
            sample = preprocess.scale_pixels(images[:ADAPT_IMAGES])
            if layer.input is not model.inputs[0]:
                sample = keras.Model(model.inputs, layer.input)(sample)
            layer.adapt(keras.ops.convert_to_numpy(sample))


def compiled_model(config, info, head, label_format, total_steps: int, data: Data) -> keras.Model:
    """The model with the head's loss, the task's metrics and the optimizer with its schedule."""
    model = build_model(config, info)
    adapt_layers(model, data.x_train)
    pos_weight = (
        positive_weights(config.pos_weight, data.y_train)
        if head.task == datasets.MULTILABEL
        else None
    )
    model.compile(
        optimizer=build_optimizer(config, total_steps),
        loss=head.loss(label_smoothing=config.label_smoothing, focal=config.focal,
                       focal_gamma=config.focal_gamma, pos_weight=pos_weight),
        metrics=keras_metrics(info.task, label_format, info.num_classes,
                              from_logits=head.from_logits, threshold=config.threshold),
        jit_compile=config.jit_compile,
        steps_per_execution=config.steps_per_execution,
    )  # fmt: skip
    return model


def fit_callbacks(config, run: RunDir, history: list[dict], data: Data, head, info,
                  verbose: int) -> list:  # fmt: skip
    """What runs around each epoch; ``verbose`` 2 adds the one-line epoch report."""
    shown = slice(0, TENSORBOARD_EVAL_EXAMPLES)
    images, labels = data.monitored
    line = [EpochLine(config.epochs)] if verbose == 2 else []
    return [
        LearningRateAndThroughput(len(data.x_train)),  # first: the others log what it adds
        AtomicCheckpoint(run, history),
        # The graph is tensorboard.write_graph's: Keras 3 writes none for these models.
        keras.callbacks.TensorBoard(
            run.logs, histogram_freq=config.histogram_freq, write_graph=False
        ),
        TensorBoardExtras(run.logs, images[shown], labels[shown], head, info.class_names,
                          info.task, config.threshold, config.sample_images),
        *line,  # last: it prints what the others added
    ]  # fmt: skip


def predict_outputs(model, head, images: np.ndarray, flip: bool = False) -> dict[str, np.ndarray]:
    """``{"probabilities", "logits"}`` of ``images`` (uint8), float32 numpy arrays (``flip``:
    averaged with their mirror images' logits)."""
    outputs = head.inference_outputs(model, flip_average=flip).predict(
        pipeline.image_batches(images, EVAL_BATCH_SIZE), verbose=0
    )
    return {name: np.asarray(value, np.float32) for name, value in outputs.items()}


def final_report(outputs: dict, head, info, config, data: Data) -> dict:
    """Test metrics of the final model: accuracy and confusion matrix, or F1 and mAP."""
    if info.task == datasets.MULTICLASS:
        report = multiclass_report(outputs["probabilities"], np.asarray(data.y_test))
    else:
        report = multilabel_report(
            outputs["probabilities"], data.y_test, config.threshold, outputs["logits"]
        )
    return {**report, "examples": len(data.y_test)}


def calibrated(outputs: dict, temperature, task: str) -> dict[str, np.ndarray]:
    """``outputs`` with logits divided by the temperature and probabilities recomputed: what
    the export serves, so that the reported decisions are the served ones."""
    logits = scale(outputs["logits"], temperature)
    return {"logits": logits, "probabilities": probabilities(logits, task).astype(np.float32)}


def calibration_report(model, head, info, data: Data, test_logits: np.ndarray, flip: bool) -> dict:
    """Temperature scaling fitted on the validation split, reported on validation and test."""

    def targets(labels):  # a sigmoid head on a multiclass dataset calibrates one-vs-rest
        if head.task == info.task:
            return np.asarray(labels)
        return np.eye(info.num_classes)[np.asarray(labels)]

    validation_logits = predict_outputs(model, head, data.x_val, flip)["logits"]
    return calibrate(
        (validation_logits, targets(data.y_val)), (test_logits, targets(data.y_test)), head.task
    )


def evaluate(model, head, info, config: TrainConfig, data: Data) -> tuple[dict, dict | None, dict]:
    """``(report, calibration, outputs)`` of a trained model: the temperature fitted on the
    validation split (None without one, or with ``calibrate`` off), the test metrics of the
    calibrated outputs (the ones the export serves) and those outputs."""
    outputs = predict_outputs(model, head, data.x_test, config.test_time_flip)
    calibration = None
    if config.calibrate and data.has_validation_split:
        calibration = calibration_report(
            model, head, info, data, outputs["logits"], config.test_time_flip
        )
        outputs = calibrated(outputs, calibration["temperature"], head.task)
    return final_report(outputs, head, info, config, data), calibration, outputs


def train(config: TrainConfig, *, resume: RunDir | None = None, verbose: int = 2) -> RunDir:
    """Runs (or resumes) training and writes everything into the run directory.

    Args:
        config: the validated config (for a resume, the one saved in the run).
        resume: the run to continue from its newest checkpoint. Defaults to None (a new run).
        verbose: 0 silent, 1 progress bar, 2 one line per epoch.

    Returns:
        The run directory.
    """
    # 1. The strategy comes first: MultiWorkerMirroredStrategy must exist before any TF op runs.
    strategy = distributed.build_strategy(config.strategy)
    runtime.seed_everything(config.seed, config.deterministic)
    info = datasets.get_info(config.dataset, image_size=config.image_hw)
    head = models.get_head(config.head)
    label_format = label_format_for(info.task, head, config)

    # 2. Data and model before the run directory: a dataset that cannot load or model options
    #    that do not fit leave nothing behind. The model lives in the strategy's scope; a
    #    checkpoint, when there is one, replaces it with its weights and optimizer state.
    data = load_data(config, info, label_format)
    probe = PrecisionProbe(
        lambda: compiled_model(config, info, head, label_format, 100, data),
        lambda: train_pipeline(config, info, label_format, data.x_train, data.y_train),
        2 * config.steps_per_execution, config.batch_size,
        probe_setting(config), PrecisionCache.default(),
    )  # fmt: skip
    policy, reason = runtime.resolve_precision(config.mixed_precision, probe)
    if probe.remembered:
        reason += f"; remembered from an earlier run in {probe.cache.path}"
    # The probe's models drew their initial weights from the run's random streams: seeding again
    # starts a run that measured from the weights of one whose speeds were remembered.
    runtime.seed_everything(config.seed, config.deterministic)
    kernels = runtime.cpu_kernels()
    if verbose:
        print(f"Precision: {policy} ({reason}); CPU kernels: {kernels}", flush=True)
    with runtime.dtype_policy(policy), strategy.scope():
        total_steps = data.steps_per_epoch * config.epochs

        def build() -> keras.Model:
            return compiled_model(config, info, head, label_format, total_steps, data)

        model = build() if resume is None else None  # a resumed run's config was checked
        run, checkpoint, history = open_run(config, strategy, resume)
        initial_epoch = checkpoint[0] if checkpoint else 0
        if checkpoint:
            model = checkpoint[1]
        elif resume is None:
            write_hparams(run.logs, config.hyperparameters(), run.path.name)
            write_graph(run.logs, model)
        else:  # resumed before its first checkpoint
            model = build()
        model.jit_compile = config.jit_compile

        # 3. Train: Keras fit, or the custom distributed step for multi-worker runs.
        start = time.perf_counter()
        if config.strategy == "multiworker":
            distributed.fit_multiworker(
                strategy, model, data.train, run=run, history=history, epochs=config.epochs,
                initial_epoch=initial_epoch, steps_per_epoch=data.steps_per_epoch,
                batch_size=config.batch_size, verbose=verbose,
            )  # fmt: skip
        elif initial_epoch < config.epochs:
            # Finite datasets, each epoch one pass over them: with repeated ones and steps given,
            # Keras runs whole executions of steps_per_execution steps, so epochs and validations
            # would overrun their pass (472 of 469 batches; the first test batch counted twice).
            model.fit(
                data.train, validation_data=data.validation, epochs=config.epochs,
                initial_epoch=initial_epoch, shuffle=False,  # the pipeline shuffles
                callbacks=fit_callbacks(config, run, history, data, head, info, verbose),
                verbose=1 if verbose == 1 else 0,
            )  # fmt: skip
        seconds = time.perf_counter() - start

    # 4. Final evaluation on the test split; calibration on the validation split; metrics.
    report, calibration, outputs = evaluate(model, head, info, config, data)
    run.save_final_model(model)
    if distributed.is_chief(strategy):
        write_final_metrics(run.logs, report, step=config.epochs, calibration=calibration)
        write_final_images(run.logs, data.x_test, data.y_test, outputs["probabilities"], info,
                           config.threshold, step=config.epochs)  # fmt: skip
    metrics = {"dataset": info.to_json(), "model": config.model, "head": config.head,
               "epochs": config.epochs, "test": report, "history": history,
               "train_seconds_this_session": seconds,
               "precision": {"policy": policy, "reason": reason},
               "cpu_kernels": kernels}  # fmt: skip
    if calibration is not None:
        metrics["calibration"] = calibration
    write_json_atomic(run.metrics_path, metrics)
    run.write_state(**{**run.read_state(), "status": "completed", "epochs_done": config.epochs})
    return run
