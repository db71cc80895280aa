"""What an abuse probe found, each through a real server: oversized tensors, model names probed
without the token, unbounded metric labels, huge requests, slow copies, an empty repository,
busy ports, mismatched TLS files, small PNGs of huge images and a low open-files limit."""

import base64
import io
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import free_port, loopback_settings, partial_rest_body
from PIL import Image
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from core.errors import ConfigError
from serving.client import PredictionClient
from serving.frontends.auth import bearer_token
from serving.process.server import ServerThread
from serving.settings import ServerSettings, build_settings

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def tiny_request_for_a_huge_tensor(model="mnist"):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["images"].CopyFrom(
        tensor_pb2.TensorProto(
            dtype=types_pb2.DT_UINT8,
            int_val=[7],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in (4_000_000, 28, 28, 1)]
            ),
        )
    )
    return request


def test_a_tiny_request_cannot_ask_for_gigabytes(server, channel, client, test_images):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = tiny_request_for_a_huge_tensor()
    assert request.ByteSize() < 100
    start = time.perf_counter()
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=10)
    assert time.perf_counter() - start < 1.0
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "3,136,000,000 bytes" in error.value.details()
    assert client.predict("mnist", test_images[0][:2])["probabilities"].shape == (2, 10)


def test_requests_larger_than_a_batch_run_in_chunks(make_repo, test_images):
    settings = loopback_settings(make_repo(), max_request_batch=1024, metrics_port=0)
    settings = settings.model_copy(update={"batching": settings.batching.model_copy(
        update={"max_batch_size": 8})})  # fmt: skip
    images = np.concatenate([test_images[0]] * 4)  # 128 images
    with ServerThread(settings) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        outputs = client.predict("mnist", images)
        single = client.predict("mnist", images[:8])
        body = urllib.request.urlopen(f"http://127.0.0.1:{running.metrics_port}/metrics").read()
    assert outputs["probabilities"].shape == (128, 10)
    np.testing.assert_allclose(outputs["probabilities"][:8], single["probabilities"], atol=1e-6)
    sizes = [line for line in body.decode().splitlines() if "zoo_batch_size_bucket" in line]
    assert any('le="8.0"' in line and line.endswith(" 17.0") for line in sizes), sizes
    assert not any('le="64.0"' in line and not line.endswith(" 17.0") for line in sizes)


def test_unknown_model_names_share_one_metric_label(server, client, test_images):
    for index in range(30):
        with pytest.raises(grpc.RpcError):
            client.predict(f"probe-{index}", test_images[0][:1])
    body = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics").read()
    text = body.decode()
    assert "probe-" not in text
    assert 'model="_unknown"' in text and 'model="mnist"' in text


def test_with_a_token_model_health_needs_it_and_overall_health_does_not(make_repo):
    with (
        ServerThread(loopback_settings(make_repo(), auth_token="s3cret")) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        health = health_pb2_grpc.HealthStub(channel)
        overall = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert overall.status == health_pb2.HealthCheckResponse.SERVING
        for service in ("mnist", "no-such-model"):
            with pytest.raises(grpc.RpcError) as error:
                health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        for scheme in ("Bearer", "bearer", "BEARER"):
            checked = health.Check(
                health_pb2.HealthCheckRequest(service="mnist"),
                metadata=[("authorization", f"{scheme} s3cret")],
                timeout=10,
            )
            assert checked.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", ""), ("abc", "")],
)
def test_bearer_scheme_is_case_insensitive(header, token):
    assert bearer_token([("authorization", header)]) == token
    assert bearer_token([]) is None


