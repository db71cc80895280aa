"""Tensors between the wire and numpy: TF Serving's TensorProto and the Open Inference Protocol's
InferTensor. Pure numpy, no TensorFlow ops, so converting costs microseconds.

A tensor's size is checked against ``max_bytes`` (the server's message limit) before anything is
allocated: a TensorProto may give one value for a whole shape, which TensorFlow broadcasts, so a
request of a few bytes could otherwise ask for gigabytes. Sizes are computed with Python integers,
which do not overflow.
"""

import math
import struct

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from serving.errors import InvalidArgument, ResourceExhausted

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
OBJECT_ITEMSIZE = 8  # a numpy object array holds one pointer per element
RAW_LENGTH = struct.Struct("<I")  # the length before each BYTES element in raw contents

# TensorProto dtype <-> numpy dtype, and the typed value field holding each dtype.
TF_TO_NUMPY = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_HALF: np.float16,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_UINT16: np.uint16,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_BOOL: np.bool_,
    types_pb2.DT_STRING: np.object_,
}
NUMPY_TO_TF = {np.dtype(v): k for k, v in TF_TO_NUMPY.items()}
TF_VALUE_FIELD = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
}

# Open Inference Protocol datatypes <-> numpy, and the InferTensorContents field of each.
V2_TO_NUMPY = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
    "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64, "BYTES": np.object_,
}  # fmt: skip
NUMPY_TO_V2 = {np.dtype(v): k for k, v in V2_TO_NUMPY.items()}
V2_CONTENTS_FIELD = {
    "BOOL": "bool_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
    "UINT32": "uint_contents", "UINT64": "uint64_contents", "INT8": "int_contents",
    "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}  # fmt: skip


def tf_dtype_name(dtype: int) -> str:
    return types_pb2.DataType.Name(dtype)


def _shape_from_proto(shape: tensor_shape_pb2.TensorShapeProto, name: str) -> tuple[int, ...]:
    dims = tuple(d.size for d in shape.dim)
    if any(d < 0 for d in dims):
        raise InvalidArgument(
            f"Input {name!r}: tensor_shape {list(dims)} has a negative dimension."
        )
    return dims


def _check_size(shape: tuple[int, ...], dtype: np.dtype, name: str, dtype_name: str, max_bytes):
    """The element count of ``shape``; ResourceExhausted when the array would exceed
    ``max_bytes``, before anything is allocated."""
    count = math.prod(shape)
    itemsize = OBJECT_ITEMSIZE if dtype == np.object_ else dtype.itemsize
    if count * itemsize > max_bytes:
        raise ResourceExhausted(
            f"Input {name!r}: shape {list(shape)} of {dtype_name} is {count * itemsize:,} bytes, "
            f"over the server's limit of {max_bytes:,} bytes per tensor."
        )
    # An empty tensor holds nothing, but numpy still refuses a shape whose other dimensions
    # would overflow its size: those dimensions answer to the same limit.
    spanned = math.prod(d for d in shape if d) * itemsize
    if spanned > max_bytes:
        raise ResourceExhausted(
            f"Input {name!r}: shape {list(shape)} of {dtype_name} spans {spanned:,} bytes beside "
            f"its empty dimension, over the server's limit of {max_bytes:,} bytes per tensor."
        )
    return count


def _typed_values(raw, dtype: np.dtype, name: str, what: str) -> np.ndarray:
    """Repeated proto values as ``dtype``. Integers travel in wider fields (``int_val`` holds
    uint8), so a value outside the dtype's range is refused rather than wrapped around."""
    if dtype == np.object_:
        return np.array(list(raw), dtype=object)
    if dtype.kind not in "iu":
        return np.asarray(raw, dtype=dtype)
    wide = np.asarray(raw, dtype=np.uint64 if dtype == np.uint64 else np.int64)
    limits = np.iinfo(dtype)
    if wide.size and (wide.min() < limits.min or wide.max() > limits.max):
        bad = wide[(wide < limits.min) | (wide > limits.max)][0]
        raise InvalidArgument(
            f"Input {name!r}: {what} holds {bad}, outside the range of {dtype.name} "
            f"[{limits.min}, {limits.max}]."
        )
    return wide.astype(dtype)


def _fill(values, shape: tuple[int, ...], expected: int, name: str, what: str) -> np.ndarray:
    """Typed values reshaped to ``shape``: a single value is broadcast, as TensorFlow does."""
    if len(values) == expected:
        return values.reshape(shape)
    if len(values) == 1 and expected > 1:
        return np.full(shape, values[0], dtype=values.dtype)
    raise InvalidArgument(
        f"Input {name!r}: shape {list(shape)} needs {expected} values, but {what} holds "
        f"{len(values)}."
    )


def tensor_proto_to_numpy(
    proto: tensor_pb2.TensorProto, name: str, max_bytes: int = DEFAULT_MAX_BYTES
) -> np.ndarray:
    """A TensorProto (``tensor_content`` or typed value fields) as a numpy array.

    Raises:
        InvalidArgument: a dtype, shape or value count that does not fit.
        ResourceExhausted: an array larger than ``max_bytes``.
    """
    if proto.dtype not in TF_TO_NUMPY:
        raise InvalidArgument(f"Input {name!r}: unsupported dtype {tf_dtype_name(proto.dtype)}.")
    dtype = np.dtype(TF_TO_NUMPY[proto.dtype])
    shape = _shape_from_proto(proto.tensor_shape, name)
    count = _check_size(shape, dtype, name, tf_dtype_name(proto.dtype), max_bytes)
    if proto.tensor_content:
        if dtype == np.object_:
            raise InvalidArgument(f"Input {name!r}: DT_STRING cannot use tensor_content.")
        expected = count * dtype.itemsize
        if len(proto.tensor_content) != expected:
            raise InvalidArgument(
                f"Input {name!r}: tensor_content has {len(proto.tensor_content)} bytes, but shape "
                f"{list(shape)} of {tf_dtype_name(proto.dtype)} needs {expected} bytes."
            )
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    field = TF_VALUE_FIELD[proto.dtype]
    raw = getattr(proto, field)
    if proto.dtype == types_pb2.DT_HALF:  # half_val holds the float16 bit patterns
        values = _typed_values(raw, np.dtype(np.uint16), name, field).view(np.float16)
    else:
        values = _typed_values(raw, dtype, name, field)
    return _fill(values, shape, count, name, field)


def numpy_to_tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A numpy array as a TensorProto with typed value fields, as TF Serving answers by default."""
    array = np.asarray(array)
    dtype = NUMPY_TO_TF[array.dtype]
    proto = tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape]
        ),
    )
    flat = array.ravel()
    if dtype == types_pb2.DT_HALF:
        proto.half_val.extend(flat.view(np.uint16).tolist())
    else:
        getattr(proto, TF_VALUE_FIELD[dtype]).extend(flat.tolist())
    return proto


def infer_tensor_to_numpy(
    tensor, raw: bytes | None, max_bytes: int = DEFAULT_MAX_BYTES
) -> np.ndarray:
    """An Open Inference Protocol input (``contents`` or its ``raw_input_contents``) as numpy.

    Raises:
        InvalidArgument: a datatype, shape or value count that does not fit.
        ResourceExhausted: an array larger than ``max_bytes``.
    """
    name = tensor.name
    if tensor.datatype not in V2_TO_NUMPY:
        raise InvalidArgument(
            f"Input {name!r}: unknown datatype {tensor.datatype!r}; expected one of "
            f"{', '.join(V2_TO_NUMPY)}."
        )
    dtype = np.dtype(V2_TO_NUMPY[tensor.datatype])
    shape = tuple(int(d) for d in tensor.shape)
    if any(d < 0 for d in shape):
        raise InvalidArgument(f"Input {name!r}: shape {list(shape)} has a negative dimension.")
    count = _check_size(shape, dtype, name, tensor.datatype, max_bytes)
    if raw is not None:
        if dtype == np.object_:
            return bytes_from_raw(raw, count, name).reshape(shape)
        expected = count * dtype.itemsize
        if len(raw) != expected:
            raise InvalidArgument(
                f"Input {name!r}: raw_input_contents has {len(raw)} bytes, but shape "
                f"{list(shape)} of {tensor.datatype} needs {expected} bytes."
            )
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    if tensor.datatype == "FP16":
        raise InvalidArgument(f"Input {name!r}: FP16 inputs must use raw_input_contents.")
    values = getattr(tensor.contents, V2_CONTENTS_FIELD[tensor.datatype])
    if len(values) != count:
        raise InvalidArgument(
            f"Input {name!r}: shape {list(shape)} needs {count} values, but "
            f"contents holds {len(values)}."
        )
    array = _typed_values(values, dtype, name, "contents")
    return array.reshape(shape)


def numpy_to_raw(array: np.ndarray) -> bytes:
    """Little-endian bytes of a numpy array, for ``raw_output_contents``; BYTES as each element's
    length (4 bytes, little-endian) then the element, as Triton and its clients write them."""
    if array.dtype == np.object_:
        return b"".join(RAW_LENGTH.pack(len(item)) + item for item in array.ravel())
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def bytes_from_raw(raw: bytes, count: int, name: str) -> np.ndarray:
    """``count`` BYTES elements from ``raw_input_contents`` (each its 4-byte little-endian length,
    then its bytes), flat; InvalidArgument naming where it does not add up."""
    items, offset = [], 0
    for index in range(count):
        if offset + RAW_LENGTH.size > len(raw):
            raise InvalidArgument(
                f"Input {name!r}: raw_input_contents ends at byte {len(raw)}, before element "
                f"{index} of {count}; BYTES elements are each a 4-byte little-endian length and "
                "that many bytes."
            )
        (length,) = RAW_LENGTH.unpack_from(raw, offset)
        offset += RAW_LENGTH.size
        if offset + length > len(raw):
            raise InvalidArgument(
                f"Input {name!r}: element {index} of raw_input_contents says {length} bytes, but "
                f"only {len(raw) - offset} follow."
            )
        items.append(raw[offset : offset + length])
        offset += length
    if offset != len(raw):
        raise InvalidArgument(
            f"Input {name!r}: raw_input_contents has {len(raw) - offset} bytes after its {count} "
            "elements."
        )
    array = np.empty(count, dtype=object)
    array[:] = items
    return array
