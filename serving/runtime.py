"""One loaded model version: its SavedModel's signatures, how to call them, and warm-up."""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from core.artifact import read_metadata

log = logging.getLogger("zoo.serving")


@dataclass(frozen=True)
class TensorSpec:
    """A signature's input or output: name, numpy dtype and shape (-1 for unknown dimensions)."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]

    @classmethod
    def from_tf(cls, name: str, spec) -> "TensorSpec":
        dims = tuple(-1 if d is None else int(d) for d in spec.shape.as_list())
        return cls(name, np.dtype(spec.dtype.as_numpy_dtype), dims)


@dataclass(frozen=True)
class Signature:
    name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    function: object

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.function(**{k: tf.convert_to_tensor(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}


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


class LoadedVersion:
    """A SavedModel version in memory. Requests in flight keep it alive after it is unloaded."""

    def __init__(self, name: str, version: int, path: Path):
        self.name, self.version, self.path = name, version, Path(path)
        self._saved_model = tf.saved_model.load(str(path))
        self.signatures: dict[str, Signature] = {}
        for signature_name, function in self._saved_model.signatures.items():
            _, input_specs = function.structured_input_signature
            self.signatures[signature_name] = Signature(
                signature_name,
                {k: TensorSpec.from_tf(k, v) for k, v in input_specs.items()},
                {k: TensorSpec.from_tf(k, v) for k, v in function.structured_outputs.items()},
                function,
            )
        self.metadata = read_metadata(path)
        self.signature_defs = self._read_signature_defs()
        self.runners: dict[str, object] = {}  # by signature; attached by the data plane
        self.unloaded = False

    def _read_signature_defs(self):
        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString((self.path / "saved_model.pb").read_bytes())
        return proto.meta_graphs[0].signature_def

    @property
    def class_names(self) -> list[str]:
        return self.metadata.class_names if self.metadata else []

    def warm_up(self, largest_batch: int = 1) -> None:
        """Runs every signature on batches of zeros of 1, 2, 4, ... examples up to
        ``largest_batch`` (the model's ``max_batch_size``: no model call is larger), so that no
        request pays for a first call.

        The first call pays for tracing, and the first at a batch size TensorFlow's CPU kernels
        have not seen pays for preparing them: with the MNIST convnet here (2 cores) 25 ms for the
        first call of more than one example and 0.5 to 2 ms for each new size after it, paid by
        every request of the batch that happens to be first, e.g. right after a hot reload under
        load. Powers of two cost about two calls of the largest batch and leave each size not
        warmed 0.3 to 0.7 ms over its steady time."""
        sizes = warm_up_sizes(largest_batch)
        for signature in self.signatures.values():
            batched = all(spec.shape[:1] == (-1,) for spec in signature.inputs.values())
            for size in sizes if batched else [1]:
                signature(
                    {
                        name: np.zeros(_warm_up_shape(spec.shape, size), spec.dtype)
                        for name, spec in signature.inputs.items()
                    }
                )
