"""One loaded model version: its SavedModel's signatures and how to call them."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from core.artifact import read_metadata
from serving.errors import InvalidArgument

DEFAULT_SIGNATURE = "serving_default"  # what a request that names no signature runs


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

    @property
    def batchable(self) -> bool:
        """Whether every input and output has an unknown first dimension, the batch: requests
        can then be merged along it and the outputs split back by rows."""
        specs = [*self.inputs.values(), *self.outputs.values()]
        return all(spec.shape[:1] == (-1,) for spec in specs)

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs for ``inputs``; InvalidArgument with TensorFlow's reason where the model's
        own ops refuse them (a serialized example it cannot parse, a failed assertion)."""
        try:
            outputs = self.function(**{k: tf.convert_to_tensor(v) for k, v in inputs.items()})
        except tf.errors.InvalidArgumentError as error:
            raise InvalidArgument(
                f"The model refused the input: {_reason(error.message)}"
            ) from None
        return {k: v.numpy() for k, v in outputs.items()}


def _reason(message: str) -> str:
    """The line of a TensorFlow error that says what went wrong, without the graph's traceback
    (where the failing op was defined) and node names around it."""
    noise = ("Graph execution error", "Detected at node", "File ", "[[{{node", "[Op:")
    lines = [line.strip() for line in message.splitlines()]
    reasons = [line for line in lines if line and not line.startswith(noise)]
    return (reasons or lines or ["(no message)"])[0]


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
