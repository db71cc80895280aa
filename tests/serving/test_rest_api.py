"""The REST front end through plain HTTP requests, shaped like the examples of TensorFlow
Serving's REST documentation and the KServe v2 REST protocol."""

import base64
import io
import json
import ssl
import urllib.error
import urllib.request

import numpy as np
import pytest
from helpers import loopback_settings
from PIL import Image
from test_operations import make_certificates

from serving.process.server import ServerThread


def call(port, path, body=None, *, token=None, method=None):
    """``(status, JSON body)`` of one HTTP request to the REST port."""
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


V2_IMAGE = {"name": "images", "shape": [1, 28, 28, 1], "datatype": "UINT8", "data": [0] * 784}


@pytest.fixture(scope="module")
def rest(server):
    return server.rest_port


def test_tf_serving_row_format_predict(rest, client, test_images):
    images, _ = test_images
    status, body = call(rest, "/v1/models/mnist:predict", {"instances": images[:3].tolist()})
    assert status == 200
    predictions = body["predictions"]
    assert len(predictions) == 3
    assert set(predictions[0]) == {"probabilities", "log_probabilities", "classes", "logits"}
    grpc_outputs = client.predict("mnist", images[:3])
    np.testing.assert_allclose(
        [p["probabilities"] for p in predictions], grpc_outputs["probabilities"], atol=1e-6
    )
    assert [p["classes"] for p in predictions] == grpc_outputs["classes"].tolist()


def test_tf_serving_columnar_format_with_version_and_signature(rest, test_images):
    images, _ = test_images
    flat = (images[:2].reshape(2, 784) / 255.0).tolist()
    body = {"signature_name": "predict_images", "inputs": {"images": flat}}
    status, answer = call(rest, "/v1/models/mnist/versions/1:predict", body)
    assert status == 200
    scores = np.asarray(answer["outputs"])  # one output: its value, not an object
    assert scores.shape == (2, 10)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)


def test_tf_serving_classify_with_b64_png(rest, test_images):
    images, _ = test_images
    buffer = io.BytesIO()
    Image.fromarray(images[0, ..., 0]).save(buffer, format="PNG")
    png = base64.b64encode(buffer.getvalue()).decode()
    examples = [{"images": {"b64": png}}, {"images": images[1].tolist()}]
    status, body = call(rest, "/v1/models/mnist:classify", {"examples": examples})
    assert status == 200 and len(body["results"]) == 2
    label, score = body["results"][0][0]
    assert label in [str(d) for d in range(10)] and 0 <= score <= 1
    assert len(body["results"][0]) == 10


def test_tf_serving_classify_merges_the_context_into_each_example(rest, test_images):
    images, _ = test_images
    body = {
        "context": {"images": images[0].tolist()},
        "examples": [{}, {"images": images[1].tolist()}],
    }
    status, answer = call(rest, "/v1/models/mnist:classify", body)
    assert status == 200
    _, alone = call(
        rest,
        "/v1/models/mnist:classify",
        {"examples": [{"images": image.tolist()} for image in images[:2]]},
    )
    assert answer["results"] == alone["results"]
    code, error = call(rest, "/v1/models/mnist:classify", {"context": [1], "examples": [{}]})
    assert code == 400 and "'context' must be an object of features" in error["error"]


