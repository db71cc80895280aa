"""The training configuration: one pydantic model, read from YAML, overridden by flags, validated
once.

Every field is a YAML key and a flag (``batch_size`` <-> ``--batch-size``), declared once here with
its type, bounds and description; the flags of ``zoo train`` are generated from these
declarations. The resolved config is saved as ``config.yaml`` in the run directory, so
``--resume`` and ``zoo export`` read exactly what the run used.
"""

import math
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core import yaml_text
from core.errors import ConfigError
from core.settings import validation_message
from training.run_dir import write_atomic

__all__ = ["ConfigError", "TrainConfig", "build_config", "load_yaml", "parse_config", "validate"]


# What the HParams dashboard compares runs by: the recipe, not paths, limits or plumbing.
HYPERPARAMETERS = (
    "model", "dataset", "image_size", "head", "model_options", "epochs", "batch_size", "lr",
    "optimizer", "weight_decay", "schedule", "warmup_fraction", "label_smoothing", "focal",
    "focal_gamma", "pos_weight", "threshold", "augmentation", "max_shift", "test_time_flip",
    "validation_split", "seed", "mixed_precision",
)  # fmt: skip
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class TrainConfig(BaseModel):
    """Everything a training run needs. Defaults train ``mnist_cnn`` on MNIST."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field("", description="run name; runs go to RUNS_ROOT/NAME/TIMESTAMP/ "
                      "(default: DATASET-MODEL-HEAD)")  # fmt: skip
    model: str = Field("mnist_cnn", description="a registered model (zoo models)")
    dataset: str = Field(
        "mnist", description="a dataset (zoo datasets), or the path of an image folder with "
        "train/ and test/ holding one subfolder per class"
    )  # fmt: skip
    image_size: str = Field(
        "", description="image folders: resize every image to HxW (e.g. 32x32, or 64 for 64x64); "
        "empty: all images must share one size"
    )  # fmt: skip
    head: str = Field(
        "softmax", description="softmax, logits, sigmoid or sigmoid_logits; must fit the dataset"
    )
    allow_sigmoid_for_multiclass: bool = Field(
        False, description="accept a sigmoid head on a multiclass dataset"
    )
    model_options: dict = Field(
        default_factory=dict, description="hyperparameters of the model's builder, e.g. "
        "'{dropout: 0.3}'"
    )  # fmt: skip
    epochs: int = Field(5, ge=1, le=100_000, description="planned epochs")
    batch_size: int = Field(
        128, ge=1, le=1_000_000, description="global batch size (split across replicas)"
    )
    lr: float = Field(1e-3, gt=0, le=100, description="peak learning rate")
    optimizer: Literal["adam", "adamw", "sgd"] = Field(
        "adam", description="adam, adamw or sgd (Nesterov momentum 0.9)"
    )
    weight_decay: float = Field(0.0, ge=0, description="decoupled weight decay (adamw, sgd)")
    schedule: Literal["constant", "onecycle", "cosine"] = Field(
        "constant", description="constant, onecycle (linear warm-up, cosine decay) or cosine"
    )
    warmup_fraction: float = Field(
        0.2, ge=0, lt=1, description="fraction of all steps spent warming up (onecycle, cosine)"
    )
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="target smoothing (docs/losses.md section 5)"
    )
    focal: bool = Field(False, description="use the focal variant of the head's loss")
    focal_gamma: float = Field(
        2.0, ge=0, description="focal loss' focusing parameter (0: plain cross-entropy)"
    )
    pos_weight: str = Field(
        "none",
        description="multilabel: weight of each class's positives in the loss: none, auto "
        "(negatives / positives of each class in the training labels, capped at 100) or a number",
    )
    threshold: float = Field(
        0.5, gt=0, lt=1, description="probability at or above which a multilabel class is present"
    )
    augmentation: str = Field(
        "none", description="none, shift (digits) or flip_shift (natural images)"
    )
    max_shift: int = Field(
        2, ge=1, le=16, description="largest shift in pixels of the shift augmentations"
    )
    test_time_flip: bool = Field(
        False, description="predict from the mean logits of each image and its mirror image: "
        "the final test, calibration and the export (twice the inference cost)"
    )  # fmt: skip
    validation_split: float = Field(
        0.0,
        ge=0,
        lt=0.5,
        description="fraction of the training examples held out (from the end) as the "
        "validation split: Keras validates on it each epoch (on the test split when 0) and the "
        "temperature is fitted on it",
    )
    calibrate: bool = Field(
        True,
        description="after training, fit a temperature on the validation split (docs/losses.md "
        "section 11); the export then serves calibrated probabilities",
    )
    seed: int = Field(
        0, ge=0, description="seeds weights, shuffling and augmentation; with deterministic a "
        "CPU rerun reproduces its metrics"
    )  # fmt: skip
    deterministic: bool = Field(True, description="enable TensorFlow's deterministic ops")
    mixed_precision: Literal["auto", "off", "bf16", "fp16"] = Field(
        "off",
        description="auto (what is fastest on this machine: measured, see docs/training.md), "
        "off, bf16 or fp16",
    )
    steps_per_execution: int = Field(
        8,
        ge=1,
        le=1024,
        description="training steps per call into TensorFlow: amortizes Python's per-step work, "
        "which otherwise leaves one of two CPU cores idle",
    )
    jit_compile: bool = Field(
        False, description="XLA-compile the train step (helps on GPUs, slows CPUs down 8x)"
    )
    strategy: Literal["none", "mirrored", "multiworker"] = Field(
        "none", description="none, mirrored (all local GPUs) or multiworker (from TF_CONFIG)"
    )
    data_dir: str = Field(
        "", description="folder with local dataset copies (default: $ZOO_DATA_DIR)"
    )
    train_limit: int = Field(0, ge=0, description="use only the first N training examples (0: all)")
    test_limit: int = Field(0, ge=0, description="use only the first N test examples (0: all)")
    runs_root: str = Field("runs", description="folder that holds the runs")
    histogram_freq: int = Field(1, ge=0, description="epochs between weight histograms (0: none)")
    sample_images: int = Field(
        16, ge=0, le=256, description="images logged to TensorBoard with prediction and truth"
    )

    @field_validator("pos_weight", mode="before")
    @classmethod
    def _number_as_text(cls, value):
        """YAML reads ``pos_weight: 3`` as a number; the setting is text (none, auto, 3)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("image_size", mode="before")
    @classmethod
    def _size_as_text(cls, value):
        """YAML reads ``image_size: 32`` as a number and ``[32, 48]`` as a list; the setting is
        text (``32x48``)."""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, list) and all(isinstance(v, int) for v in value):
            return "x".join(str(v) for v in value)
        return value

    @field_validator("image_size")
    @classmethod
    def _size_choice(cls, value: str) -> str:
        if value == "" or _image_size(value) is not None:
            return value
        raise ValueError("must be HxW or N (N for NxN), each from 1 to 4096, e.g. 32x32")

    @property
    def image_hw(self) -> tuple[int, int] | None:
        """``image_size`` as ``(height, width)``, or None when not set."""
        return _image_size(self.image_size) if self.image_size else None

    @field_validator("name")
    @classmethod
    def _one_folder_name(cls, value: str) -> str:
        if value == "" or RUN_NAME.fullmatch(value):
            return value
        raise ValueError(
            "must be one folder name inside the runs root: letters, digits, '_', '-' and '.', "
            "starting with a letter or digit, at most 100 characters"
        )

    @field_validator("pos_weight")
    @classmethod
    def _pos_weight_choice(cls, value: str) -> str:
        if value in ("none", "auto") or _positive_number(value):
            return value
        raise ValueError("must be 'none', 'auto' or a positive number")

    @property
    def run_name(self) -> str:
        """``name``, else ``DATASET-MODEL-HEAD`` (an image folder's own name for DATASET)."""
        dataset = Path(self.dataset).name or "images"
        return self.name or f"{dataset}-{self.model}-{self.head}"

    def to_dict(self) -> dict:
        return self.model_dump()

    def hyperparameters(self) -> dict:
        """The recipe's keys (``HYPERPARAMETERS``) as the HParams dashboard's scalars and text."""
        values = self.to_dict()
        return {k: v if isinstance(v, (bool, int, float, str)) else str(v)
                for k, v in ((k, values[k]) for k in HYPERPARAMETERS)}  # fmt: skip

    def save(self, path: Path) -> None:
        """Writes the config as YAML, atomically: a full disk leaves no empty config.yaml."""
        write_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


