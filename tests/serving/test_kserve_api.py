"""The Open Inference Protocol through tritonclient.grpc, unchanged, and through raw stubs."""

import json
import urllib.request

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException


@pytest.fixture(scope="module")
def triton_client(server):
    return triton.InferenceServerClient(f"127.0.0.1:{server.port}")


def test_liveness_readiness_and_metadata(triton_client):
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.is_model_ready("mnist") and triton_client.is_model_ready("mnist", "1")
    assert not triton_client.is_model_ready("nope")
    assert triton_client.get_server_metadata(as_json=True)["name"] == "zoo"
    metadata = triton_client.get_model_metadata("mnist", as_json=True)
    assert metadata["versions"] == ["1"] and metadata["platform"] == "tensorflow_savedmodel"
    assert metadata["inputs"] == [
        {"name": "images", "datatype": "UINT8", "shape": ["-1", "28", "28", "1"]}
    ]
    assert {o["name"] for o in metadata["outputs"]} == {
        "probabilities",
        "log_probabilities",
        "classes",
        "logits",
    }


def test_infer_with_raw_contents(triton_client, client, test_images):
    images, _ = test_images
    tensor = triton.InferInput("images", list(images[:4].shape), "UINT8")
    tensor.set_data_from_numpy(images[:4])
    result = triton_client.infer(
        "mnist",
        [tensor],
        model_version="1",
        request_id="r1",
        outputs=[triton.InferRequestedOutput("probabilities")],
    )
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (4, 10) and result.as_numpy("classes") is None
    assert result.get_response().id == "r1"
    np.testing.assert_allclose(
        probabilities, client.predict("mnist", images[:4])["probabilities"], rtol=1e-6
    )


def test_infer_with_typed_contents(channel, test_images):
    images, _ = test_images
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    request = service_pb2.ModelInferRequest(model_name="mnist")
    tensor = request.inputs.add(name="images", datatype="UINT8", shape=[2, 28, 28, 1])
    tensor.contents.uint_contents.extend(images[:2].ravel().tolist())
    response = stub.ModelInfer(request, timeout=30)
    classes = dict(
        zip([o.name for o in response.outputs], response.raw_output_contents, strict=True)
    )["classes"]
    assert np.frombuffer(classes, "<i8").shape == (2,)


def test_errors_name_the_tensor(triton_client, test_images):
    images, _ = test_images
    tensor = triton.InferInput("images", [1, 28, 28, 1], "FP32")
    tensor.set_data_from_numpy(images[:1].astype(np.float32))
    with pytest.raises(
        InferenceServerException, match="Input 'images': expected dtype uint8, received float32"
    ):
        triton_client.infer("mnist", [tensor])
    tensor = triton.InferInput("images", [1, 28, 28, 1], "UINT8")
    tensor.set_data_from_numpy(images[:1])
    with pytest.raises(InferenceServerException, match="Model 'nope' not found"):
        triton_client.infer("nope", [tensor])
    for version in ("latest", "-1", "\u00b2"):  # "²" passes str.isdigit, not int()
        with pytest.raises(InferenceServerException, match="must be a non-negative integer"):
            triton_client.infer("mnist", [tensor], model_version=version)


def test_a_signature_name_that_is_not_a_string_is_refused(channel, test_images):
    request = service_pb2.ModelInferRequest(model_name="mnist")
    tensor = request.inputs.add(name="images", datatype="UINT8", shape=[1, 28, 28, 1])
    tensor.contents.uint_contents.extend(test_images[0][:1].ravel().tolist())
    request.parameters["signature_name"].int64_param = 3
    with pytest.raises(grpc.RpcError) as error:
        service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "must be a string_param. Received: int64_param" in error.value.details()


def test_an_echoed_model_name_is_cut_short(triton_client, test_images):
    tensor = triton.InferInput("images", [1, 28, 28, 1], "UINT8")
    tensor.set_data_from_numpy(test_images[0][:1])
    with pytest.raises(InferenceServerException) as error:
        triton_client.infer("m" * 1_000_000, [tensor])
    assert "(1,000,002 characters) not found" in str(error.value)
    assert len(str(error.value)) < 1000


