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
from models.pretrained import PretrainedError, get_card, verified_weights

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
    num_classes: int | None = None,
    head: str | None = None,
    task: str | None = None,
    allow_sigmoid_for_multiclass: bool = False,
    pretrained: str | None = None,
    **overrides,
) -> Classifier:
    """Builds registered model ``name`` with its head (a :class:`Classifier`, which knows it).

    Args:
        name: a name from :func:`list_models`.
        input_shape: HWC shape of one image. Defaults to the model's default input (with
            ``pretrained``, the checkpoint's).
        num_classes: width of the head. Defaults to 10 (with ``pretrained``, the checkpoint's).
        head: ``softmax``, ``logits``, ``sigmoid`` or ``sigmoid_logits``. Defaults to ``softmax``
            (with ``pretrained``, the checkpoint's; its twin, ``logits`` for ``softmax`` and so
            on, shares its weights and is accepted too).
        task: the dataset's task; when given, a head that does not fit it raises ValueError.
        allow_sigmoid_for_multiclass: accept a sigmoid head on a multiclass task.
        pretrained: a dataset the zoo ships this model trained on (``list_pretrained()``): the
            weights are verified by SHA-256 and loaded; the checkpoint fixes the architecture,
            so an input shape, class count, head or override that differs is refused.
        overrides: hyperparameters of the builder; ``None`` means "use the default".

    Example:
        >>> model = create_model("mnist_cnn", input_shape=(28, 28, 1), head="logits")
        >>> model.output.shape
        (None, 10)
    """
    entry = get_entry(name)
    card = None
    if pretrained is not None:
        card = get_card(name, pretrained)
        _check_fits_card(card, input_shape, num_classes, head, overrides)
        input_shape, num_classes = card["input_shape"], card["num_classes"]
        head, overrides = head or card["head"], card["model_options"]
    head_spec = get_head(head or "softmax")
    num_classes = 10 if num_classes is None else num_classes
    if task is not None:
        check_head_for_task(
            head_spec, task, allow_sigmoid_for_multiclass=allow_sigmoid_for_multiclass
        )
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2. Received: num_classes={num_classes}")
    inputs = keras.Input(shape=tuple(input_shape or entry.default_input_shape), name="images")
    features = entry.builder(inputs, **{k: v for k, v in overrides.items() if v is not None})
    outputs = head_spec.build_outputs(features, num_classes)
    model = Classifier(inputs, outputs, head=head_spec, name=name)
    if card is not None:
        model.load_weights(verified_weights(card))
    return model


def _check_fits_card(card: dict, input_shape, num_classes, head, overrides: dict) -> None:
    """Refuses what would not fit the checkpoint's weights, naming both sides."""
    key = f"{card['model']}:{card['dataset']}"
    shape = tuple(card["input_shape"])
    if input_shape is not None and tuple(input_shape) != shape:
        raise PretrainedError(
            f"Pretrained {key} takes images of shape {shape}. Received: input_shape="
            f"{tuple(input_shape)}"
        )
    if num_classes is not None and num_classes != card["num_classes"]:
        raise PretrainedError(
            f"Pretrained {key} has {card['num_classes']} classes. Received: "
            f"num_classes={num_classes}"
        )
    if head is not None and get_head(head).activation != get_head(card["head"]).activation:
        raise PretrainedError(
            f"Pretrained {key} was trained with the {card['head']} head; head={head!r} has "
            f"another activation. Use {card['head']!r} or its twin."
        )
    changed = {
        k: v for k, v in overrides.items() if v is not None and card["model_options"].get(k) != v
    }
    if changed:
        raise PretrainedError(
            f"Pretrained {key} fixes the architecture ({card['model_options'] or 'defaults'}). "
            f"Received: {changed}"
        )