def _image_size(text: str) -> tuple[int, int] | None:
    parts = text.lower().split("x")
    if len(parts) not in (1, 2) or not all(part.isdigit() for part in parts):
        return None
    height, width = int(parts[0]), int(parts[-1])
    return (height, width) if 1 <= height <= 4096 and 1 <= width <= 4096 else None


def _positive_number(text: str) -> bool:
    try:
        return float(text) > 0 and math.isfinite(float(text))
    except ValueError:
        return False


def _choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ConfigError(f"Unknown {name} {value!r}. Valid choices: {', '.join(choices)}.")


def validate(config: TrainConfig) -> TrainConfig:
    """Checks what depends on the registries (names, head and task); ConfigError on the first
    problem. Types and bounds are checked when the config is built; ``model_options`` when the
    model is (before the run directory is created)."""
    import models
    from training import datasets

    _choice("model", config.model, models.list_models())
    _choice("head", config.head, list(models.HEADS))
    _choice("augmentation", config.augmentation, datasets.AUGMENTATIONS)
    _check_dataset_options(config)
    info = datasets.get_info(config.dataset, image_size=config.image_hw)
    if "validation" in info.split_sizes and config.validation_split:
        raise ConfigError(
            f"{config.dataset} has a validation/ folder, which is the validation split; "
            f"validation_split holds out another. Received: validation_split="
            f"{config.validation_split!r} (leave it 0 with this folder)"
        )
    task = info.task
    try:
        models.check_head_for_task(
            config.head, task, allow_sigmoid_for_multiclass=config.allow_sigmoid_for_multiclass
        )
    except ValueError as error:
        raise ConfigError(f"{error} (dataset {config.dataset!r})") from None
    if config.pos_weight != "none" and task != datasets.MULTILABEL:
        raise ConfigError(
            f"pos_weight applies to multilabel datasets; {config.dataset!r} is {task}. "
            f"Received: pos_weight={config.pos_weight!r}"
        )
    _check_no_op_options(config, task)
    return config


