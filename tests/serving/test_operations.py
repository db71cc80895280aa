"""Health, reflection, metrics, message limits, TLS, token auth, zoo predict and SIGTERM."""

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from helpers import free_port, loopback_settings
from PIL import Image
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving.client import PredictionClient, predict_request
from serving.process.server import ServerThread
from zoo import cli

ROOT = Path(__file__).resolve().parents[2]


def test_health_of_server_and_each_model(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "mnist"):
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_both_protocols(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    response = next(stub.ServerReflectionInfo(iter([request]), timeout=10))
    names = {s.name for s in response.list_services_response.service}
    assert {
        "tensorflow.serving.PredictionService",
        "tensorflow.serving.ModelService",
        "inference.GRPCInferenceService",
        "grpc.health.v1.Health",
    } <= names


def test_prometheus_metrics(server, client, test_images):
    client.predict("mnist", test_images[0][:1])
    with pytest.raises(grpc.RpcError):
        client.predict("mnist", test_images[0][:1].astype(np.float32))
    text = (
        urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10)
        .read()
        .decode()
    )
    assert 'zoo_requests_total{code="OK",method="Predict",model="mnist"}' in text
    assert 'zoo_requests_total{code="INVALID_ARGUMENT",method="Predict",model="mnist"}' in text
    for family in (
        "zoo_request_latency_seconds_bucket",
        "zoo_batch_size_bucket",
        "zoo_queue_seconds_bucket",
        'zoo_model_versions_loaded{model="mnist"} 1.0',
    ):
        assert family in text


def test_oversize_message_is_resource_exhausted(make_repo, test_images):
    with ServerThread(loopback_settings(make_repo(), max_message_bytes=100_000)) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        with pytest.raises(grpc.RpcError) as error:
            client.predict("mnist", np.zeros((200, 28, 28, 1), np.uint8))
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "100000" in error.value.details()
        assert client.predict("mnist", test_images[0][:1])["classes"].shape == (1,), "still serving"


def test_token_auth(make_repo, test_images):
    with ServerThread(loopback_settings(make_repo(), auth_token="s3cret")) as running:
        target = f"127.0.0.1:{running.port}"
        for token, ok in (("", False), ("wrong", False), ("s3cret", True)):
            client = PredictionClient(target, token=token)
            if ok:
                assert client.predict("mnist", test_images[0][:1])["probabilities"].shape == (1, 10)
            else:
                with pytest.raises(grpc.RpcError) as error:
                    client.predict("mnist", test_images[0][:1])
                assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "bearer token" in error.value.details()
        with grpc.insecure_channel(target) as channel:  # health needs no token
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            assert status.status == health_pb2.HealthCheckResponse.SERVING


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost and a client certificate, with openssl."""

    def run(*argv):
        subprocess.run(["openssl", *argv], cwd=folder, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=zoo-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    )
    (folder / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        run(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
        )
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
            "-out",
            f"{name}.pem",
        )
    return {p.stem + p.suffix: p for p in folder.iterdir()}


def test_mutual_tls(make_repo, tmp_path, test_images):
    certs = make_certificates(tmp_path)
    settings = loopback_settings(
        make_repo(),
        tls_cert=str(certs["server.pem"]),
        tls_key=str(certs["server.key"]),
        tls_client_ca=str(certs["ca.pem"]),
    )
    with ServerThread(settings) as running:
        target = f"localhost:{running.port}"
        ca = certs["ca.pem"].read_bytes()
        client_pair = (certs["client.key"].read_bytes(), certs["client.pem"].read_bytes())
        client = PredictionClient(target, root_certificates=ca, client_certificate=client_pair)
        assert client.predict("mnist", test_images[0][:2])["classes"].shape == (2,)
        for bad in (
            PredictionClient(target, root_certificates=ca, timeout=5),  # no client certificate
            PredictionClient(target, timeout=5),
        ):  # plaintext
            with pytest.raises(grpc.RpcError) as error:
                bad.predict("mnist", test_images[0][:1])
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        # zoo predict speaks mutual TLS too.
        image = tmp_path / "digit.png"
        Image.fromarray(test_images[0][0, ..., 0]).save(image)
        tls = ["--ca", str(certs["ca.pem"]), "--cert", str(certs["client.pem"])]
        argv = ["predict", "--server", target, "--model", "mnist", *tls]
        assert cli.main([*argv, "--key", str(certs["client.key"]), str(image)]) == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ca", "missing.pem"], "--ca 'missing.pem': No such file or directory"),
        (["--cert", "c.pem"], "Mutual TLS needs both --cert and --key"),
        (["--cert", "c.pem", "--key", "k.pem"], "need --ca"),
    ],
)
def test_zoo_predict_tls_flag_errors_are_one_line(flags, message, tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    code = cli.main(["predict", "--server", "127.0.0.1:1", "--model", "m", *flags, str(image)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_zoo_predict_prints_top_classes(server, tmp_path, capsys, test_images):
    images, labels = test_images
    paths = []
    for index in range(3):
        paths.append(str(tmp_path / f"digit{index}.png"))
        Image.fromarray(images[index][..., 0]).save(paths[-1])
    code = cli.main(
        [
            "predict",
            "--server",
            f"127.0.0.1:{server.port}",
            "--model",
            "mnist",
            "--top-k",
            "2",
            *paths,
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and len(out) == 3
    for line, path in zip(out, paths, strict=True):
        assert line.startswith(f"{path}: ") and line.count("(") == 2
    code = cli.main(
        ["predict", "--server", f"127.0.0.1:{server.port}", "--model", "nope", paths[0]]
    )
    assert code == 2 and "NOT_FOUND" in capsys.readouterr().err


def test_zoo_predict_reads_a_photo_larger_than_the_server_decodes(server, tmp_path, capsys):
    """The server refuses images over 4096x4096 (a PNG of one colour compresses thousands to
    one); the client reads its user's own files, a 48-megapixel phone photo included."""
    photo = tmp_path / "photo.png"
    Image.new("L", (8000, 6000), 255).save(photo)
    argv = ["predict", "--server", f"127.0.0.1:{server.port}", "--model", "mnist", str(photo)]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.startswith(f"{photo}: ")


