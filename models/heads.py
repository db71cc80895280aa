"""Output heads: the only place that knows which activation goes with which loss.

=================  ===========  ===========  ====================================================
head               activation   task         loss
=================  ===========  ===========  ====================================================
``softmax``        softmax      multiclass   (Sparse)CategoricalCrossentropy
``logits``         none         multiclass   (Sparse)CategoricalCrossentropy(from_logits=True)
``sigmoid``        sigmoid      multilabel   BinaryCrossentropy
``sigmoid_logits`` none         multilabel   BinaryCrossentropy(from_logits=True)
=================  ===========  ===========  ====================================================

Every head ends in a Dense layer named ``logits``; the probability heads add an activation layer
named ``probabilities``. Whatever the head, :meth:`Head.inference_outputs` gives the same outputs
for export: ``probabilities`` (the activation applied exactly once), ``logits`` and ``classes``.
The mathematics is in ``docs/losses.md``.
"""

from dataclasses import dataclass

import keras
import tensorflow as tf

MULTICLASS = "multiclass"
MULTILABEL = "multilabel"
DEFAULT_THRESHOLD = 0.5


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
        from_logits: bool | None = None,
    ) -> keras.losses.Loss:
        """The loss that matches this head's output.

        Args:
            label_smoothing: mixes the target with the uniform distribution (multiclass: ``y(1-a)
                + a/K``; multilabel: ``y(1-a) + a/2``). Defaults to 0.
            focal: use the focal variant, which down-weights well-classified examples. Defaults
                to False.
            focal_gamma: the focal loss' focusing parameter. Defaults to 2.
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
        common = {"from_logits": self.from_logits, "label_smoothing": label_smoothing}
        if self.task == MULTILABEL:
            if focal:
                return keras.losses.BinaryFocalCrossentropy(gamma=focal_gamma, **common)
            return keras.losses.BinaryCrossentropy(**common)
        if focal:
            return keras.losses.CategoricalFocalCrossentropy(gamma=focal_gamma, **common)
        if label_smoothing:
            return keras.losses.CategoricalCrossentropy(**common)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=self.from_logits)

    def probabilities(self, outputs: tf.Tensor) -> tf.Tensor:
        """Probabilities from the model's output, applying the activation exactly once."""
        if not self.from_logits:
            return outputs
        return tf.nn.softmax(outputs) if self.activation == "softmax" else tf.sigmoid(outputs)

    def classes(self, probabilities: tf.Tensor, threshold: float = DEFAULT_THRESHOLD) -> tf.Tensor:
        """Multiclass: the argmax class id, int64 [N]. Multilabel: int64 [N, K] 0/1 indicators
        of the classes whose probability is at least ``threshold``."""
        if self.task == MULTICLASS:
            return tf.argmax(probabilities, axis=-1)
        return tf.cast(probabilities >= threshold, tf.int64)

    def inference_outputs(
        self, model: keras.Model, threshold: float = DEFAULT_THRESHOLD
    ) -> keras.Model:
        """A model with outputs ``{"probabilities", "logits"}`` sharing ``model``'s weights;
        :meth:`classes` turns the probabilities into class decisions."""
        logits = model.get_layer("logits").output
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
