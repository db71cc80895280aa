"""Model control (Triton's RepositoryModelLoad / RepositoryModelUnload, gRPC and REST): off
unless ``--model-control explicit``, behind the token, and an unloaded model stays unloaded."""

import json
import shutil
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import loopback_settings
from tritonclient.utils import InferenceServerException

from core.errors import ConfigError
from serving.process.server import ServerThread
from serving.settings import build_settings

TOKEN = "secret"
HEADERS = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def controlled(tmp_path_factory, exported_version):
    root = tmp_path_factory.mktemp("controlled")
    for name in ("mnist", "other"):
        shutil.copytree(exported_version, root / name / "1")
    settings = loopback_settings(root, model_control="explicit", auth_token=TOKEN)
    with ServerThread(settings) as running:
        yield running, root


def _rest(server, path: str, body: dict | None = None, token: str = TOKEN) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.rest_port}{path}", data=data, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _infer(client, name: str):
    tensor = triton.InferInput("images", [1, 28, 28, 1], "UINT8")
    tensor.set_data_from_numpy(np.zeros((1, 28, 28, 1), "uint8"))
    return client.infer(name, [tensor], headers=HEADERS)


def _health(server, name: str) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        metadata = [("authorization", f"Bearer {TOKEN}")]
        return stub.Check(health_pb2.HealthCheckRequest(service=name), metadata=metadata).status


def test_an_unloaded_model_stays_unloaded_until_loaded_again(controlled):
    server, _ = controlled
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    client.unload_model("mnist", headers=HEADERS)
    time.sleep(0.5)  # polls every 0.1 s: none brings it back
    assert not client.is_model_ready("mnist", headers=HEADERS)
    assert client.is_server_ready(headers=HEADERS)  # "other" still serves; nothing is broken
    with pytest.raises(InferenceServerException, match="Model 'mnist' not found"):
        _infer(client, "mnist")
    index = client.get_model_repository_index(headers=HEADERS, as_json=True)["models"]
    assert {"name": "mnist", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"} in index
    assert _health(server, "mnist") == health_pb2.HealthCheckResponse.NOT_SERVING

    assert _rest(server, "/v2/repository/models/mnist/load") == (200, {})
    assert client.is_model_ready("mnist", headers=HEADERS)
    assert _infer(client, "mnist").as_numpy("probabilities").shape == (1, 10)
    assert _health(server, "mnist") == health_pb2.HealthCheckResponse.SERVING
    assert _rest(server, "/v2/repository/models/other/unload", {"parameters": {}}) == (200, {})
    client.load_model("other", headers=HEADERS)
    assert client.is_model_ready("other", headers=HEADERS)


def test_loading_what_the_repository_lacks_or_cannot_load_names_why(controlled):
    server, root = controlled
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    with pytest.raises(InferenceServerException, match="not in the model repository. It holds: "
                       "mnist, other"):  # fmt: skip
        client.load_model("nope", headers=HEADERS)
    (root / "broken" / "1").mkdir(parents=True)
    (root / "broken" / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    try:
        status, body = _rest(server, "/v2/repository/models/broken/load")
        assert status == 500 and "has no version that loads" in body["error"], body
        assert "version 1:" in body["error"]
    finally:
        shutil.rmtree(root / "broken")
    status, body = _rest(
        server, "/v2/repository/models/mnist/load", {"parameters": {"config": "{}"}}
    )
    assert status == 400 and "takes no parameters 'config'" in body["error"]
    with pytest.raises(InferenceServerException, match="takes no parameters"):
        client.load_model("mnist", config="{}", headers=HEADERS)
    assert client.is_model_ready("mnist", headers=HEADERS)


def test_model_control_is_behind_the_token(controlled):
    server, _ = controlled
    assert _rest(server, "/v2/repository/models/mnist/unload", token="")[0] == 401
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    with pytest.raises(InferenceServerException, match="UNAUTHENTICATED|token"):
        client.unload_model("mnist")
    assert client.is_model_ready("mnist", headers=HEADERS)


def test_model_control_is_off_by_default(server):
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    with pytest.raises(InferenceServerException, match="Model control is off") as raised:
        client.unload_model("mnist")
    assert raised.value.status() == "StatusCode.UNAVAILABLE"
    status, body = _rest(server, "/v2/repository/models/mnist/load", token="")
    assert status == 503 and "--model-control explicit" in body["error"]
    assert client.is_model_ready("mnist")


def test_model_control_takes_one_worker(tmp_path):
    with pytest.raises(ConfigError, match="model_control=explicit with workers=2"):
        build_settings(model_repo=str(tmp_path), model_control="explicit", workers=2)
    settings = build_settings(model_repo=str(tmp_path), model_control="explicit", workers=0)
    assert settings.worker_count == 1
