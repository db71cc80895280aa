"""Output heads: the only place that knows which activation goes with which loss.

=================  ===========  ===========  ====================================================
head               activation   task         loss
=================  ===========  ===========  ====================================================
``softmax``        softmax      multiclass   (Sparse)CategoricalCrossentropy
``logits``         none         multiclass   (Sparse)CategoricalCrossentropy(from_logits=True)
``sigmoid``        sigmoid      multilabel   BinaryCrossentropy
``sigmoid_logits`` none         multilabel   BinaryCrossentropy(from_logits=True)
=================  ===========  ===========  ====================================================

The focal variants and positive weights use the zoo's own losses (``models.losses``). Every head
ends in a Dense layer named ``logits``; the probability heads add an activation layer named
``probabilities``. Whatever the head, :meth:`Head.inference_outputs` gives the same two outputs,
``probabilities`` (the activation applied exactly once) and ``logits``; what they mean as
decisions is ``core.outputs``'. The mathematics is in ``docs/losses.md``.
"""

from dataclasses import dataclass

import keras
from keras import ops

from core.outputs import MULTICLASS, MULTILABEL
from models.layers import HorizontalFlip
from models.losses import BinaryFocalLoss, CategoricalFocalLoss


@dataclass(frozen=True)
class Head:
    """An output layer and its loss, bound together.

    Args:
        name: the name users pass to ``--head``.
        activation: ``"softmax"`` or ``"sigmoid"``: the function that maps logits to probabilities.
        from_logits: True when the model outputs logits and the loss applies the activation.
        task: the task it is made for, ``"multiclass"`` or ``"multilabel"``.
    """

    name: str
    activation: str
    from_logits: bool
    task: str

    @property
    def output_name(self) -> str:
        return "logits" if self.from_logits else "probabilities"

    def build_outputs(self, features: keras.KerasTensor, num_classes: int) -> keras.KerasTensor:
        """Adds the head's layers on top of ``features``. They compute in float32 even under
        mixed precision, so that probabilities and the loss keep their precision."""
        logits = keras.layers.Dense(num_classes, name="logits", dtype="float32")(features)
        if self.from_logits:
            return logits
        return keras.layers.Activation(self.activation, name="probabilities", dtype="float32")(
            logits
        )

    def label_format(self, *, label_smoothing: float = 0.0, focal: bool = False) -> str:
        """``"sparse"`` (integer class ids), ``"one_hot"`` or ``"multi_hot"``: what the loss wants.

        Label smoothing and the focal loss exist only for one-hot targets, so they switch a
        multiclass head from sparse to one-hot labels.
        """
        if self.task == MULTILABEL:
            return "multi_hot"
        return "one_hot" if (label_smoothing or focal) else "sparse"

    def loss(
        self,
        *,
        label_smoothing: float = 0.0,
        focal: bool = False,
        focal_gamma: float = 2.0,
        focal_alpha=None,
        pos_weight=None,
        from_logits: bool | None = None,
    ) -> keras.losses.Loss:
        """The loss that matches this head's output.

        Args:
            label_smoothing: mixes the target with the uniform distribution (multiclass: ``y(1-a)
                + a/K``; multilabel: ``y(1-a) + a/2``). Defaults to 0.
            focal: use the focal variant, which down-weights well-classified examples. Defaults
                to False.
            focal_gamma: the focal loss' focusing parameter, ``>= 0``. Defaults to 2.
            focal_alpha: the focal loss' class weight: one number or one per class (multilabel:
                the weight of positives, in [0, 1]). Defaults to None (no weighting).
            pos_weight: multilabel only: extra weight of each class's positives, one number or
                one per class, as in PyTorch's ``BCEWithLogitsLoss``. Defaults to None.
            from_logits: leave as None. Passing a value that contradicts the head raises
                ValueError: it is the mismatch this module exists to prevent.
        """
        if from_logits is not None and from_logits != self.from_logits:
            raise ValueError(
                f"Head {self.name!r} outputs {self.output_name}, so its loss needs "
                f"from_logits={self.from_logits}. Received: from_logits={from_logits}. "
                f"Choose the head {_twin(self)!r} instead."
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                f"label_smoothing must be in [0, 1). Received: label_smoothing={label_smoothing}"
            )
        if focal and not focal_gamma >= 0:
            raise ValueError(f"focal_gamma must be at least 0. Received: focal_gamma={focal_gamma}")
        if pos_weight is not None and self.task != MULTILABEL:
            raise ValueError(
                f"pos_weight weighs the positives of independent sigmoid outputs; head "
                f"{self.name!r} is {self.task}. Received: pos_weight={pos_weight!r}"
            )
        common = {"from_logits": self.from_logits, "label_smoothing": label_smoothing}
        if self.task == MULTILABEL:
            if focal or pos_weight is not None:
                gamma = focal_gamma if focal else 0.0
                alpha = focal_alpha if focal else None
                return BinaryFocalLoss(gamma, alpha, pos_weight, **common)
            return keras.losses.BinaryCrossentropy(**common)
        if focal:
            return CategoricalFocalLoss(focal_gamma, focal_alpha, **common)
        if label_smoothing:
            return keras.losses.CategoricalCrossentropy(**common)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=self.from_logits)

    def probabilities(self, outputs):
        """Probabilities from the model's output, applying the activation exactly once."""
        if not self.from_logits:
            return outputs
        return ops.softmax(outputs) if self.activation == "softmax" else ops.sigmoid(outputs)

    def check_loss(self, loss) -> None:
        """ValueError naming both when ``loss`` expects another output than this head gives.

        A cross-entropy (Keras' or ours, as an object or by name) expects probabilities or logits
        of a softmax or a sigmoid; other losses (``"mse"``, your own) are taken as they are.
        """
        expects = loss_expectation(loss)
        if expects is None or expects == (self.activation, self.from_logits):
            return
        activation, from_logits = expects
        matching = next(h.name for h in HEADS.values() if (h.activation, h.from_logits) == expects)
        raise ValueError(
            f"The loss {_describe(loss)} expects {activation} "
            f"{'logits' if from_logits else 'probabilities'}, but this model's head "
            f"{self.name!r} outputs {self.activation} {self.output_name}. Compile with "
            f"loss='auto' (the head's own loss) or build the model with head={matching!r}."
        )

    def inference_outputs(self, model: keras.Model, flip_average: bool = False) -> keras.Model:
        """A model with outputs ``{"probabilities", "logits"}`` sharing ``model``'s weights;
        ``core.outputs.decide`` turns the probabilities into class decisions.

        Args:
            flip_average: average the logits of each image and of its mirror image (left to
                right), the test-time augmentation of airbench; twice the inference cost.
                Defaults to False.
        """
        logits = model.get_layer("logits").output
        if flip_average:
            scorer = keras.Model(model.input, logits)
            images = keras.Input(model.input.shape[1:], dtype=model.input.dtype)
            mirrored = scorer(HorizontalFlip()(images))
            logits = keras.layers.Average(name="logits")([scorer(images), mirrored])
            activation = keras.activations.get(self.activation)
            probabilities = keras.layers.Activation(activation, name="probabilities")(logits)
            return keras.Model(images, {"probabilities": probabilities, "logits": logits})
        probabilities = model.output if not self.from_logits else None
        if probabilities is None:
            activation = keras.activations.get(self.activation)
            probabilities = keras.layers.Activation(activation, name="probabilities")(logits)
        return keras.Model(model.input, {"probabilities": probabilities, "logits": logits})