def _check_no_op_options(config: TrainConfig, task: str) -> None:
    """Refuses an option set away from its default where it would change nothing."""
    from models import HEADS

    defaults = TrainConfig.model_fields
    idle = []
    if config.weight_decay and config.optimizer == "adam":
        idle.append("weight_decay applies to adamw and sgd, not adam (use optimizer: adamw)")
    if not config.focal and config.focal_gamma != defaults["focal_gamma"].default:
        idle.append("focal_gamma applies with focal: true")
    if config.augmentation == "none" and config.max_shift != defaults["max_shift"].default:
        idle.append("max_shift applies to the shift and flip_shift augmentations")
    if (
        config.schedule == "constant"
        and config.warmup_fraction != defaults["warmup_fraction"].default
    ):
        idle.append("warmup_fraction applies to the onecycle and cosine schedules, not constant")
    if (task != "multilabel" and HEADS[config.head].task != "multilabel"
            and config.threshold != defaults["threshold"].default):  # fmt: skip
        idle.append(f"threshold applies to multilabel decisions; {config.dataset!r} is {task}")
    if idle:
        raise ConfigError(f"Options that would do nothing: {'; '.join(idle)}.")


def _check_dataset_options(config: TrainConfig) -> None:
    """``image_size`` is for image folders, ``data_dir`` for catalog datasets: each is refused
    where it would do nothing."""
    from training import datasets

    if datasets.is_folder_dataset(config.dataset):
        if config.data_dir:
            raise ConfigError(
                f"data_dir names where catalog datasets are found; dataset {config.dataset!r} is "
                f"an image folder, read where it is. Received: data_dir={config.data_dir!r}"
            )
        return
    if config.dataset not in datasets.list_datasets():
        datasets.get_info(config.dataset)  # raises, naming the choices
    if config.image_size:
        raise ConfigError(
            f"image_size resizes the images of an image folder; {config.dataset!r} has "
            f"{'x'.join(map(str, datasets.get_info(config.dataset).input_shape))} images. "
            f"Received: image_size={config.image_size!r}"
        )


def load_yaml(path: str | Path) -> dict:
    """The mapping in a YAML config file; ConfigError if it is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {str(path)!r} does not exist.")
    try:
        data = yaml_text.load(path.read_text()) or {}
    except (UnicodeDecodeError, yaml_text.YamlError) as error:
        raise ConfigError(f"Config file {str(path)!r} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {str(path)!r} must hold a mapping of keys to values.")
    return data


def parse_config(base: dict | None = None, overrides: dict | None = None) -> TrainConfig:
    """A config from a YAML mapping and flag overrides (``None`` values, in either, mean "not
    given": the default applies), its types and bounds checked but not its names: what a
    finished run's saved config needs, whose dataset folder may have moved since."""
    values = {k: v for k, v in (base or {}).items() if v is not None}
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(values) - set(TrainConfig.model_fields))
    if unknown:
        raise ConfigError(
            f"Unknown config key {unknown[0]!r}. Valid keys: {', '.join(TrainConfig.model_fields)}."
        )
    try:
        return TrainConfig(**values)
    except ValidationError as error:
        raise ConfigError(validation_message(error)) from None


def build_config(base: dict | None = None, overrides: dict | None = None) -> TrainConfig:
    """A validated config (as :func:`parse_config`, then :func:`validate`); an image folder's
    path is made absolute, so that a resume or export from elsewhere finds it."""
    from training import datasets

    config = parse_config(base, overrides)
    if datasets.is_folder_dataset(config.dataset):
        folder = str(Path(config.dataset).expanduser().resolve())
        config = config.model_copy(update={"dataset": folder})
    return validate(config)
