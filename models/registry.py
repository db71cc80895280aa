"""The model registry: ``register_model``, ``list_models`` and ``create_model``.

An architecture file ends in small builder functions decorated with :func:`register_model`. A
builder takes the input tensor and keyword hyperparameters and returns the feature tensor the head
sits on; :func:`create_model` adds the head (``models.heads``) and names the model.
"""

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

import keras

from models.classifier import Classifier
from models.heads import check_head_for_task, get_head

Builder = Callable[..., keras.KerasTensor]


@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture.

    Args:
        name: the name users pass to ``--model``.
        builder: ``builder(inputs, **overrides) -> features``.
        default_input_shape: HWC shape used when ``create_model`` gets none.
        suits: the datasets it is designed for, for ``zoo models``.
        description: one line for ``zoo models``.
    """

    name: str
    builder: Builder
    default_input_shape: tuple[int, int, int]
    suits: tuple[str, ...]
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    *, default_input_shape: tuple[int, int, int], suits: tuple[str, ...]
) -> Callable[[Builder], Builder]:
    """Registers a builder under its function name; its docstring's first line describes it."""

    def decorator(builder: Builder) -> Builder:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"Model {name!r} is already registered.")
        description = (builder.__doc__ or "").strip().splitlines()[0] if builder.__doc__ else ""
        _REGISTRY[name] = ModelEntry(name, builder, default_input_shape, suits, description)
        return builder

    return decorator


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching a shell-style ``pattern``."""
    return sorted(name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern))


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; ValueError naming the valid choices if unknown."""
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model {name!r}. Valid choices: {', '.join(list_models())}.")
    return _REGISTRY[name]


def create_model(
    name: str,
    *,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int = 10,
    head: str = "softmax",
    task: str | None = None,
    allow_sigmoid_for_multiclass: bool = False,
    **overrides,
) -> Classifier:
    """Builds registered model ``name`` with its head (a :class:`Classifier`, which knows it).

    Args:
        name: a name from :func:`list_models`.
        input_shape: HWC shape of one image. Defaults to the model's default input.
        num_classes: width of the head. Defaults to 10.
        head: ``softmax``, ``logits``, ``sigmoid`` or ``sigmoid_logits``. Defaults to ``softmax``.
        task: the dataset's task; when given, a head that does not fit it raises ValueError.
        allow_sigmoid_for_multiclass: accept a sigmoid head on a multiclass task.
        overrides: hyperparameters of the builder; ``None`` means "use the default".

    Example:
        >>> model = create_model("mnist_cnn", input_shape=(28, 28, 1), head="logits")
        >>> model.output.shape
        (None, 10)
    """
    entry = get_entry(name)
    head_spec = get_head(head)
    if task is not None:
        check_head_for_task(
            head_spec, task, allow_sigmoid_for_multiclass=allow_sigmoid_for_multiclass
        )
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2. Received: num_classes={num_classes}")
    inputs = keras.Input(shape=tuple(input_shape or entry.default_input_shape), name="images")
    features = entry.builder(inputs, **{k: v for k, v in overrides.items() if v is not None})
    outputs = head_spec.build_outputs(features, num_classes)
    return Classifier(inputs, outputs, head=head_spec, name=name)