def test_tf_serving_status_and_metadata(rest):
    status, body = call(rest, "/v1/models/mnist")
    assert status == 200
    assert body["model_version_status"] == [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]
    status, body = call(rest, "/v1/models/mnist/versions/1/metadata")
    assert status == 200 and body["model_spec"]["version"] == "1"
    signatures = body["metadata"]["signature_def"]["signatureDef"]
    assert {"serving_default", "predict_images"} <= set(signatures)


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/models/nope:predict", {"instances": [[0]]}, 404, "Model 'nope' not found"),
        ("/v1/models/mnist/versions/9:predict", {"instances": [[0]]}, 404, "version 9 not found"),
        ("/v1/models/mnist:predict", {"instances": [[1, 2, 3]]}, 400, "expected shape [-1, 28, 28, 1]"),
        ("/v1/models/mnist:predict", {"instances": [[[[300]] * 28] * 28]}, 400, "outside the range"),
        ("/v1/models/mnist:predict", {"instances": [[[[0.5]] * 28] * 28]}, 400,
         "value 0.5 is not an integer; expected uint8 values"),
        ("/v1/models/mnist:predict", {"instances": [[[["7"]] * 28] * 28]}, 400,
         "value '7' is not an integer"),
        ("/v1/models/mnist:predict", {"nothing": 1}, 400, "Give either 'instances'"),
        # Nesting beyond a tensor's 64 dimensions, and beyond what the JSON decoder takes.
        ("/v1/models/mnist:predict", b'{"instances": ' + b"[" * 200 + b"]" * 200 + b"}", 400,
         "nested deeper than 64 levels"),
        ("/v1/models/mnist:predict", b'{"instances": ' + b"[" * 10**5 + b"]" * 10**5 + b"}",
         400, "nests its JSON deeper than the decoder allows"),
        ("/v1/models/mnist/versions/%C2%B2:predict", {"instances": [[0]]}, 400,
         "must be a non-negative integer. Received: '\u00b2'"),
        ("/v2/models/mnist/versions/%C2%B2/ready", None, 400, "must be a non-negative integer"),
        ("/v1/models/mnist:regress", {"examples": [{}]}, 501, "Regress needs a regression signature"),
        ("/v1/models/mnist:classify", {"signature_name": "predict_images", "examples": [{}]}, 400,
         "Classify needs a signature with one input and a 'probabilities' output; "
         "'predict_images' takes ['images'] and answers ['scores']"),
        ("/v1/models/mnist:classify", {"signature_name": "nope", "examples": [{}]}, 404,
         "has no signature 'nope'"),
        ("/v1/models/nope:regress", {"examples": [{}]}, 404, "Model 'nope' not found"),
        ("/v1/models/mnist:predict", b"{not json", 400, "not valid JSON"),
        ("/v1/models/mnist:classify", {"examples": [{"images": {"b64": "!!"}}]}, 400, "base64"),
        ("/v2/models/mnist/infer", {"inputs": [{"name": "images", "shape": [1, 28, 28, 1],
                                                "datatype": "FP32", "data": [0]}]},
         400, "expected datatype UINT8, received FP32"),
        # Fields of the wrong JSON type are the client's error, said as such (never a 500).
        ("/v1/models/mnist:predict", {"signature_name": ["x"], "instances": [[0]]}, 400,
         "signature_name must be a string. Received: ['x']"),
        ("/v1/models/mnist:classify", {"signature_name": {"a": 1}, "examples": [{}]}, 400,
         "signature_name must be a string"),
        ("/v2/models/mnist/infer", {"parameters": [1], "inputs": [V2_IMAGE]}, 400,
         "'parameters' must be an object. Received: [1]"),
        ("/v2/models/mnist/infer", {"inputs": [{**V2_IMAGE, "name": ["images"]}]}, 400,
         "An input's 'name' must be a string"),
        ("/v2/models/mnist/infer", {"inputs": [{**V2_IMAGE, "datatype": ["UINT8"]}]}, 400,
         "unsupported datatype ['UINT8']"),
        ("/v2/models/mnist/infer", {"inputs": [{**V2_IMAGE, "shape": [True, 28, 28, 1]}]}, 400,
         "shape must be a list of sizes >= 0. Received: [True, 28, 28, 1]"),
        ("/v2/models/mnist/infer", {"inputs": [{**V2_IMAGE, "parameters": "x"}]}, 400,
         "Input 'images': 'parameters' must be an object"),
        ("/v2/models/mnist/infer", {"inputs": [V2_IMAGE, V2_IMAGE]}, 400,
         "Input 'images' appears twice"),  # as over gRPC
        ("/v2/models/mnist/infer", {"inputs": [V2_IMAGE], "outputs": [{"name": 1}]}, 400,
         "An output's 'name' must be a string. Received: 1"),
        ("/v2/models/mnist/infer", {"inputs": [V2_IMAGE], "outputs": {"name": "classes"}},
         400, "'outputs' must be a list of objects"),
        ("/v2/models/mnist/infer",
         {"inputs": [V2_IMAGE], "outputs": [{"name": "classes", "parameters": [True]}]},
         400, "Output 'classes': 'parameters' must be an object"),
        ("/v1/models/" + "n" * 5000 + ":predict", {"instances": [[0]]}, 404,
         "... (5,002 characters) not found"),  # an echoed name is cut short
    ],
)  # fmt: skip
def test_errors_have_the_grpc_messages_and_http_statuses(rest, path, body, status, message):
    code, answer = call(rest, path, body)
    assert code == status and message in answer["error"]


def test_a_body_over_the_message_limit_is_413(make_repo):
    settings = loopback_settings(make_repo(), max_message_bytes=4096)
    with ServerThread(settings) as running:
        code, answer = call(running.rest_port, "/v1/models/mnist:predict", b"[" + b"0," * 5000)
    assert code == 413 and "error" in answer


def test_kserve_v2_rest(rest, test_images):
    assert call(rest, "/v2/health/live") == (200, {"live": True})
    assert call(rest, "/v2/health/ready") == (200, {"ready": True})
    assert call(rest, "/v2/models/mnist/versions/1/ready") == (
        200, {"name": "mnist", "ready": True})  # fmt: skip
    assert call(rest, "/v2/models/nope/ready")[0] == 404
    status, metadata = call(rest, "/v2/models/mnist")
    assert status == 200 and metadata["versions"] == ["1"]
    assert metadata["inputs"] == [{"name": "images", "datatype": "UINT8", "shape": [-1, 28, 28, 1]}]
    images, _ = test_images
    request = {
        "id": "42",
        "inputs": [{"name": "images", "shape": [2, 28, 28, 1], "datatype": "UINT8",
                    "data": images[:2].ravel().tolist()}],
        "outputs": [{"name": "classes"}, {"name": "probabilities"}],
    }  # fmt: skip
    status, body = call(rest, "/v2/models/mnist/infer", request)
    assert status == 200 and body["id"] == "42" and body["model_version"] == "1"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert list(outputs) == ["classes", "probabilities"]
    assert outputs["classes"]["datatype"] == "INT64" and outputs["classes"]["shape"] == [2]
    assert outputs["probabilities"]["shape"] == [2, 10]


