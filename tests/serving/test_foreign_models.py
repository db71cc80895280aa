"""SavedModels not exported by the zoo, served as TensorFlow Serving serves them: signatures whose
outputs or inputs have no batch axis answer every concurrent request, and string inputs and
outputs travel over REST as text or base64 and over the Open Inference Protocol's raw contents
as Triton writes them."""

import asyncio
import base64

import grpc
import numpy as np
import pytest
import tensorflow as tf
import tritonclient.grpc as triton
from helpers import loopback_settings
from tensorflow_serving.apis import prediction_service_pb2_grpc
from test_rest_api import call
from tritonclient.grpc import service_pb2, service_pb2_grpc

from serving.client import predict_request
from serving.process.server import ServerThread


class _Unbatched(tf.Module):
    """``total`` has no batch axis (a scalar per call); ``single`` takes exactly one example."""

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    def total(self, x):
        return {"doubled": x * 2.0, "examples": tf.shape(x)[0]}

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
    def single(self, x):
        return {"doubled": x * 2.0}


def _answers(port: int, signature: str, count: int) -> list:
    async def all_at_once():
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            requests = [
                predict_request("m", {"x": np.full((1, 4), i, np.float32)}, signature=signature)
                for i in range(count)
            ]
            replies = await asyncio.gather(*[stub.Predict(r, timeout=20) for r in requests])
        return [{k: tf.make_ndarray(v) for k, v in reply.outputs.items()} for reply in replies]

    return asyncio.run(all_at_once())


def test_signatures_without_a_batch_axis_answer_concurrent_requests(tmp_path):
    module = _Unbatched()
    signatures = {"serving_default": module.total, "single": module.single}
    tf.saved_model.save(module, str(tmp_path / "m" / "1"), signatures=signatures)
    with ServerThread(loopback_settings(tmp_path)) as running:
        totals = _answers(running.port, "serving_default", 16)
        singles = _answers(running.port, "single", 16)
    for i, answer in enumerate(totals):
        assert answer["doubled"].tolist() == [[2.0 * i] * 4] and int(answer["examples"]) == 1
    for i, answer in enumerate(singles):
        assert answer["doubled"].tolist() == [[2.0 * i] * 4]