def test_zoo_predict_bounds_what_it_reads(server, tmp_path, capsys):
    """A file over 64 MiB is refused from its size, unread (here a sparse 1 TiB file); an image
    whose header declares more pixels than PIL decodes is refused from its header."""
    huge = tmp_path / "huge.png"
    with open(huge, "wb") as stream:
        stream.truncate(1 << 40)
    argv = ["predict", "--server", f"127.0.0.1:{server.port}", "--model", "mnist"]
    start = time.perf_counter()
    assert cli.main([*argv, str(huge)]) == 2
    assert time.perf_counter() - start < 5
    assert "is 1,099,511,627,776 bytes, over the 67,108,864" in capsys.readouterr().err
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)  # 400 MP in a few hundred KB
    assert cli.main([*argv, str(bomb)]) == 2
    assert "too many pixels to decode" in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_finishes_in_flight_requests_and_exits_0(make_repo, test_images, workers):
    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zoo",
            "serve",
            "--model-repo",
            str(make_repo()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--metrics-port",
            "-1",
            "--grace-seconds",
            "20",
            "--rest-port",
            str(free_port()),
            "--workers",
            workers,
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = PredictionClient(f"127.0.0.1:{port}", timeout=30)
    deadline = time.monotonic() + 120
    while True:
        try:
            client.predict("mnist", test_images[0][:1])
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline and process.poll() is None, "server never came up"
            time.sleep(0.2)
    outcomes, stop = [], threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                client.predict("mnist", test_images[0][:8])
                outcomes.append("ok")
            except grpc.RpcError as error:
                outcomes.append(error.code())
                return

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    # A large request is surely in flight when SIGTERM arrives; it must still be answered.
    big = np.repeat(test_images[0][:1], 1024, axis=0)
    long_call = client.prediction.Predict.future(predict_request("mnist", big), timeout=60)
    time.sleep(0.03)
    process.send_signal(signal.SIGTERM)
    assert long_call.result().outputs["classes"].int64_val, "in-flight request finished"
    assert process.wait(timeout=60) == 0
    stop.set()
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") > 4
    # Requests that arrive while the server shuts down are refused, never half-answered.
    refusals = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    assert set(outcomes) - {"ok"} <= refusals
    log = process.stderr.read()
    assert "Shutting down" in log and "Server stopped" in log


def test_healthcheck_module_used_by_the_dockerfile(server):
    from serving.healthcheck import check

    assert check(f"127.0.0.1:{server.port}") and check(f"127.0.0.1:{server.port}", "mnist")
    assert not check(f"127.0.0.1:{free_port()}", timeout=1)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "serving.healthcheck" in dockerfile and "USER zoo" in dockerfile
    assert "ZOO_SETUP_SERVING=1 scripts/setup.sh" in dockerfile  # the server's set only
    assert "COPY requirements.txt requirements-serving.txt" in dockerfile


def pins(path: Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return dict(line.split("==") for line in lines if "==" in line)


def test_the_full_set_is_the_servers_set_plus_the_rest_pinned_once():
    serving, full = pins(ROOT / "requirements-serving.txt"), pins(ROOT / "requirements.txt")
    assert "-r requirements-serving.txt" in (ROOT / "requirements.txt").read_text()
    assert not set(serving) & set(full), "each package pinned in one file"
    left_out = {"tensorflow-datasets", "matplotlib", "onnxruntime", "pytest", "ruff"}
    assert left_out <= set(full) and not left_out & set(serving)


def test_max_connection_age_recycles_connections_without_failing_calls(make_repo, test_images):
    """With --max-connection-age-seconds the server ends each connection after that long; the
    client reconnects by itself (and may land on another worker or replica), no call fails."""
    settings = loopback_settings(make_repo(), max_connection_age_seconds=0.5, grace_seconds=1)
    with ServerThread(settings) as running:
        channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
        states = []
        channel.subscribe(states.append, try_to_connect=True)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_request("mnist", test_images[0][:1])
        deadline = time.monotonic() + 30
        while states.count(grpc.ChannelConnectivity.READY) < 3:  # connected, then twice again
            assert time.monotonic() < deadline, f"the connection was not recycled: {states}"
            stub.Predict(request, timeout=10)  # never fails across the reconnections
            time.sleep(0.05)
        channel.close()
