"""JSON bodies of the REST APIs <-> numpy: TensorFlow Serving's row (``instances``) and columnar
(``inputs``) formats, with strings as text and ``{"b64": ...}`` for bytes, its ``examples`` of
features, and the Open Inference Protocol's tensors (``{"name", "shape", "datatype", "data"}``).
Sizes are bounded by the body, which the HTTP server already limits to ``max_message_bytes``;
values are checked against their dtype's range.
"""

import base64
import binascii
import json
import math
from types import SimpleNamespace

import numpy as np
from tensorflow.core.example import example_pb2

from core.errors import shown
from core.images import ImageError, decode_image
from serving.converters import (
    DEFAULT_MAX_BYTES,
    NUMPY_TO_V2,
    V2_TO_NUMPY,
    infer_tensor_to_numpy,
    numpy_to_raw,
)
from serving.errors import InvalidArgument, Unimplemented
from serving.plane.runtime import TensorSpec

MAX_NESTING = 64
"""Most levels of nested lists in a tensor's JSON value: NumPy's limit on dimensions."""


def decode_b64(value, name: str, depth: int = 0):
    """``{"b64": "..."}`` -> bytes; other values unchanged, lists recursively (at most
    ``MAX_NESTING`` deep, so no body can exhaust the interpreter's stack)."""
    if depth > MAX_NESTING:
        raise InvalidArgument(
            f"Input {name!r}: lists nested deeper than {MAX_NESTING} levels; a tensor needs one "
            "level per dimension."
        )
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise InvalidArgument(
                f'Input {name!r}: objects in tensors must be {{"b64": "..."}}. Received: '
                f"{sorted(value)}."
            )
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError) as error:
            raise InvalidArgument(f"Input {name!r}: invalid base64 ({error}).") from None
    if isinstance(value, list):
        return [decode_b64(item, name, depth + 1) for item in value]
    return value


def _images_from_bytes(items: list, spec: TensorSpec, name: str) -> np.ndarray:
    """uint8 image inputs given as encoded images (``{"b64": PNG or JPEG}``), one per example."""
    shape = tuple(spec.shape[1:])
    try:
        return np.stack([decode_image(item, shape, f"Input {name!r}") for item in items])
    except (ImageError, ValueError) as error:
        raise InvalidArgument(str(error)) from None


def _strings(value, spec: TensorSpec, name: str) -> np.ndarray:
    """A string input: JSON strings (as UTF-8) and ``{"b64": ...}`` objects (decoded already),
    in nested lists, as an object array of bytes."""

    def encode(item):
        if isinstance(item, list):
            return [encode(part) for part in item]
        if isinstance(item, str):
            return item.encode()
        if isinstance(item, bytes):
            return item
        raise InvalidArgument(
            f"Input {name!r}: value {item!r} is not a string; expected strings (or "
            f'{{"b64": "..."}} for binary data) of shape {list(spec.shape)}.'
        )

    array = np.array(encode(value), dtype=object)
    if any(not isinstance(item, bytes) for item in array.ravel()):
        raise InvalidArgument(
            f"Input {name!r}: a ragged list; expected strings of shape {list(spec.shape)}."
        )
    return array


def to_array(value, spec: TensorSpec, name: str) -> np.ndarray:
    """A JSON value (nested lists, numbers, strings, b64 objects) as an array of ``spec``'s
    dtype."""
    value = decode_b64(value, name)
    if spec.dtype == object:
        return _strings(value, spec, name)
    if isinstance(value, list) and value and all(isinstance(v, bytes) for v in value):
        if spec.dtype == np.uint8 and len(spec.shape) == 4:
            return _images_from_bytes(value, spec, name)
        raise InvalidArgument(
            f"Input {name!r}: bytes given, but the signature expects {spec.dtype.name} values."
        )
    try:
        wide = np.asarray(value, dtype=np.float64 if spec.dtype.kind == "f" else object)
    except ValueError:
        raise InvalidArgument(
            f"Input {name!r}: a ragged or non-numeric list; expected {spec.dtype.name} values "
            f"of shape {list(spec.shape)}."
        ) from None
    if wide.dtype == object:
        kind, what = (bool, "a boolean") if spec.dtype.kind == "b" else ((int, bool), "an integer")
        wrong = next((v for v in wide.ravel() if not isinstance(v, kind)), None)
        if wrong is not None:
            raise InvalidArgument(
                f"Input {name!r}: value {wrong!r} is not {what}; expected "
                f"{spec.dtype.name} values of shape {list(spec.shape)}."
            )
        if spec.dtype.kind in "iu":
            limits = np.iinfo(spec.dtype)
            outside = [v for v in wide.ravel() if not limits.min <= v <= limits.max]
            if outside:
                raise InvalidArgument(
                    f"Input {name!r}: value {outside[0]} is outside the range of "
                    f"{spec.dtype.name} [{limits.min}, {limits.max}]."
                )
    return wide.astype(spec.dtype)


