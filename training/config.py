"""The training configuration: one dataclass, read from YAML, overridden by flags, validated once.

Every field is a YAML key and a flag (``batch_size`` <-> ``--batch-size``). The resolved config is
saved as ``config.yaml`` in the run directory, so ``--resume`` and ``zoo export`` read exactly what
the run used.
"""

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.errors import ZooError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "onecycle", "cosine")
STRATEGIES = ("none", "mirrored", "multiworker")
MIXED_PRECISION = ("auto", "off", "bf16", "fp16")


class ConfigError(ZooError):
    """A config file or flag names something that does not exist or does not fit."""


@dataclass
class TrainConfig:
    """Everything a training run needs. Defaults train ``mnist_cnn`` on MNIST.

    Args:
        name: run name; runs go to ``runs_root/name/TIMESTAMP/``. Defaults to
            ``DATASET-MODEL-HEAD``.
        model: a registered model (``zoo models``).
        dataset: a dataset (``zoo datasets``).
        head: ``softmax``, ``logits``, ``sigmoid`` or ``sigmoid_logits``; must fit the dataset.
        allow_sigmoid_for_multiclass: accept a sigmoid head on a multiclass dataset.
        model_options: hyperparameters passed to the model's builder.
        epochs: planned epochs.
        batch_size: global batch size (split across replicas).
        lr: peak learning rate.
        optimizer: ``adam``, ``adamw`` or ``sgd`` (Nesterov momentum 0.9).
        weight_decay: decoupled weight decay (adamw, sgd).
        schedule: ``constant``, ``onecycle`` (linear warm-up, cosine decay) or ``cosine``.
        warmup_fraction: fraction of all steps spent warming up (onecycle, cosine).
        label_smoothing: target smoothing (docs/losses.md section 5).
        focal: use the focal variant of the head's loss.
        focal_gamma: focal loss' focusing parameter, at least 0 (0: plain cross-entropy).
        pos_weight: multilabel: weight of each class's positives in the loss: ``none``, ``auto``
            (negatives / positives of each class in the training labels, capped at 100) or a
            number for every class.
        threshold: probability at or above which a multilabel class counts as present, in (0, 1).
        augmentation: ``none``, ``shift`` (digits) or ``flip_shift`` (natural images).
        validation_split: fraction of the training examples held out (from the end) as the
            validation split, in [0, 0.5); Keras validates on it each epoch (on the test split
            when 0) and the temperature is fitted on it.
        calibrate: after training, fit a temperature on the validation split (docs/losses.md
            section 11); the export then serves calibrated probabilities.
        seed: seeds weights, shuffling and augmentation; with ``deterministic`` a CPU rerun
            reproduces its metrics.
        deterministic: enable TensorFlow's deterministic ops.
        mixed_precision: ``auto`` (bf16 on CPUs with AMX, fp16 on GPUs), ``off``, ``bf16``, ``fp16``.
        jit_compile: XLA-compile the train step (helps on GPUs, slows CPUs down 8x).
        strategy: ``none``, ``mirrored`` (all local GPUs) or ``multiworker`` (from TF_CONFIG).
        data_dir: folder with local dataset copies (default: ``$ZOO_DATA_DIR``).
        train_limit: use only the first N training examples (0: all).
        test_limit: use only the first N test examples (0: all).
        runs_root: folder that holds the runs.
        histogram_freq: epochs between weight histograms (0: none).
        sample_images: images logged to TensorBoard with prediction and truth.
    """

    name: str = ""
    model: str = "mnist_cnn"
    dataset: str = "mnist"
    head: str = "softmax"
    allow_sigmoid_for_multiclass: bool = False
    model_options: dict = field(default_factory=dict)
    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_fraction: float = 0.2
    label_smoothing: float = 0.0
    focal: bool = False
    focal_gamma: float = 2.0
    pos_weight: str = "none"
    threshold: float = 0.5
    augmentation: str = "none"
    validation_split: float = 0.0
    calibrate: bool = True
    seed: int = 0
    deterministic: bool = True
    mixed_precision: str = "off"
    jit_compile: bool = False
    strategy: str = "none"
    data_dir: str = ""
    train_limit: int = 0
    test_limit: int = 0
    runs_root: str = "runs"
    histogram_freq: int = 1
    sample_images: int = 16

    @property
    def run_name(self) -> str:
        return self.name or f"{self.dataset}-{self.model}-{self.head}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def field_type(name: str) -> type:
    """The plain Python type of a config field (``int``, ``float``, ``bool``, ``str``, ``dict``)."""
    return typing.get_type_hints(TrainConfig)[name]