HEADS: dict[str, Head] = {
    head.name: head
    for head in (
        Head("softmax", "softmax", from_logits=False, task=MULTICLASS),
        Head("logits", "softmax", from_logits=True, task=MULTICLASS),
        Head("sigmoid", "sigmoid", from_logits=False, task=MULTILABEL),
        Head("sigmoid_logits", "sigmoid", from_logits=True, task=MULTILABEL),
    )
}


_CROSS_ENTROPIES = {
    # loss class or function -> the activation whose output it expects
    keras.losses.CategoricalCrossentropy: "softmax",
    keras.losses.SparseCategoricalCrossentropy: "softmax",
    keras.losses.CategoricalFocalCrossentropy: "softmax",
    CategoricalFocalLoss: "softmax",
    keras.losses.BinaryCrossentropy: "sigmoid",
    keras.losses.BinaryFocalCrossentropy: "sigmoid",
    BinaryFocalLoss: "sigmoid",
    keras.losses.categorical_crossentropy: "softmax",
    keras.losses.sparse_categorical_crossentropy: "softmax",
    keras.losses.categorical_focal_crossentropy: "softmax",
    keras.losses.binary_crossentropy: "sigmoid",
    keras.losses.binary_focal_crossentropy: "sigmoid",
}


def loss_expectation(loss) -> tuple[str, bool] | None:
    """``(activation, from_logits)`` that a cross-entropy loss expects of the model's output, or
    None for losses that are not one of Keras' or the zoo's cross-entropies."""
    if isinstance(loss, str):
        try:
            loss = keras.losses.get(loss)
        except ValueError:
            return None
    kind = type(loss) if isinstance(loss, keras.losses.Loss) else loss
    activation = next((a for k, a in _CROSS_ENTROPIES.items() if kind is k), None)
    if activation is None:
        return None
    return activation, bool(getattr(loss, "from_logits", False))


