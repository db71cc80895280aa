"""Generated requests against the converters and validation: every TensorProto and InferTensor
either converts to an array no larger than the limit, or is refused with InvalidArgument or
ResourceExhausted, quickly. Never another exception, never a large allocation."""

import math
import time

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tritonclient.grpc import service_pb2

from serving import converters
from serving.errors import InvalidArgument, ResourceExhausted
from serving.plane.runtime import Signature, TensorSpec
from serving.plane.validation import validate_inputs

LIMIT = 1 << 20
SIGNATURE = Signature(
    "serving_default",
    {"images": TensorSpec("images", np.dtype(np.uint8), (-1, 4, 4, 1))},
    {},
    function=None,
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

dims = st.one_of(
    st.integers(0, 6), st.integers(-3, 2**63 - 1), st.sampled_from([2**31, 2**62, 4_000_000])
)
shapes = st.lists(dims, max_size=5)
ints = st.integers(-(2**31), 2**31 - 1)
floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


@st.composite
def tensor_protos(draw):
    dtype = draw(st.sampled_from([*converters.TF_TO_NUMPY, types_pb2.DT_COMPLEX64]))
    proto = tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=max(d, -(2**63))) for d in draw(shapes)]
        ),
    )
    encoding = draw(st.sampled_from(["content", "typed", "none"]))
    if encoding == "content":
        proto.tensor_content = draw(st.binary(max_size=256))
    elif encoding == "typed":
        field = draw(st.sampled_from(sorted(set(converters.TF_VALUE_FIELD.values()))))
        values = {
            "float_val": st.lists(floats, max_size=20),
            "double_val": st.lists(floats, max_size=20),
            "half_val": st.lists(st.integers(0, 65535), max_size=20),
            "int_val": st.lists(ints, max_size=20),
            "int64_val": st.lists(st.integers(-(2**63), 2**63 - 1), max_size=20),
            "bool_val": st.lists(st.booleans(), max_size=20),
            "string_val": st.lists(st.binary(max_size=8), max_size=20),
        }[field]
        getattr(proto, field).extend(draw(values))
    return proto


@st.composite
def infer_tensors(draw):
    datatype = draw(st.sampled_from([*converters.V2_TO_NUMPY, "FLOAT", ""]))
    tensor = service_pb2.ModelInferRequest.InferInputTensor(
        name="images",
        datatype=datatype,
        shape=[max(d, -(2**63)) for d in draw(shapes)],
    )
    raw = draw(st.one_of(st.none(), st.binary(max_size=256)))
    if raw is None and datatype in converters.V2_CONTENTS_FIELD:
        field = converters.V2_CONTENTS_FIELD[datatype]
        values = {
            "bool_contents": st.booleans(),
            "int_contents": ints,
            "int64_contents": st.integers(-(2**63), 2**63 - 1),
            "uint_contents": st.integers(0, 2**32 - 1),
            "uint64_contents": st.integers(0, 2**64 - 1),
            "fp32_contents": floats,
            "fp64_contents": floats,
            "bytes_contents": st.binary(max_size=8),
        }[field]
        getattr(tensor.contents, field).extend(draw(st.lists(values, max_size=20)))
    return tensor, raw


def declared_bytes(shape, dtype) -> int | None:
    """What a request's declared shape would take, with empty dimensions spanned as the
    converters bound them; None for a shape or dtype no array can have."""
    if dtype is None or any(d < 0 for d in shape):
        return None
    itemsize = converters.OBJECT_ITEMSIZE if dtype == np.object_ else np.dtype(dtype).itemsize
    return math.prod(d for d in shape if d) * itemsize


def check_outcome(convert, declared: int | None):
    """Converts, or is refused with a message naming the input: ResourceExhausted only for a
    shape over the limit, InvalidArgument for everything else."""
    start = time.perf_counter()
    try:
        array = convert()
    except ResourceExhausted as error:
        assert declared is not None and declared > LIMIT, error
        assert "Input 'images'" in str(error) and f"{LIMIT:,} bytes" in str(error)
        return
    except InvalidArgument as error:
        assert "'images'" in str(error), error
        return
    finally:
        assert time.perf_counter() - start < 1.0
    assert isinstance(array, np.ndarray)
    assert array.size * max(array.itemsize, 1) <= LIMIT
    try:
        validate_inputs(SIGNATURE, {"images": array}, max_batch=64)
    except InvalidArgument as error:
        assert "images" in str(error), error


EMPTY_BESIDE_HUGE = tensor_pb2.TensorProto(  # found by this test: numpy's size overflowed
    dtype=types_pb2.DT_FLOAT,
    tensor_shape=tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in (0, 38870, 38963, 38974, 39065)]
    ),
)


@FUZZ
@given(tensor_protos())
@example(EMPTY_BESIDE_HUGE)
def test_any_tensor_proto_converts_or_is_refused(proto):
    shape = [d.size for d in proto.tensor_shape.dim]
    declared = declared_bytes(shape, converters.TF_TO_NUMPY.get(proto.dtype))
    check_outcome(lambda: converters.tensor_proto_to_numpy(proto, "images", LIMIT), declared)


@FUZZ
@given(infer_tensors())
def test_any_infer_tensor_converts_or_is_refused(case):
    tensor, raw = case
    declared = declared_bytes(list(tensor.shape), converters.V2_TO_NUMPY.get(tensor.datatype))
    check_outcome(lambda: converters.infer_tensor_to_numpy(tensor, raw, LIMIT), declared)