def _coerce(name: str, value):
    expected = field_type(name)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is str and value is None:
        return ""
    if expected is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # YAML reads `pos_weight: 3` as a number
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(
            f"Config key {name!r} must be {expected.__name__}. Received: {name}={value!r}"
        )
    return value


def _choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ConfigError(f"Unknown {name} {value!r}. Valid choices: {', '.join(choices)}.")


def validate(config: TrainConfig) -> TrainConfig:
    """Checks names against the registries and value ranges; ConfigError on the first problem."""
    import models
    from training import datasets

    _choice("model", config.model, models.list_models())
    _choice("dataset", config.dataset, datasets.list_datasets())
    _choice("head", config.head, list(models.HEADS))
    _choice("optimizer", config.optimizer, OPTIMIZERS)
    _choice("schedule", config.schedule, SCHEDULES)
    _choice("strategy", config.strategy, STRATEGIES)
    _choice("mixed_precision", config.mixed_precision, MIXED_PRECISION)
    _choice("augmentation", config.augmentation, datasets.AUGMENTATIONS)
    task = datasets.get_info(config.dataset).task
    try:
        models.check_head_for_task(
            config.head, task, allow_sigmoid_for_multiclass=config.allow_sigmoid_for_multiclass
        )
        models.get_head(config.head).loss(label_smoothing=config.label_smoothing)
    except ValueError as error:
        raise ConfigError(f"{error} (dataset {config.dataset!r})") from None
    for name in ("epochs", "batch_size"):
        if getattr(config, name) < 1:
            raise ConfigError(
                f"{name} must be at least 1. Received: {name}={getattr(config, name)}"
            )
    if config.lr <= 0:
        raise ConfigError(f"lr must be positive. Received: lr={config.lr}")
    if not config.focal_gamma >= 0.0:
        raise ConfigError(
            f"focal_gamma must be at least 0 (0 is the plain cross-entropy). "
            f"Received: focal_gamma={config.focal_gamma}"
        )
    if not 0.0 < config.threshold < 1.0:
        raise ConfigError(
            f"threshold must be strictly between 0 and 1. Received: threshold={config.threshold}"
        )
    if config.pos_weight not in ("none", "auto") and not _positive_number(config.pos_weight):
        raise ConfigError(
            "pos_weight must be 'none', 'auto' or a positive number. "
            f"Received: pos_weight={config.pos_weight!r}"
        )
    if config.pos_weight != "none" and task != datasets.MULTILABEL:
        raise ConfigError(
            f"pos_weight applies to multilabel datasets; {config.dataset!r} is {task}. "
            f"Received: pos_weight={config.pos_weight!r}"
        )
    if not 0.0 <= config.validation_split < 0.5:
        raise ConfigError(
            "validation_split must be in [0, 0.5). "
            f"Received: validation_split={config.validation_split}"
        )
    if not 0.0 <= config.warmup_fraction < 1.0:
        raise ConfigError(
            f"warmup_fraction must be in [0, 1). Received: warmup_fraction={config.warmup_fraction}"
        )
    return config


def _positive_number(text: str) -> bool:
    try:
        return float(text) > 0 and math.isfinite(float(text))
    except ValueError:
        return False


def load_yaml(path: str | Path) -> dict:
    """The mapping in a YAML config file; ConfigError if it is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {str(path)!r} does not exist.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"Config file {str(path)!r} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {str(path)!r} must hold a mapping of keys to values.")
    return data


def build_config(base: dict | None = None, overrides: dict | None = None) -> TrainConfig:
    """A validated config from a YAML mapping and flag overrides (``None`` values are ignored)."""
    values = dict(base or {})
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"Unknown config key {unknown[0]!r}. Valid keys: {', '.join(FIELDS)}.")
    return validate(TrainConfig(**{k: _coerce(k, v) for k, v in values.items()}))
