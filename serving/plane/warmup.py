"""Warm-up of a loaded version before it takes traffic, so that no request pays for a first call.

The first call of a signature pays for tracing, and the first at a batch size TensorFlow's CPU
kernels have not seen pays for preparing them: with the MNIST convnet here (2 cores) 25 ms for the
first call of more than one example and 0.5 to 2 ms for each new size after it, paid by every
request of the batch that happens to be first, e.g. right after start under load. Two sources:

- TensorFlow Serving's warm-up file, ``assets.extra/tf_serving_warmup_requests`` in the version's
  folder: a TFRecord of ``PredictionLog`` records (at most 1,000), the requests its author chose
  as representative. Predict, Classify and Regress records are replayed on the signatures they
  name (Classify on a classification SignatureDef or an image classifier, Regress on a regression
  SignatureDef); records this server would not answer (Regress elsewhere, MultiInference,
  SessionRun) are skipped and counted in the log. A file that cannot be read (over 64 MiB, a
  length or checksum that does not hold) or a record that fails fails the load, as in
  TensorFlow Serving: the version never takes traffic. So does a record that asks for more than
  the server ever runs at once (more examples than ``max_batch_size``, more than 64 MiB of
  inputs): a few bytes of TensorProto can describe gigabytes.
- Batches of zeros of 1, 2, 4, ... examples and of ``max_batch_size`` (no model call is larger;
  powers of two cost about two calls of the largest batch and leave each size not warmed 0.3 to
  0.7 ms over its steady time), for every signature whose inputs are numbers, up to the largest
  batch whose inputs fit in 64 MiB (the rest are warmed by traffic). A signature that
  takes strings (image bytes, serialized examples) has no zero value it would accept; the warm-up
  file is its way to be warmed.
"""

import logging
from collections import Counter
from pathlib import Path

import numpy as np
from tensorflow_serving.apis import prediction_log_pb2

from core.images import ImageError, example_image, input_examples
from serving.converters import tensor_proto_to_numpy
from serving.plane.example_signatures import (
    CLASSIFY_METHOD,
    REGRESS_METHOD,
    has_method,
    serialized_inputs,
)
from serving.plane.runtime import DEFAULT_SIGNATURE, LoadedVersion, Signature
from serving.plane.tfrecord import RecordError, read_records

log = logging.getLogger("zoo.serving")
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TensorFlow Serving's limit
MAX_WARMUP_BYTES = 64 << 20


class WarmUpError(ValueError):
    """The warm-up file could not be read, or one of its requests failed."""


def warm_up(version: LoadedVersion, largest_batch: int) -> None:
    """Replays the version's warm-up file, if it has one, then runs its numeric signatures on
    zeros at the batch sizes of :func:`warm_up_sizes` (powers of two, then ``largest_batch``),
    those whose inputs fit in ``MAX_WARMUP_BYTES``."""
    file = version.path / WARMUP_FILE
    if file.exists():
        replay_warmup_file(version, file, largest_batch)
    sizes = warm_up_sizes(largest_batch)
    for signature in version.signatures.values():
        if any(spec.dtype.kind not in "biuf" for spec in signature.inputs.values()):
            continue
        batched = all(spec.shape[:1] == (-1,) for spec in signature.inputs.values())
        for size in sizes if batched else [1]:
            shapes = {
                name: _warm_up_shape(spec.shape, size) for name, spec in signature.inputs.items()
            }
            nbytes = sum(
                int(np.prod(shape)) * signature.inputs[name].dtype.itemsize
                for name, shape in shapes.items()
            )
            if nbytes > MAX_WARMUP_BYTES:
                log.info(
                    "Warm-up of %s version %d stops below batch %d: its inputs would take %d MiB",
                    version.name, version.version, size, nbytes >> 20,
                )  # fmt: skip
                break
            signature(
                {
                    name: np.zeros(shape, signature.inputs[name].dtype)
                    for name, shape in shapes.items()
                }
            )


def warm_up_sizes(largest_batch: int) -> list[int]:
    """1, 2, 4, ... below ``largest_batch``, then ``largest_batch`` itself."""
    if largest_batch < 1:
        raise ValueError(f"largest_batch must be at least 1. Received: {largest_batch}")
    sizes = [1]
    while sizes[-1] * 2 < largest_batch:
        sizes.append(sizes[-1] * 2)
    return [*sizes, largest_batch] if largest_batch > 1 else sizes


