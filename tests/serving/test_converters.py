"""Wire tensors <-> numpy, round-trip tested for every dtype and both encodings."""

import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tritonclient.grpc import service_pb2

from serving import converters
from serving.client import numpy_to_request_tensor
from serving.errors import InvalidArgument, ResourceExhausted

DTYPES = [np.float32, np.float64, np.float16, np.uint8, np.int8, np.uint16, np.int16, np.int32,
          np.int64, np.bool_]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_proto_round_trip_typed_and_content(dtype):
    array = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    typed = converters.numpy_to_tensor_proto(array)
    assert not typed.tensor_content, "responses use the typed value fields"
    np.testing.assert_array_equal(converters.tensor_proto_to_numpy(typed, "x"), array)
    content = numpy_to_request_tensor(array)
    np.testing.assert_array_equal(converters.tensor_proto_to_numpy(content, "x"), array)


def test_strings_round_trip():
    array = np.array([b"a", b"bc"], dtype=object)
    proto = converters.numpy_to_tensor_proto(array)
    assert proto.dtype == types_pb2.DT_STRING
    assert converters.tensor_proto_to_numpy(proto, "s").tolist() == [b"a", b"bc"]


def test_tensor_content_size_mismatch_names_tensor_and_sizes():
    proto = numpy_to_request_tensor(np.zeros((2, 4), np.float32))
    proto.tensor_content = proto.tensor_content[:-4]
    with pytest.raises(
        InvalidArgument,
        match="Input 'images': tensor_content has 28 bytes, but shape \\[2, 4\\] of DT_FLOAT needs 32",
    ):
        converters.tensor_proto_to_numpy(proto, "images")


def test_typed_value_count_mismatch():
    proto = converters.numpy_to_tensor_proto(np.zeros((2, 3), np.int64))
    del proto.int64_val[-1]
    with pytest.raises(InvalidArgument, match="needs 6 values, but int64_val holds 5"):
        converters.tensor_proto_to_numpy(proto, "x")


@pytest.mark.parametrize("datatype", ["UINT8", "INT32", "INT64", "FP32", "FP64", "BOOL", "FP16"])
def test_infer_tensor_raw_and_contents(datatype):
    dtype = converters.V2_TO_NUMPY[datatype]
    array = (np.arange(6).reshape(2, 3) % 2).astype(dtype)
    tensor = service_pb2.ModelInferRequest.InferInputTensor(
        name="x", datatype=datatype, shape=[2, 3]
    )
    np.testing.assert_array_equal(
        converters.infer_tensor_to_numpy(tensor, converters.numpy_to_raw(array)), array
    )
    if datatype != "FP16":
        getattr(tensor.contents, converters.V2_CONTENTS_FIELD[datatype]).extend(
            array.ravel().tolist()
        )
        np.testing.assert_array_equal(converters.infer_tensor_to_numpy(tensor, None), array)


def test_infer_tensor_errors_name_the_tensor():
    tensor = service_pb2.ModelInferRequest.InferInputTensor(
        name="images", datatype="FLOAT", shape=[1]
    )
    with pytest.raises(InvalidArgument, match="Input 'images': unknown datatype 'FLOAT'"):
        converters.infer_tensor_to_numpy(tensor, b"")
    tensor.datatype = "UINT8"
    tensor.shape[:] = [2, 2]
    with pytest.raises(
        InvalidArgument,
        match="raw_input_contents has 3 bytes, but shape \\[2, 2\\] of UINT8 needs 4",
    ):
        converters.infer_tensor_to_numpy(tensor, b"abc")


def test_one_value_for_a_huge_shape_is_refused_before_allocating():
    """A 47-byte TensorProto asking for 3 GB: refused by size, nothing allocated."""
    proto = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_UINT8,
        int_val=[7],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in (4_000_000, 28, 28, 1)]
        ),
    )
    assert proto.ByteSize() < 64
    with pytest.raises(ResourceExhausted, match="3,136,000,000 bytes, over the server's limit"):
        converters.tensor_proto_to_numpy(proto, "images", max_bytes=64 << 20)


@pytest.mark.parametrize("dims", [(2**62, 28, 28, 1), (2**40, 2**40), (2**63 - 1,)])
def test_overflowing_shapes_report_their_true_size(dims):
    proto = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        float_val=[1.0],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]
        ),
    )
    expected = int(np.prod(np.array(dims, dtype=object))) * 4
    with pytest.raises(ResourceExhausted, match=f"is {expected:,} bytes"):
        converters.tensor_proto_to_numpy(proto, "x")
    tensor = service_pb2.ModelInferRequest().InferInputTensor(
        name="x", datatype="FP32", shape=list(dims)
    )
    with pytest.raises(ResourceExhausted, match=f"is {expected:,} bytes"):
        converters.infer_tensor_to_numpy(tensor, b"\0" * 4)


@pytest.mark.parametrize(("dtype", "value"), [(types_pb2.DT_UINT8, 300), (types_pb2.DT_INT8, -129)])
def test_integer_values_outside_the_dtype_are_refused(dtype, value):
    proto = tensor_pb2.TensorProto(
        dtype=dtype,
        int_val=[value],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=1)]
        ),
    )
    with pytest.raises(InvalidArgument, match=f"int_val holds {value}, outside the range of"):
        converters.tensor_proto_to_numpy(proto, "x")
