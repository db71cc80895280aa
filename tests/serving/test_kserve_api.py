"""The Open Inference Protocol through tritonclient.grpc, unchanged, and through raw stubs."""

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


def test_unimplemented_extensions_say_so(channel):
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        stub.RepositoryIndex(service_pb2.RepositoryIndexRequest(), timeout=10)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