def json_example(features) -> example_pb2.Example:
    """A tf.Example from a JSON object of features, as TensorFlow Serving's REST API reads
    ``examples``: integers (and booleans) as an int64 list, numbers with a fraction as a float
    list, strings (UTF-8) and ``{"b64": ...}`` as a bytes list; a value or a list of them."""
    if not isinstance(features, dict):
        raise InvalidArgument(
            f"Each example must be an object of features. Received: {type(features).__name__}."
        )
    example = example_pb2.Example()
    for name, value in features.items():
        values = decode_b64(value if isinstance(value, list) else [value], name)
        feature = example.features.feature[name]
        if all(isinstance(v, (str, bytes)) for v in values):
            feature.bytes_list.value.extend(v.encode() if isinstance(v, str) else v for v in values)
        elif all(isinstance(v, (int, bool)) for v in values):
            feature.int64_list.value.extend(int(v) for v in values)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            feature.float_list.value.extend(float(v) for v in values)
        else:
            raise InvalidArgument(
                f"Feature {name!r}: values must be all numbers or all strings (or "
                f'{{"b64": ...}}), one value or a flat list of them. Received: {value!r:.100}.'
            )
    return example


def row_inputs(instances, inputs: dict[str, TensorSpec]) -> dict[str, np.ndarray]:
    """TensorFlow Serving's row format: a list of examples, each a value (one input) or an
    object of named inputs."""
    if not isinstance(instances, list) or not instances:
        raise InvalidArgument("'instances' must be a non-empty list of examples.")
    if all(isinstance(row, dict) and "b64" not in row for row in instances):
        names = set(instances[0])
        if any(set(row) != names for row in instances):
            raise InvalidArgument("Every instance must name the same inputs.")
        return {
            name: to_array([row[name] for row in instances], _spec(inputs, name), name)
            for name in names
        }
    if len(inputs) != 1:
        raise InvalidArgument(
            f"The signature takes inputs {sorted(inputs)}: give each instance as an object."
        )
    ((name, spec),) = inputs.items()
    return {name: to_array(instances, spec, name)}


def columnar_inputs(columns, inputs: dict[str, TensorSpec]) -> dict[str, np.ndarray]:
    """TensorFlow Serving's columnar format: one value per input, batch first."""
    if isinstance(columns, dict):
        return {name: to_array(value, _spec(inputs, name), name) for name, value in columns.items()}
    if len(inputs) != 1:
        raise InvalidArgument(f"The signature takes inputs {sorted(inputs)}: give an object.")
    ((name, spec),) = inputs.items()
    return {name: to_array(columns, spec, name)}


def _spec(inputs: dict[str, TensorSpec], name: str) -> TensorSpec:
    if name not in inputs:
        raise InvalidArgument(
            f"Unexpected input {name!r}; the signature takes inputs {sorted(inputs)}."
        )
    return inputs[name]


def json_value(name: str, array: np.ndarray):
    """An output as TensorFlow Serving's REST API writes it: numbers as they are, strings as
    text, and ``{"b64": ...}`` for an output whose name ends in ``_bytes`` or whose bytes are not
    UTF-8 text."""
    if array.dtype != object:
        return array.tolist()

    def text(item):
        if isinstance(item, bytes):
            if not name.endswith("_bytes"):
                try:
                    return item.decode()
                except UnicodeDecodeError:
                    pass
            return {"b64": base64.b64encode(item).decode()}
        return [text(part) for part in item] if isinstance(item, list) else item

    return text(array.tolist())