def binary_call(port, header: dict, data: bytes, header_length=None):
    """One v2 infer request with the binary data extension; ``(status, JSON, bytes after it)``."""
    head = json.dumps(header).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v2/models/mnist/infer", data=head + data, method="POST"
    )
    request.add_header("Inference-Header-Content-Length", header_length or str(len(head)))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            length = int(response.headers.get("Inference-Header-Content-Length", len(body)))
            return response.status, json.loads(body[:length]), body[length:]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), b""


def test_kserve_v2_rest_binary_tensor_data(rest, client, test_images):
    images = np.ascontiguousarray(test_images[0][:3])
    tensor = {"name": "images", "shape": [3, 28, 28, 1], "datatype": "UINT8",
              "parameters": {"binary_data_size": images.nbytes}}  # fmt: skip
    outputs = [{"name": "probabilities", "parameters": {"binary_data": True}}, {"name": "classes"}]
    status, body, rest_bytes = binary_call(
        rest, {"inputs": [tensor], "outputs": outputs}, images.tobytes()
    )
    assert status == 200, body
    probabilities, classes = body["outputs"]
    assert probabilities["parameters"] == {"binary_data_size": 3 * 10 * 4}
    received = np.frombuffer(rest_bytes, "<f4").reshape(3, 10)
    expected = client.predict("mnist", images)
    np.testing.assert_allclose(received, expected["probabilities"], atol=1e-6)
    assert classes["data"] == expected["classes"].tolist()
    # Every output binary at once, as perf_analyzer asks.
    status, body, rest_bytes = binary_call(
        rest, {"inputs": [tensor], "parameters": {"binary_data_output": True}}, images.tobytes()
    )
    assert status == 200 and all("data" not in o for o in body["outputs"])
    assert len(rest_bytes) == sum(o["parameters"]["binary_data_size"] for o in body["outputs"])


@pytest.mark.parametrize(
    ("size", "extra", "header_length", "message"),
    [
        (784 * 4, b"", None, "binary_data_size 3136 runs past the 784 bytes"),
        (784, b"xx", None, "2 bytes after the JSON header belong to no input"),
        (784, b"", "99999", "Inference-Header-Content-Length must be the JSON header's length"),
        (-1, b"", None, "binary_data_size must be a byte count"),
    ],
)
def test_binary_tensor_data_that_does_not_add_up_is_400(rest, test_images, size, extra,
                                                        header_length, message):  # fmt: skip
    image = np.ascontiguousarray(test_images[0][:1])
    tensor = {"name": "images", "shape": [1, 28, 28, 1], "datatype": "UINT8",
              "parameters": {"binary_data_size": size}}  # fmt: skip
    status, body, _ = binary_call(rest, {"inputs": [tensor]}, image.tobytes() + extra,
                                  header_length)  # fmt: skip
    assert status == 400 and message in body["error"]


def test_token_and_tls_apply_to_rest(make_repo, tmp_path, test_images):
    repo = make_repo()
    with ServerThread(loopback_settings(repo, auth_token="s3cret")) as running:
        port = running.rest_port
        assert call(port, "/v1/models/mnist")[0] == 401
        assert call(port, "/v1/models/mnist", token="wrong")[0] == 401
        assert call(port, "/v1/models/mnist", token="s3cret")[0] == 200
        assert call(port, "/v2/health/ready")[0] == 200, "health stays open for probes"
        assert call(port, "/v2/models/mnist")[0] == 401
    certs = make_certificates(tmp_path)
    settings = loopback_settings(
        repo, tls_cert=str(certs["server.pem"]), tls_key=str(certs["server.key"])
    )
    with ServerThread(settings) as running:
        context = ssl.create_default_context(cafile=str(certs["ca.pem"]))
        url = f"https://localhost:{running.rest_port}/v2/health/live"
        with urllib.request.urlopen(url, context=context, timeout=30) as response:
            assert json.loads(response.read()) == {"live": True}
        with pytest.raises(OSError):  # plaintext against the TLS port
            urllib.request.urlopen(
                f"http://127.0.0.1:{running.rest_port}/v2/health/live", timeout=5
            )


def test_rest_metric_labels_are_routes_and_known_models(server, rest):
    for path in ("/v1/models/probe-7", "/v1/models/probe-8:predict", "/no/such/path-9"):
        call(rest, path, {"instances": [[0]]} if path.endswith("predict") else None)
    body = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics").read()
    text = body.decode()
    assert "probe-" not in text and "path-9" not in text
    assert 'method="REST:tf_status"' in text and 'method="REST:unrouted"' in text
