"""The serving benchmark's client: a closed-loop asyncio gRPC load generator, and the CPU time
the server under test spends meanwhile.

The same generator drives every server, in either protocol a server speaks: TensorFlow Serving's
``Predict`` or the Open Inference Protocol's ``ModelInfer`` (what Triton answers). Each of
``concurrency`` callers sends one single-image request, waits for the answer and sends the next,
over a few separate connections, as separate clients would.
"""

import asyncio
import gc
import time

import grpc
import numpy as np
import psutil
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from bench.report import percentile
from serving.client import predict_request

CONNECTIONS = 4  # client connections per load level (fewer when concurrency is lower)
PROTOCOLS = ("tfserving", "v2")


def infer_request(model: str, images: np.ndarray) -> service_pb2.ModelInferRequest:
    """A ``ModelInfer`` request: uint8 ``images`` as raw contents, asking for ``probabilities``."""
    request = service_pb2.ModelInferRequest(model_name=model)
    request.inputs.add(name="images", datatype="UINT8", shape=list(images.shape))
    request.outputs.add(name="probabilities")
    request.raw_input_contents.append(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    return request


def _call(protocol: str, channel: grpc.aio.Channel):
    """The unary call that carries one request in ``protocol`` on ``channel``."""
    if protocol == "tfserving":
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict
    return service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer


def _requests(protocol: str, images: np.ndarray) -> list:
    build = predict_request if protocol == "tfserving" else infer_request
    return [build("mnist", images[index : index + 1]) for index in range(len(images))]


async def connect(target: str, protocol: str, count: int, requests: list):
    """``count`` separate connections to ``target`` and the unary call of ``protocol`` on each,
    every one warmed up with a few of ``requests``. Each has a local subchannel pool, so it is
    its own TCP connection and a server with several worker processes gets them spread."""
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(count)
    ]
    calls = [_call(protocol, channel) for channel in channels]
    for call in calls:
        for request in requests[:8]:
            await call(request, timeout=30)
    return channels, calls


async def _load(target, protocol, images, concurrency, server_pid, max_requests, max_seconds):
    requests = _requests(protocol, images)
    latencies, errors = [], 0
    channels, calls = await connect(target, protocol, min(concurrency, CONNECTIONS), requests)
    cpu_before = cpu_seconds(server_pid)
    deadline = time.perf_counter() + max_seconds
    sent = 0

    async def caller(call):
        nonlocal sent, errors
        while sent < max_requests and time.perf_counter() < deadline:
            request = requests[sent % len(requests)]
            sent += 1
            start = time.perf_counter()
            try:
                await call(request, timeout=30)
                latencies.append(time.perf_counter() - start)
            except grpc.aio.AioRpcError:
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*[caller(calls[i % len(calls)]) for i in range(concurrency)])
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(server_pid) - cpu_before
    for channel in channels:
        await channel.close()
    ms = [1000 * x for x in latencies]
    return {
        "requests": len(latencies),
        "errors": errors,
        "qps": len(latencies) / elapsed,
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "server_cpu_s_per_1000": 1000 * cpu / max(len(latencies), 1),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and every process below it (a server's
    workers, Triton's server binary and its Python stubs)."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measure(
    target: str,
    protocol: str,
    images: np.ndarray,
    concurrency: int,
    *,
    server_pid: int,
    max_requests: int,
    max_seconds: float,
) -> dict:
    """One load level against ``target``: requests, errors, QPS, p50/p90/p99 latency (ms) and
    the server's CPU seconds per 1,000 answered requests."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}. Received: {protocol!r}")
    # This process holds TensorFlow's hundreds of thousands of objects; a full collection of them
    # (about 150 ms) in the middle of a level would land in whichever server's tail is measured.
    gc.collect()
    gc.freeze()
    return asyncio.run(
        _load(target, protocol, images, concurrency, server_pid, max_requests, max_seconds)
    )
