"""Checks a request's tensors against the signature before the model runs.

Every message names the tensor, what was expected and what was received.
"""

import numpy as np

from serving.errors import InvalidArgument
from serving.plane.runtime import Signature


def _dtype_text(dtype: np.dtype) -> str:
    """NumPy's dtype name, but ``string`` for the object arrays that string tensors become."""
    return "string" if dtype.kind == "O" else dtype.name


def _shape_text(shape) -> str:
    return "[" + ", ".join("-1" if d in (-1, None) else str(d) for d in shape) + "]"


def validate_inputs(signature: Signature, inputs: dict[str, np.ndarray], max_batch: int) -> int:
    """Returns the batch size; InvalidArgument on the first problem found."""
    expected = set(signature.inputs)
    missing = sorted(expected - set(inputs))
    extra = sorted(set(inputs) - expected)
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing input(s) {missing}")
        if extra:
            problems.append(f"unexpected input(s) {extra}")
        raise InvalidArgument(
            f"Signature {signature.name!r} takes inputs {sorted(expected)}: "
            + "; ".join(problems)
            + "."
        )
    batch_sizes = set()
    for name, spec in signature.inputs.items():
        array = inputs[name]
        if array.dtype != spec.dtype:
            raise InvalidArgument(
                f"Input {name!r}: expected dtype {_dtype_text(spec.dtype)}, "
                f"received {_dtype_text(array.dtype)}."
            )
        if array.ndim != len(spec.shape) or any(
            want not in (-1, got) for want, got in zip(spec.shape, array.shape, strict=True)
        ):
            raise InvalidArgument(
                f"Input {name!r}: expected shape {_shape_text(spec.shape)}, "
                f"received {_shape_text(array.shape)}."
            )
        if array.ndim == 0:
            raise InvalidArgument(f"Input {name!r}: expected a batch, received a scalar.")
        batch_sizes.add(array.shape[0])
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise InvalidArgument(f"Input {name!r}: {bad} value(s) are NaN or Inf.")
    if len(batch_sizes) > 1:
        raise InvalidArgument(f"Inputs disagree on the batch size: {sorted(batch_sizes)}.")
    batch = batch_sizes.pop()
    if batch == 0:
        raise InvalidArgument(f"Input {next(iter(inputs))!r}: the batch is empty (0 examples).")
    if batch > max_batch:
        raise InvalidArgument(
            f"Input {next(iter(inputs))!r}: batch of {batch} examples exceeds the limit of "
            f"{max_batch} per request."
        )
    return batch