def columnar_outputs(outputs: dict[str, np.ndarray]):
    """``outputs``: the only output's value, or an object of all of them."""
    columns = {name: json_value(name, value) for name, value in outputs.items()}
    return next(iter(columns.values())) if len(columns) == 1 else columns


def row_outputs(outputs: dict[str, np.ndarray]) -> list:
    """``predictions``: per example, the value of the only output or an object of all.
    InvalidArgument when an output has no row per example (a scalar, a fixed-size list), which
    only the columnar format can answer."""
    counts = {
        name: value.shape[0] if value.ndim else None for name, value in sorted(outputs.items())
    }
    if len(set(counts.values())) > 1 or None in counts.values():
        raise InvalidArgument(
            f"The outputs have {counts} rows; the row format ('instances') needs one row per "
            "example in every output. Send 'inputs' (columnar) to get them as they are."
        )
    lists = {name: json_value(name, value) for name, value in outputs.items()}
    if len(lists) == 1:
        return next(iter(lists.values()))
    count = next(iter(counts.values()))
    return [{name: values[i] for name, values in lists.items()} for i in range(count)]


def split_binary_body(raw: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary tensor data after it (the binary data extension: the
    ``Inference-Header-Content-Length`` header gives the JSON's length); all JSON without it."""
    if header_length is None:
        return raw, b""
    if not header_length.isdigit() or int(header_length) > len(raw):
        raise InvalidArgument(
            f"Inference-Header-Content-Length must be the JSON header's length in bytes, at most "
            f"the body's {len(raw)}. Received: {header_length!r}"
        )
    return raw[: int(header_length)], raw[int(header_length) :]


def json_object(value, what: str) -> dict:
    """A JSON field that must be an object: ``{}`` when absent (null), InvalidArgument naming
    ``what`` and the value otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} must be an object. Received: {shown(value)}")
    return value


def json_string(value, what: str) -> str:
    """A JSON field that must be a string; InvalidArgument naming ``what`` and the value."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string. Received: {shown(value)}")
    return value


def requested_outputs(body: dict) -> list[str]:
    """The names in an Open Inference Protocol request's ``outputs`` (objects with a string
    ``name``); empty when it asks for none."""
    outputs = body.get("outputs") or []
    if not isinstance(outputs, list):
        raise InvalidArgument(f"'outputs' must be a list of objects. Received: {shown(outputs)}")
    return [json_string(json_object(o, "Each output").get("name"), "An output's 'name'")
            for o in outputs]  # fmt: skip


def _binary_size(tensor: dict, name: str) -> int | None:
    size = json_object(tensor.get("parameters"), f"Input {name!r}: 'parameters'").get(
        "binary_data_size"
    )
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise InvalidArgument(f"Input {name!r}: binary_data_size must be a byte count >= 0.")
    return size


def v2_inputs(body_inputs, inputs: dict[str, TensorSpec], binary: bytes = b"",
              max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, np.ndarray]:  # fmt: skip
    """Open Inference Protocol request tensors: ``{"name", "shape", "datatype", "data"}``, or
    with ``parameters.binary_data_size`` instead of ``data``, their bytes taken in order from
    ``binary`` (the binary data extension, as perf_analyzer and tritonclient.http send)."""
    if not isinstance(body_inputs, list) or not body_inputs:
        raise InvalidArgument("'inputs' must be a non-empty list of tensors.")
    arrays, offset = {}, 0
    for tensor in body_inputs:
        if not isinstance(tensor, dict) or not {"name", "shape", "datatype"} <= set(tensor):
            raise InvalidArgument("Each input needs 'name', 'shape', 'datatype' and 'data'.")
        name = json_string(tensor["name"], "An input's 'name'")
        datatype, shape = tensor["datatype"], tensor["shape"]
        if name in arrays:
            raise InvalidArgument(f"Input {shown(name)} appears twice.")
        if not isinstance(datatype, str) or datatype not in V2_TO_NUMPY:
            raise InvalidArgument(f"Input {name!r}: unsupported datatype {shown(datatype)}.")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise InvalidArgument(
                f"Input {name!r}: shape must be a list of sizes >= 0. Received: {shown(shape)}"
            )
        spec = _spec(inputs, name)
        if np.dtype(V2_TO_NUMPY[datatype]) != spec.dtype:
            raise InvalidArgument(
                f"Input {name!r}: expected datatype {NUMPY_TO_V2[spec.dtype]}, received {datatype}."
            )
        size = _binary_size(tensor, name)
        if size is not None:
            if offset + size > len(binary):
                raise InvalidArgument(
                    f"Input {name!r}: binary_data_size {size} runs past the {len(binary)} bytes "
                    "after the JSON header."
                )
            described = SimpleNamespace(name=name, datatype=datatype, shape=shape)
            chunk = binary[offset : offset + size]
            arrays[name] = infer_tensor_to_numpy(described, chunk, max_bytes)
            offset += size
            continue
        if "data" not in tensor:
            raise InvalidArgument("Each input needs 'name', 'shape', 'datatype' and 'data'.")
        flat = to_array(tensor["data"], spec, name).reshape(-1)
        if flat.size != math.prod(shape):
            raise InvalidArgument(
                f"Input {name!r}: shape {shape} needs {math.prod(shape)} values, but data holds "
                f"{flat.size}."
            )
        arrays[name] = flat.reshape(shape)
    if offset != len(binary):
        raise InvalidArgument(
            f"{len(binary) - offset} bytes after the JSON header belong to no input: give each "
            "binary input its parameters.binary_data_size."
        )
    return arrays


def _v2_data(name: str, array: np.ndarray) -> list:
    """An output's values, flat; BYTES as text (the JSON binding has no other way to write
    them), Unimplemented for bytes that are not UTF-8."""
    values = array.ravel().tolist()
    if array.dtype != object:
        return values
    try:
        return [v.decode() if isinstance(v, bytes) else v for v in values]
    except UnicodeDecodeError:
        raise Unimplemented(
            f"Output {name!r} holds bytes that are not UTF-8 text, which the JSON binding cannot "
            "carry; ask over gRPC (ModelInfer), where BYTES travel as they are."
        ) from None


def v2_outputs(outputs: dict[str, np.ndarray], names: list[str]) -> list[dict]:
    return [
        {
            "name": name,
            "shape": list(outputs[name].shape),
            "datatype": NUMPY_TO_V2[outputs[name].dtype],
            "data": _v2_data(name, outputs[name]),
        }
        for name in names
    ]


def _binary_flags(body: dict):
    """Whether an output goes back as binary data: its own ``parameters.binary_data``, else the
    request's ``parameters.binary_data_output``."""
    every = bool(json_object(body.get("parameters"), "'parameters'").get("binary_data_output"))
    flags = {
        o["name"]: json_object(o.get("parameters"), f"Output {o['name']!r}: 'parameters'").get(
            "binary_data"
        )
        for o in body.get("outputs") or []
    }
    return lambda name: every if flags.get(name) is None else bool(flags[name])


def v2_response(response: dict, outputs: dict[str, np.ndarray], names: list[str],
                body: dict) -> tuple[bytes, int | None]:  # fmt: skip
    """The response body, and the JSON header's length when binary outputs follow it."""
    is_binary = _binary_flags(body)
    tensors, chunks = [], []
    for name in names:
        if not is_binary(name):
            tensors.extend(v2_outputs(outputs, [name]))
            continue
        raw = numpy_to_raw(np.asarray(outputs[name]))
        tensors.append({"name": name, "shape": list(outputs[name].shape),
                        "datatype": NUMPY_TO_V2[outputs[name].dtype],
                        "parameters": {"binary_data_size": len(raw)}})  # fmt: skip
        chunks.append(raw)
    header = json.dumps({**response, "outputs": tensors}).encode()
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)
