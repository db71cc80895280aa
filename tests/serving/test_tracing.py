"""OpenTelemetry tracing: a span per request with its stages, the client's traceparent as parent,
spans exported over OTLP to a real receiver, and nothing recorded when tracing is off."""

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent import futures

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from aiohttp import web
from helpers import free_port, loopback_settings
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tensorflow_serving.apis import classification_pb2, prediction_service_pb2_grpc
from test_quiet_output import zoo_env

from serving.client import PredictionClient, predict_request
from serving.process.server import ServerThread
from serving.telemetry import tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
STAGES = {"decode", "queue", "batch", "model", "encode"}


@pytest.fixture(scope="module")
def traced(tmp_path_factory, exported_version):
    """An in-process server whose spans go to an in-memory exporter."""
    import shutil

    root = tmp_path_factory.mktemp("traced")
    shutil.copytree(exported_version, root / "mnist" / "1")
    exporter = InMemorySpanExporter()
    tracing.start(exporter)
    try:
        with ServerThread(loopback_settings(root)) as running:
            yield running, exporter
    finally:
        tracing.stop()


def _request_tree(exporter, name: str):
    """The one server span called ``name`` and its descendants, by name."""
    spans = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.name == name]
    children = {s.name: s for s in spans if s.parent and s.parent.span_id == root.context.span_id}
    batch = children.get("batch")
    grandchildren = {
        s.name: s for s in spans if batch and s.parent and s.parent.span_id == batch.context.span_id
    }
    return root, children, grandchildren


def _assert_stages_inside(root, children, model) -> None:
    assert set(children) == STAGES - {"model"}, sorted(children)
    for span in [*children.values(), model]:
        assert root.start_time <= span.start_time <= span.end_time <= root.end_time, span.name
        assert span.context.trace_id == root.context.trace_id
    order = ["decode", "queue", "batch", "encode"]
    starts = [children[name].start_time for name in order]
    assert starts == sorted(starts)
    assert children["batch"].start_time <= model.start_time <= model.end_time


def _triton_infer(server, model: str, images, headers=None):
    """One ModelInfer of ``images`` through tritonclient, with ``headers`` as gRPC metadata."""
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    tensor = triton.InferInput("images", list(images.shape), "UINT8")
    tensor.set_data_from_numpy(images)
    return client.infer(model, [tensor], headers=headers)


def test_grpc_infer_is_a_span_under_the_clients_traceparent(traced, test_images):
    server, exporter = traced
    exporter.clear()
    _triton_infer(server, "mnist", test_images[0][:2], {"traceparent": TRACEPARENT})
    root, children, grandchildren = _request_tree(
        exporter, "inference.GRPCInferenceService/ModelInfer"
    )
    assert f"{root.context.trace_id:032x}" == TRACE_ID
    assert f"{root.parent.span_id:016x}" == PARENT_ID and root.parent.is_remote
    assert root.attributes["rpc.grpc.status_code"] == 0
    assert root.attributes["zoo.model"] == "mnist"
    assert children["batch"].attributes["zoo.batch.size"] == 2
    assert children["batch"].attributes["zoo.batch.requests"] == 1
    _assert_stages_inside(root, children, grandchildren["model"])


def test_a_trace_the_client_did_not_sample_records_nothing(traced, test_images):
    """The default sampler follows the caller: a traceparent with flags 00 means unsampled."""
    server, exporter = traced
    exporter.clear()
    unsampled = TRACEPARENT[:-2] + "00"
    answer = _triton_infer(server, "mnist", test_images[0][:1], {"traceparent": unsampled})
    assert answer.as_numpy("probabilities").shape == (1, 10)
    assert exporter.get_finished_spans() == ()


