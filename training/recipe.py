"""What a config builds: its model, the optimizer with its schedule, and the labels' format.

No TensorFlow here (nor in ``models``, ``training.config`` and ``training.datasets``), so that the
same recipe trains on any Keras backend: ``training.loop`` runs it on TensorFlow, and
``bench.accelerator`` on JAX where an accelerator has no TensorFlow.
"""

import keras

import models
from training import datasets
from training.config import ConfigError, TrainConfig
from training.schedules import build_schedule


def label_format_for(task: str, head: models.Head, config: TrainConfig) -> str:
    """Sparse ids, one-hot or multi-hot rows: what the loss needs for this dataset and head."""
    if task == datasets.MULTILABEL:
        return "multi_hot"
    if head.task == datasets.MULTILABEL:  # a sigmoid head on a multiclass task, asked for
        return "one_hot"
    return head.label_format(label_smoothing=config.label_smoothing, focal=config.focal)


def build_optimizer(config: TrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    lr = build_schedule(config.schedule, config.lr, total_steps, config.warmup_fraction)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(
            lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay or None
        )
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(lr)


def build_model(config: TrainConfig, info: datasets.DatasetInfo) -> keras.Model:
    """The configured model; ConfigError when its ``model_options`` do not fit the builder."""
    try:
        return models.create_model(
            config.model,
            input_shape=info.input_shape,
            num_classes=info.num_classes,
            head=config.head,
            task=info.task,
            allow_sigmoid_for_multiclass=config.allow_sigmoid_for_multiclass,
            **config.model_options,
        )
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"model_options {config.model_options!r} do not fit model {config.model!r}: {error}"
        ) from None