def _describe(loss) -> str:
    if isinstance(loss, str):
        return repr(loss)
    if isinstance(loss, keras.losses.Loss):
        return f"{type(loss).__name__}(from_logits={getattr(loss, 'from_logits', False)})"
    return getattr(loss, "__name__", repr(loss))


def _twin(head: Head) -> str:
    """The head with the same activation and the other output (probabilities vs logits)."""
    return next(
        other.name
        for other in HEADS.values()
        if other.activation == head.activation and other.from_logits != head.from_logits
    )


def get_head(name: str | Head) -> Head:
    """A head by name (or the head itself); ValueError naming the valid choices if unknown."""
    if isinstance(name, Head):
        return name
    if name not in HEADS:
        raise ValueError(f"Unknown head {name!r}. Valid choices: {', '.join(HEADS)}.")
    return HEADS[name]


def heads_for_task(task: str) -> list[str]:
    """The heads made for ``task``."""
    return [head.name for head in HEADS.values() if head.task == task]


def check_head_for_task(head: str | Head, task: str, *, allow_sigmoid_for_multiclass=False) -> Head:
    """The head, if it fits ``task``; ValueError otherwise.

    A softmax head can never model a multilabel target (its probabilities sum to 1). A sigmoid
    head on a multiclass task trains one-vs-rest classifiers: valid, but rarely meant, so it needs
    ``allow_sigmoid_for_multiclass=True``.
    """
    head = get_head(head)
    if task not in (MULTICLASS, MULTILABEL):
        raise ValueError(f"Unknown task {task!r}. Valid choices: {MULTICLASS}, {MULTILABEL}.")
    if head.task == task or (allow_sigmoid_for_multiclass and head.activation == "sigmoid"):
        return head
    reason = (
        "a softmax makes the classes compete, so it cannot mark several labels present"
        if head.activation == "softmax"
        else "one sigmoid per class trains independent one-vs-rest classifiers; pass "
        "allow_sigmoid_for_multiclass=True if that is what you want"
    )
    raise ValueError(
        f"Head {head.name!r} does not fit a {task} task: {reason}. "
        f"Valid heads for {task}: {', '.join(heads_for_task(task))}."
    )