def test_rest_infer_and_classify_are_spans_with_their_routes(traced, test_images):
    server, exporter = traced
    exporter.clear()
    images = test_images[0][:1]
    body = {"inputs": [{"name": "images", "shape": list(images.shape), "datatype": "UINT8",
                        "data": images.ravel().tolist()}]}  # fmt: skip
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.rest_port}/v2/models/mnist/infer",
        data=json.dumps(body).encode(),
        headers={"traceparent": TRACEPARENT, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    root, children, grandchildren = _request_tree(exporter, "POST /v2/models/{name}/infer")
    assert f"{root.context.trace_id:032x}" == TRACE_ID
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["http.route"] == "/v2/models/{name}/infer"
    _assert_stages_inside(root, children, grandchildren["model"])
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "mnist"
    example = request.input.example_list.examples.add()
    example.features.feature["images"].int64_list.value.extend(images.ravel().tolist())
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Classify(request, timeout=30)
    root, children, _ = _request_tree(exporter, "tensorflow.serving.PredictionService/Classify")
    assert root.parent is None  # no traceparent: a new trace
    assert set(children) == STAGES - {"model"}


def test_a_refused_request_is_traced_with_its_status_not_as_a_server_fault(traced):
    server, exporter = traced
    exporter.clear()
    with pytest.raises(Exception, match="nope"):
        _triton_infer(server, "nope", np.zeros((1, 28, 28, 1), np.uint8))
    span, children, _ = _request_tree(exporter, "inference.GRPCInferenceService/ModelInfer")
    assert set(children) <= {"decode"}  # refused before it reached the model
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert span.attributes["zoo.model"] == "_unknown"  # never a client-chosen name
    assert span.status.is_unset  # NOT_FOUND is the client's error, not the server's


def test_nothing_is_recorded_while_tracing_is_off(make_repo, test_images):
    exporter = InMemorySpanExporter()
    tracing.start(exporter)
    tracing.stop()
    with ServerThread(loopback_settings(make_repo())) as server:
        PredictionClient(f"127.0.0.1:{server.port}").predict("mnist", test_images[0][:1])
    assert tracing.active() is None and exporter.get_finished_spans() == ()


class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self):
        self.spans, self.arrived = [], threading.Event()

    def take(self, body: bytes) -> None:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                self.spans += [(service["service.name"], span) for span in scope.spans]
        self.arrived.set()

    def Export(self, request, context):
        self.take(request.SerializeToString())
        return trace_service_pb2.ExportTraceServiceResponse()


def _grpc_receiver(receiver: _Receiver):
    server = grpc.server(futures.ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return f"http://127.0.0.1:{port}", lambda: server.stop(0)


def _http_receiver(receiver: _Receiver):
    async def traces(request):
        receiver.take(await request.read())
        return web.Response(
            body=trace_service_pb2.ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    port = free_port()
    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    thread = threading.Thread(
        target=web.run_app, args=(app,),
        kwargs={"host": "127.0.0.1", "port": port, "print": None, "handle_signals": False,
                "access_log": None},
        daemon=True,
    )  # fmt: skip
    thread.start()
    return f"http://127.0.0.1:{port}", lambda: None


@pytest.mark.parametrize(
    ("protocol", "start_receiver"), [("grpc", _grpc_receiver), ("http/protobuf", _http_receiver)]
)
def test_zoo_serve_exports_spans_to_an_otlp_receiver(
    make_repo, test_images, protocol, start_receiver
):
    receiver = _Receiver()
    endpoint, stop_receiver = start_receiver(receiver)
    port = free_port()
    env = {**zoo_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100",
           "OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "OTEL_SERVICE_NAME": "zoo-test"}  # fmt: skip
    argv = [sys.executable, "-m", "zoo", "serve", "--model-repo", str(make_repo()), "--port",
            str(port), "--rest-port", "-1", "--metrics-port", "-1", "--workers", "1",
            "--tracing"]  # fmt: skip
    server = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_request("mnist", test_images[0][:1])
        deadline = time.monotonic() + 120
        while True:
            try:
                stub.Predict(request, timeout=30, metadata=[("traceparent", TRACEPARENT)])
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline and server.poll() is None, "server never came up"
                time.sleep(0.2)
        assert receiver.arrived.wait(30), "no spans reached the receiver"
    finally:
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=60)
        stop_receiver()
        channel.close()
    assert f"Tracing requests to OTLP ({protocol}) at {endpoint}" in log, log
    traced = [span for service, span in receiver.spans if span.trace_id.hex() == TRACE_ID]
    assert {service for service, _ in receiver.spans} == {"zoo-test"}
    names = {span.name for span in traced}
    assert "tensorflow.serving.PredictionService/Predict" in names and names >= STAGES, names


def test_an_unsupported_exporter_setting_is_refused_before_start(make_repo):
    env = {**zoo_env(), "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}
    argv = [sys.executable, "-m", "zoo", "serve", "--model-repo", str(make_repo()), "--port",
            str(free_port()), "--workers", "2", "--rest-port", str(free_port()), "--tracing"]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "OTEL_EXPORTER_OTLP_PROTOCOL='thrift' is not supported" in result.stderr
    assert "Traceback" not in result.stderr and "Started" not in result.stderr