def test_empty_repository_is_not_ready_until_a_model_arrives(tmp_path, exported_version):
    repo = tmp_path / "repo"
    repo.mkdir()
    with (
        ServerThread(loopback_settings(repo)) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        health = health_pb2_grpc.HealthStub(channel)

        def overall():
            return health.Check(health_pb2.HealthCheckRequest(), timeout=10).status

        assert overall() == health_pb2.HealthCheckResponse.NOT_SERVING
        shutil.copytree(exported_version, repo / "mnist" / "1")
        assert wait_for(lambda: overall() == health_pb2.HealthCheckResponse.SERVING)


def test_a_version_whose_variables_were_still_copying_is_retried(make_repo, exported_version):
    """The first load fails (variables missing); the copy then finishes inside ``variables/``
    without touching ``1/`` itself, and the server retries and serves it."""
    repo = make_repo(versions=())
    target = repo / "mnist" / "1"
    target.mkdir(parents=True)
    shutil.copy(exported_version / "saved_model.pb", target / "saved_model.pb")
    (target / "variables").mkdir()
    stamp = target.stat().st_mtime
    with ServerThread(loopback_settings(repo)) as running:
        statuses = running.dataplane.statuses
        assert wait_for(lambda: statuses("mnist").get(1) and statuses("mnist")[1].error)
        time.sleep(0.05)
        for item in (exported_version / "variables").iterdir():
            shutil.copy(item, target / "variables" / item.name)
        os.utime(target, (stamp, stamp))  # the version folder itself looks untouched
        assert wait_for(lambda: running.dataplane.model_ready("mnist", 1))


def test_busy_port_is_a_clear_error(make_repo):
    repo = make_repo()
    with ServerThread(loopback_settings(repo)) as first:
        taken = first.port
        second = ServerThread(loopback_settings(repo, port=taken))
        with pytest.raises(RuntimeError, match=f"Cannot listen on 127.0.0.1:{taken}"):
            second.start()


def test_mismatched_tls_key_is_a_clear_error(make_repo, tmp_path):
    from test_operations import make_certificates

    certificates = make_certificates(tmp_path)
    with pytest.raises(ConfigError, match="does not fit tls_cert"):
        build_settings(
            model_repo=str(make_repo()),
            tls_cert=str(certificates["server.pem"]),
            tls_key=str(certificates["client.key"]),
        )


def test_settings_refuse_mutual_tls_without_a_certificate(tmp_path):
    with pytest.raises(ValueError, match="tls_client_ca"):
        ServerSettings(model_repo=str(tmp_path), tls_client_ca="ca.pem")


@pytest.mark.parametrize(
    ("mode", "side", "message"),
    [
        ("L", 4100, "4100x4100 pixels, over the 16,777,216 decoded"),
        ("1", 20000, "too many pixels to decode"),  # PIL's own check
    ],
)
def test_a_small_png_of_a_huge_image_is_refused_unread(server, channel, mode, side, message):
    """One colour compresses thousands to one: 16 KB and 49 KB PNGs of 17 and 400 megapixels.
    The first used to be decoded in full, the second answered as an internal error."""
    buffer = io.BytesIO()
    Image.new(mode, (side, side)).save(buffer, format="PNG")
    png = buffer.getvalue()
    assert len(png) < 50_000

    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "mnist"
    request.input.example_list.examples.add().features.feature["images"].bytes_list.value.append(
        png
    )
    with pytest.raises(grpc.RpcError) as error:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Classify(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.value.details()

    body = {"instances": [{"b64": base64.b64encode(png).decode()}]}
    http = urllib.request.Request(
        f"http://127.0.0.1:{server.rest_port}/v1/models/mnist:predict",
        data=json.dumps(body).encode(),
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(http, timeout=30)
    assert answer.value.code == 400 and message in json.loads(answer.value.read())["error"]


def test_a_low_open_files_limit_is_raised_so_idle_connections_cannot_lock_clients_out(
    make_repo, test_images
):
    """Started with a soft limit of 256 (under a hard one of 4,096), the server used to refuse
    every new connection once 1,000 idle ones held its descriptors."""
    port, rest_port = free_port(), free_port()

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096))

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = [sys.executable, "-m", "zoo", "serve", "--model-repo", str(make_repo()),
            "--host", "127.0.0.1", "--port", str(port), "--rest-port", str(rest_port),
            "--metrics-port", "-1", "--workers", "1"]  # fmt: skip
    server = subprocess.Popen(
        argv, cwd=ROOT, env=env, preexec_fn=low_limit, stderr=subprocess.PIPE, text=True
    )
    idle = []
    try:
        client = PredictionClient(f"127.0.0.1:{port}", timeout=30)
        assert wait_for(lambda: _answers(client, test_images), seconds=120), "never served"
        for _ in range(1000):
            idle.append(socket.create_connection(("127.0.0.1", rest_port)))
        status = f"http://127.0.0.1:{rest_port}/v1/models/mnist"
        assert urllib.request.urlopen(status, timeout=10).status == 200
        fresh = PredictionClient(f"127.0.0.1:{port}", timeout=10, own_connection=True)
        assert fresh.predict("mnist", test_images[0][:1])["classes"].shape == (1,)
    finally:
        for connection in idle:
            connection.close()
        server.terminate()
        log = server.communicate(timeout=60)[1]
        print(f"server log:\n{log}")  # shown when the test fails
    assert "Raised the open-files limit from 256 to 4096" in log


def _answers(client: PredictionClient, test_images) -> bool:
    try:
        return client.predict("mnist", test_images[0][:1])["classes"].shape == (1,)
    except grpc.RpcError:
        return False


def test_request_bodies_in_flight_share_one_budget(make_repo, test_images):
    """30 connections each holding a partial 63 MB REST body once took 1.9 GB that stayed."""
    megabyte = 1 << 20
    settings = loopback_settings(make_repo(), max_message_bytes=megabyte,
                                 body_budget_bytes=2 * megabyte)  # fmt: skip
    with ServerThread(settings) as server:
        holding = [partial_rest_body(server.rest_port, megabyte - 100, 1000) for _ in range(2)]
        time.sleep(0.5)  # both are reading their bodies
        start = time.perf_counter()
        small = {"inputs": [], "padding": " " * 200}  # fits alone, not beside the other two
        status, body = _post_json(server.rest_port, "/v2/models/mnist/infer", small)
        assert status == 503 and "would pass its budget of 2,097,152" in body["error"], body
        assert time.perf_counter() - start < 2  # at once, not after the others
        for connection in holding:
            connection.close()
        images = test_images[0][:1]
        infer = {"inputs": [{"name": "images", "shape": [1, 28, 28, 1], "datatype": "UINT8",
                             "data": images.ravel().tolist()}]}  # fmt: skip
        assert wait_for(lambda: _post_json(server.rest_port, "/v2/models/mnist/infer", infer)[0]
                        == 200, seconds=10)  # fmt: skip
        assert server.dataplane is not None


def test_a_client_gone_before_its_body_arrived_is_one_line_and_counted(make_repo, caplog):
    """It once logged aiohttp's traceback as an internal error."""
    with ServerThread(loopback_settings(make_repo())) as server:
        caplog.clear()
        partial_rest_body(server.rest_port, 1 << 20, 1000).close()
        assert wait_for(lambda: any("closed the connection" in r.getMessage()
                                    for r in caplog.records), seconds=10)  # fmt: skip
        assert not any(r.exc_info for r in caplog.records)
        assert not any("internal error" in r.getMessage() for r in caplog.records)
        counted = server.dataplane.metrics.requests.collect()[0].samples
        assert any(s.labels.get("code") == "499" and s.value == 1 for s in counted), counted


BURST = """
import asyncio, collections, json, sys
import grpc, numpy as np
from serving.client import predict_request
from tensorflow_serving.apis import prediction_service_pb2_grpc

async def burst(port, calls):
    request = predict_request("mnist", np.zeros((1, 28, 28, 1), np.uint8))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        codes = collections.Counter()
        async def one():
            try:
                await stub.Predict(request, timeout=60)
                codes["OK"] += 1
            except grpc.aio.AioRpcError as error:
                codes[error.code().name] += 1
        await asyncio.gather(*(one() for _ in range(calls)))
    print(json.dumps(codes))

asyncio.run(burst(int(sys.argv[1]), int(sys.argv[2])))
"""


def test_a_burst_beyond_the_server_is_answered_unavailable_and_counted(make_repo):
    """3,000 calls at once on one connection: gRPC core once cancelled the excess (CANCELLED,
    neither logged nor counted); every one now reaches the server, which refuses what it cannot
    take in time as UNAVAILABLE and counts it."""
    with ServerThread(loopback_settings(make_repo())) as server:
        done = subprocess.run([sys.executable, "-c", BURST, str(server.port), "3000"],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        codes = json.loads(done.stdout)
        samples = server.dataplane.metrics.requests.collect()[0].samples
    counted = {s.labels["code"]: s.value for s in samples
               if s.name.endswith("_total") and s.labels["method"] == "Predict"}  # fmt: skip
    assert set(codes) <= {"OK", "UNAVAILABLE"} and sum(codes.values()) == 3000, codes
    assert counted == codes, (counted, codes)


def _post_json(port: int, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode()
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_body_budget_below_the_largest_request_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="body_budget_bytes=2048 is below max_message_bytes"):
        build_settings(model_repo=str(tmp_path), body_budget_bytes=2048)