def _warm_up_shape(shape: tuple[int, ...], batch: int) -> list[int]:
    """``shape`` with an unknown batch axis set to ``batch`` and other unknown axes to 1."""
    return [(batch if axis == 0 else 1) if d == -1 else d for axis, d in enumerate(shape)]


def replay_warmup_file(version: LoadedVersion, file: Path, largest_batch: int) -> None:
    """Runs the Predict, Classify and Regress requests of a warm-up file; WarmUpError naming the
    file and the record on the first problem. A record of more than ``largest_batch`` examples
    (more than any model call the server makes) or ``MAX_WARMUP_BYTES`` of inputs is one."""
    skipped = Counter()
    for index, record in enumerate(_records(file)):
        where = f"Warm-up file {file}, record {index}"
        try:
            entry = prediction_log_pb2.PredictionLog.FromString(record)
        except Exception:
            raise WarmUpError(f"{where}: not a PredictionLog.") from None
        kind = entry.WhichOneof("log_type")
        try:
            replayed = True
            if kind == "predict_log":
                _replay_predict(version, entry.predict_log.request, largest_batch)
            elif kind == "classify_log":
                _replay_classify(version, entry.classify_log.request, largest_batch)
            elif kind == "regress_log":
                request = entry.regress_log.request
                replayed = _replay_examples(version, request, REGRESS_METHOD, largest_batch)
            else:
                replayed = False
            if not replayed:
                skipped[kind or "empty"] += 1
        except Exception as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise WarmUpError(f"{where} ({kind}): {message}") from None
    if skipped:
        log.warning(
            "Warm-up of %s version %d skipped records this server does not answer: %s",
            version.name, version.version, dict(skipped),
        )  # fmt: skip


def _records(file: Path) -> list[bytes]:
    """The file's records, read with bounded framing (``serving.plane.tfrecord``): a forged length
    field or a flipped byte is a WarmUpError naming the file, never a crash."""
    try:
        return read_records(file, max_records=MAX_WARMUP_RECORDS, max_bytes=MAX_WARMUP_BYTES)
    except (RecordError, OSError) as error:
        raise WarmUpError(f"Warm-up file {file}: {error}.") from None


def _signature(version: LoadedVersion, name: str) -> Signature:
    name = name or DEFAULT_SIGNATURE
    if name not in version.signatures:
        raise WarmUpError(f"no signature {name!r}; the model has {sorted(version.signatures)}")
    return version.signatures[name]


def _check_batch(examples: int, largest_batch: int) -> None:
    if examples > largest_batch:
        raise WarmUpError(
            f"{examples} examples in one request, over max_batch_size={largest_batch}: the "
            "server never runs a batch that large"
        )


def _replay_predict(version: LoadedVersion, request, largest_batch: int) -> None:
    signature = _signature(version, request.model_spec.signature_name)
    inputs = {
        name: tensor_proto_to_numpy(proto, name, MAX_WARMUP_BYTES)
        for name, proto in request.inputs.items()
    }
    batched = [a for n, a in inputs.items() if n in signature.inputs and a.ndim]
    if signature.batchable and batched:
        _check_batch(max(len(a) for a in batched), largest_batch)
    if set(inputs) != set(signature.inputs):
        raise WarmUpError(
            f"signature {signature.name!r} takes inputs {sorted(signature.inputs)}, the record "
            f"gives {sorted(inputs)}"
        )
    signature(inputs)


def _replay_examples(version: LoadedVersion, request, method: str, largest_batch: int) -> bool:
    """Runs a Classify or Regress record on its signature if that takes examples (a
    classification or regression SignatureDef); False if it does not."""
    signature = _signature(version, request.model_spec.signature_name)
    if not has_method(version, signature, method):
        return False
    examples = input_examples(request.input)
    _check_batch(len(examples), largest_batch)
    if examples:
        signature(serialized_inputs(signature, examples))
    return True


def _replay_classify(version: LoadedVersion, request, largest_batch: int) -> None:
    if _replay_examples(version, request, CLASSIFY_METHOD, largest_batch):
        return
    signature = _signature(version, request.model_spec.signature_name)
    if len(signature.inputs) != 1:
        raise WarmUpError(f"Classify needs a signature with one input; {signature.name!r} has "
                          f"{sorted(signature.inputs)}")  # fmt: skip
    ((name, spec),) = signature.inputs.items()
    examples = input_examples(request.input)
    _check_batch(len(examples), largest_batch)
    try:
        images = [example_image(example, name, tuple(spec.shape[1:])) for example in examples]
    except ImageError as error:
        raise WarmUpError(str(error)) from None
    if images:
        signature({name: np.stack(images).astype(spec.dtype)})
