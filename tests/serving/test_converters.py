"""Wire tensors <-> numpy, round-trip tested for every dtype and both encodings."""

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2
from tritonclient.grpc import service_pb2

from serving import converters
from serving.client import numpy_to_request_tensor
from serving.errors import InvalidArgument

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