def test_model_config_says_what_triton_would(triton_client, server):
    config = triton_client.get_model_config("mnist", as_json=True)["config"]
    assert config["platform"] == "tensorflow_savedmodel" and config["name"] == "mnist"
    batching = server.running.dataplane.settings.batching
    assert int(config["max_batch_size"]) == batching.max_batch_size
    assert config["input"] == [{"name": "images", "data_type": "TYPE_UINT8",
                                "dims": ["28", "28", "1"]}]  # fmt: skip
    outputs = {o["name"]: (o["data_type"], o["dims"], o.get("reshape")) for o in config["output"]}
    assert outputs["probabilities"] == ("TYPE_FP32", ["10"], None)
    assert outputs["classes"] == ("TYPE_INT64", ["1"], {})  # reshaped to one value per image
    assert config["version_policy"] == {"latest": {"num_versions": 1}}
    delay = config["dynamic_batching"].get("max_queue_delay_microseconds", "0")
    assert int(delay) == batching.max_wait_us


def test_statistics_count_what_was_served(triton_client, test_images):
    images, _ = test_images
    before = triton_client.get_inference_statistics("mnist", as_json=True)["model_stats"]
    tensor = triton.InferInput("images", list(images[:3].shape), "UINT8")
    tensor.set_data_from_numpy(images[:3])
    triton_client.infer("mnist", [tensor])
    bad = triton.InferInput("images", [1, 28, 28], "UINT8")
    bad.set_data_from_numpy(images[:1, :, :, 0])
    with pytest.raises(InferenceServerException):
        triton_client.infer("mnist", [bad])
    (after,) = triton_client.get_inference_statistics("mnist", "1", as_json=True)["model_stats"]
    (earlier,) = before

    def grew(path, by):
        value, old = after, earlier
        for key in path:
            value, old = value.get(key, {}), old.get(key, {})
        return int(value or 0) - int(old or 0) == by

    assert after["name"] == "mnist" and after["version"] == "1"
    assert grew(["inference_stats", "success", "count"], 1)
    assert grew(["inference_stats", "fail", "count"], 1)
    assert grew(["inference_stats", "compute_infer", "count"], 1)
    assert grew(["inference_count"], 3) and grew(["execution_count"], 1)
    assert (
        int(after["inference_stats"]["success"]["ns"])
        > int(after["inference_stats"]["compute_infer"]["ns"])
        > 0
    )
    assert any(int(b["batch_size"]) == 3 for b in after["batch_stats"])


def test_repository_index_lists_versions_with_their_state(triton_client):
    index = triton_client.get_model_repository_index(as_json=True)["models"]
    assert {"name": "mnist", "version": "1", "state": "READY"} in index


def test_rest_extensions_answer_the_same(server, triton_client):
    def rest(path, body=None):
        url = f"http://127.0.0.1:{server.rest_port}{path}"
        data = None if body is None else json.dumps(body).encode()
        with urllib.request.urlopen(urllib.request.Request(url, data), timeout=10) as answer:
            return json.loads(answer.read())

    grpc_config = triton_client.get_model_config("mnist", as_json=True)["config"]
    rest_config = rest("/v2/models/mnist/config")
    assert rest_config["input"][0]["dims"] == [int(d) for d in grpc_config["input"][0]["dims"]]
    assert rest_config["max_batch_size"] == int(grpc_config["max_batch_size"])
    assert rest("/v2/models/mnist/versions/1/config") == rest_config
    assert rest("/v2/models/mnist/stats")["model_stats"][0]["name"] == "mnist"
    assert [s["name"] for s in rest("/v2/models/stats")["model_stats"]] == ["mnist"]
    ready = {"name": "mnist", "version": "1", "state": "READY"}
    assert ready in rest("/v2/repository/index", {}) and ready in rest(
        "/v2/repository/index", {"ready": True}
    )
    assert rest("/v2")["extensions"] == ["model_configuration", "model_repository", "statistics"]


@pytest.mark.parametrize(
    ("rpc", "request_type"),
    [("TraceSetting", "TraceSettingRequest"),
     ("SystemSharedMemoryStatus", "SystemSharedMemoryStatusRequest")],
)  # fmt: skip
def test_unserved_rpcs_answer_unimplemented_in_one_log_line(channel, caplog, rpc, request_type):
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    caplog.clear()
    with pytest.raises(grpc.RpcError) as error:
        getattr(stub, rpc)(getattr(service_pb2, request_type)(), timeout=10)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert rpc in error.value.details()
    records = [r for r in caplog.records if rpc in r.getMessage()]
    assert len(records) <= 1 and not any(r.exc_info for r in caplog.records)