class _Text(tf.Module):
    """String inputs and outputs: text in, text and binary out."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def shout(self, text):
        return {
            "upper": tf.strings.upper(text),
            "length": tf.strings.length(text),
            "marker_bytes": tf.fill(tf.shape(text), tf.constant(b"\xff\x00")),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def summary(self, text):
        return {"upper": tf.strings.upper(text), "calls": tf.constant(1)}


@pytest.fixture(scope="module")
def text_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    module = _Text()
    signatures = {"serving_default": module.shout, "summary": module.summary}
    tf.saved_model.save(module, str(root / "text" / "1"), signatures=signatures)
    with ServerThread(loopback_settings(root)) as running:
        yield running


def test_rest_takes_strings_as_text_or_b64_and_answers_text_and_b64(text_server):
    port = text_server.rest_port
    b64 = base64.b64encode(b"caf\xc3\xa9").decode()
    status, body = call(port, "/v1/models/text:predict", {"instances": ["ab", {"b64": b64}]})
    assert status == 200, body
    marker = {"b64": base64.b64encode(b"\xff\x00").decode()}  # "_bytes": always base64
    assert body["predictions"] == [
        {"upper": "AB", "length": 2, "marker_bytes": marker},
        {"upper": "CAFé", "length": 5, "marker_bytes": marker},
    ]
    status, body = call(port, "/v1/models/text:predict", {"inputs": {"text": ["x"]}})
    assert status == 200 and body["outputs"]["upper"] == ["X"], body


def test_rest_row_format_refuses_outputs_without_a_row_per_example(text_server):
    request = {"signature_name": "summary", "instances": ["a", "b"]}
    status, body = call(text_server.rest_port, "/v1/models/text:predict", request)
    assert status == 400
    assert "The outputs have {'calls': None, 'upper': 2} rows" in body["error"]
    assert "Send 'inputs' (columnar)" in body["error"]
    request = {"signature_name": "summary", "inputs": ["a", "b"]}
    status, body = call(text_server.rest_port, "/v1/models/text:predict", request)
    assert status == 200 and body["outputs"] == {"upper": ["A", "B"], "calls": 1}, body


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        (["a", 3], "Input 'text': value 3 is not a string; expected strings"),
        ([["a"], ["b", "c"]], "Input 'text': a ragged list; expected strings of shape [-1]."),
    ],
)
def test_rest_refuses_string_inputs_that_are_not_strings(text_server, instances, message):
    status, body = call(text_server.rest_port, "/v1/models/text:predict", {"instances": instances})
    assert status == 400 and message in body["error"], body


def test_v2_rest_carries_bytes_as_text_and_refuses_binary_it_cannot_write(text_server):
    tensor = {"name": "text", "shape": [2], "datatype": "BYTES", "data": ["ab", "c"]}
    request = {"inputs": [tensor], "outputs": [{"name": "upper"}, {"name": "length"}]}
    status, body = call(text_server.rest_port, "/v2/models/text/infer", request)
    assert status == 200, body
    assert body["outputs"] == [
        {"name": "upper", "shape": [2], "datatype": "BYTES", "data": ["AB", "C"]},
        {"name": "length", "shape": [2], "datatype": "INT32", "data": [2, 1]},
    ]
    status, body = call(text_server.rest_port, "/v2/models/text/infer", {"inputs": [tensor]})
    assert status == 501
    assert "Output 'marker_bytes' holds bytes that are not UTF-8 text" in body["error"]


def test_triton_clients_send_and_receive_bytes_as_triton_writes_them(text_server):
    """tritonclient puts BYTES in raw contents, each element its 4-byte length then its bytes."""
    client = triton.InferenceServerClient(f"127.0.0.1:{text_server.port}")
    text = triton.InferInput("text", [2], "BYTES")
    text.set_data_from_numpy(np.array([b"ab", b"c\xff"], dtype=object))
    result = client.infer("text", [text])
    assert result.as_numpy("upper").tolist() == [b"AB", b"C\xff"]
    assert result.as_numpy("marker_bytes").tolist() == [b"\xff\x00", b"\xff\x00"]
    assert result.as_numpy("length").tolist() == [2, 2]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x02\x00\x00\x00ab\x01\x00", "raw_input_contents ends at byte 8, before element 1 of 2"),
        (b"\x02\x00\x00\x00ab\x09\x00\x00\x00c", "element 1 of raw_input_contents says 9 bytes"),
        (b"\x01\x00\x00\x00a\x01\x00\x00\x00bz", "has 1 bytes after its 2 elements"),
    ],
)
def test_raw_bytes_that_do_not_add_up_are_refused(text_server, raw, message):
    request = service_pb2.ModelInferRequest(model_name="text")
    request.inputs.add(name="text", datatype="BYTES", shape=[2])
    request.raw_input_contents.append(raw)
    with grpc.insecure_channel(f"127.0.0.1:{text_server.port}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            stub.ModelInfer(request, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.value.details()


class _Flags(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.bool, name="flag")])
    def flip(self, flag):
        return {"flipped": tf.logical_not(flag)}


def test_rest_takes_booleans_as_true_and_false_only(tmp_path):
    module = _Flags()
    tf.saved_model.save(
        module, str(tmp_path / "flags" / "1"), signatures={"serving_default": module.flip}
    )
    with ServerThread(loopback_settings(tmp_path)) as running:
        good = call(running.rest_port, "/v1/models/flags:predict", {"instances": [True, False]})
        bad = call(running.rest_port, "/v1/models/flags:predict", {"instances": [True, 1]})
    assert good == (200, {"predictions": [False, True]})
    assert bad[0] == 400
    assert "Input 'flag': value 1 is not a boolean; expected bool values" in bad[1]["error"]
