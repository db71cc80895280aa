"""TensorFlow Serving's classification and regression signatures: models (often exported by
TensorFlow 1's Estimators) whose SignatureDef's method is ``tensorflow/serving/classify`` or
``tensorflow/serving/regress`` take a batch of serialized tf.Examples as their one string input
and answer ``classes`` and/or ``scores``, or ``outputs``. Classify, Regress and MultiInference
(gRPC) and ``:classify`` and ``:regress`` (REST) run them through the data plane
(``DataPlane.run_examples``) as TensorFlow Serving does; this module knows their methods, inputs
and outputs. The zoo's own classifiers take images instead and go through ``DataPlane.classify``.
"""

import numpy as np

from serving.errors import ServingError
from serving.plane.runtime import LoadedVersion, Signature

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


def has_method(servable: LoadedVersion, signature: Signature, method: str) -> bool:
    """Whether ``signature``'s SignatureDef has ``method`` and one string input: examples in."""
    definition = servable.signature_defs.get(signature.name)
    if definition is None or definition.method_name != method:
        return False
    return len(signature.inputs) == 1 and next(iter(signature.inputs.values())).dtype == object


def serialized_inputs(signature: Signature, examples: list) -> dict[str, np.ndarray]:
    """The inputs of an examples signature: ``examples`` (tf.Example messages) serialized."""
    ((input_name, _),) = signature.inputs.items()
    serialized = np.empty(len(examples), dtype=object)
    serialized[:] = [example.SerializeToString() for example in examples]
    return {input_name: serialized}


def not_a_regressor(servable: LoadedVersion, name: str) -> str:
    """What Regress answers (UNIMPLEMENTED) for a signature that is no regression signature."""
    return (
        f"Regress needs a regression signature (method {REGRESS_METHOD}, serialized tf.Examples "
        f"in); signature {name!r} of model {servable.name!r} is not one. Use Classify or Predict."
    )


def classifications(outputs: dict[str, np.ndarray], count: int) -> list[list[tuple[str, float]]]:
    """Per example, ``(label, score)`` pairs in the order the model gave them: labels from
    ``classes`` ("" without it), scores from ``scores`` (0 without it), as TensorFlow Serving
    fills its ClassificationResult."""
    classes, scores = outputs.get("classes"), outputs.get("scores")
    if classes is None and scores is None:
        raise ServingError(
            f"A classification signature answers 'classes' and/or 'scores'; this one answers "
            f"{sorted(outputs)}."
        )
    labels = None if classes is None else _rows(classes, "classes", count)
    values = None if scores is None else _rows(scores, "scores", count)
    if labels is not None and values is not None and labels.shape != values.shape:
        raise ServingError(
            f"Outputs 'classes' and 'scores' have shapes {list(classes.shape)} and "
            f"{list(scores.shape)}; a classification answers one score per class."
        )
    width = (labels if labels is not None else values).shape[1]
    return [
        [
            (
                "" if labels is None else _text(labels[row, column]),
                0.0 if values is None else float(values[row, column]),
            )
            for column in range(width)
        ]
        for row in range(count)
    ]


def regressions(outputs: dict[str, np.ndarray], count: int) -> list[float]:
    """Per example, the value of the ``outputs`` output (one per example)."""
    if "outputs" not in outputs:
        raise ServingError(
            f"A regression signature answers 'outputs'; this one answers {sorted(outputs)}."
        )
    values = _rows(outputs["outputs"], "outputs", count)
    if values.shape[1] != 1:
        raise ServingError(
            f"Output 'outputs' has {values.shape[1]} values per example; a regression answers one."
        )
    return [float(value) for value in values[:, 0]]


def _rows(array: np.ndarray, name: str, count: int) -> np.ndarray:
    if array.ndim == 0 or array.shape[0] != count or array.ndim > 2:
        raise ServingError(
            f"Output {name!r} has shape {list(array.shape)} for {count} examples; expected "
            f"[{count}] or [{count}, k]."
        )
    return array.reshape(count, -1)


def _text(label) -> str:
    return label.decode(errors="replace") if isinstance(label, bytes) else str(label)
