"""The serving benchmark's own clients, asyncio gRPC load generators, and the CPU time the
server under test spends meanwhile.

The same generators drive every server, in either protocol a server speaks: TensorFlow Serving's
``Predict`` or the Open Inference Protocol's ``ModelInfer`` (what Triton answers), over a few
separate connections, as separate clients would.

- ``measure``, closed loop: each of ``concurrency`` callers sends one single-image request, waits
  for the answer and sends the next.
- ``measure_open_loop``: requests go out at a fixed rate whatever the answers, and every status
  is counted, which perf_analyzer cannot do (it stops at the first error): how a server sheds
  load past its peak.
"""

import asyncio
import collections
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
    return {"requests": len(latencies), "errors": errors, **_answered(latencies, elapsed, cpu)}


def _answered(latencies: list[float], elapsed: float, cpu: float) -> dict:
    """QPS, p50/p90/p99 latency (ms) and the server's CPU seconds per 1,000 of the answered
    requests (``latencies`` in seconds, over ``elapsed`` seconds and ``cpu`` server seconds)."""
    ms = [1000 * x for x in latencies]
    return {
        "qps": len(latencies) / elapsed,
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "server_cpu_s_per_1000": 1000 * cpu / max(len(latencies), 1),
    }


async def _open_loop(target, protocol, images, rate, seconds, server_pid):
    requests = _requests(protocol, images)
    channels, calls = await connect(target, protocol, CONNECTIONS, requests)
    latencies, failures, codes = [], [], collections.Counter()
    lag = 0.0  # how far behind its schedule the last request went out

    async def send(index: int):
        start = time.perf_counter()
        try:
            await calls[index % len(calls)](requests[index % len(requests)], timeout=30)
        except grpc.aio.AioRpcError as error:
            codes[error.code().name] += 1
            failures.append(time.perf_counter() - start)
        else:
            codes["OK"] += 1
            latencies.append(time.perf_counter() - start)

    cpu_before = cpu_seconds(server_pid)
    tasks, count = [], int(rate * seconds)
    begin = time.perf_counter()
    for index in range(count):
        due = begin + index / rate
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        lag = time.perf_counter() - due
        tasks.append(asyncio.create_task(send(index)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - begin
    cpu = cpu_seconds(server_pid) - cpu_before
    for channel in channels:
        await channel.close()
    failed_ms = [1000 * x for x in failures]
    return {
        "rate": rate,
        "sent": count,
        "codes": dict(codes),
        "send_lag_ms": 1000 * lag,
        **_answered(latencies, elapsed, cpu),
        "max_ms": 1000 * max(latencies, default=float("nan")),
        "failed_p50_ms": percentile(failed_ms, 50),
        "failed_p99_ms": percentile(failed_ms, 99),
    }


def measure_open_loop(
    target: str, protocol: str, images: np.ndarray, rate: float, *, seconds: float, server_pid: int
) -> dict:
    """``rate`` requests per second against ``target`` for ``seconds``, evenly spaced, sent
    whether or not earlier ones were answered: the count of each status, QPS answered,
    p50/p90/p99 and max latency (ms) of the answered, p50/p99 of the failed (how fast a server
    sheds), and how far the client fell behind its schedule (``send_lag_ms``, of the last)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}. Received: {protocol!r}")
    gc.collect()
    gc.freeze()
    return asyncio.run(_open_loop(target, protocol, images, rate, seconds, server_pid))


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
