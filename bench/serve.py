"""``zoo bench serve``: the prediction server under load, beside the bare model and a naive server,
all in one run on this machine.

For concurrency 1, 8, 32 and 64, an asyncio gRPC client on loopback sends single-image MNIST
``Predict`` requests (bounded in count and time) and records QPS and p50/p90/p99 latency against:

- ``zoo serve`` with dynamic batching, and with ``--no-batching``;
- the naive server (``bench/naive_server.py``): the same API calling ``model(x)`` per request;
- the bare SavedModel signature in-process at the same batch sizes: the limit;
- a no-op server answering a fixed response (``bench/noop_server.py``): what Python gRPC and this
  load generator allow on the same 2 cores, whatever the model.

Targets (issue 6) at concurrency 32: >= 20x the naive server's QPS, p99 <= 30 ms, and the
fraction of the bare model's batched throughput reported (aim >= 25 %).
"""

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

import models
from bench.report import percentile, write_result
from serving.client import predict_request
from training import datasets
from training.export import build_archive

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 32, 64)
CONNECTIONS = 4  # client connections per load level (fewer when concurrency is lower)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_model(folder: Path) -> tuple[Path, Path]:
    """The keras-io convnet (weights as initialised: speed does not depend on them), saved as
    ``.keras`` for the naive server and exported as ``repo/mnist/1`` for ``zoo serve``."""
    model = models.create_model("mnist_cnn", head="softmax")
    keras_path = folder / "mnist_cnn.keras"
    model.save(keras_path)
    repo = folder / "repo"
    info = datasets.get_info("mnist")
    build_archive(model, models.get_head("softmax"), info, 0.5).write_out(
        str(repo / "mnist" / "1"), verbose=False
    )
    return keras_path, repo


def bare_model(
    repo: Path, images: np.ndarray, batch_sizes=CONCURRENCY, seconds: float = 3.0
) -> dict:
    """Images/s and latency of the exported signature called in-process, per batch size."""
    signature = tf.saved_model.load(str(repo / "mnist" / "1")).signatures["serving_default"]
    result = {}
    for batch in batch_sizes:
        x = tf.constant(np.resize(images, (batch, 28, 28, 1)))
        signature(images=x)
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            signature(images=x)
            calls += 1
        elapsed = time.perf_counter() - start
        result[str(batch)] = {
            "images_per_second": calls * batch / elapsed,
            "call_ms": 1000 * elapsed / calls,
        }
    return result


async def _load(
    target: str, images: np.ndarray, concurrency: int, max_requests: int, max_seconds: float
) -> dict:
    requests = [predict_request("mnist", images[index : index + 1]) for index in range(64)]
    latencies, errors = [], 0
    # Separate connections (a local subchannel pool each), as separate clients would have: a
    # server with several workers gets them spread over its processes.
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(min(concurrency, CONNECTIONS))
    ]
    stubs = [prediction_service_pb2_grpc.PredictionServiceStub(c) for c in channels]
    for stub in stubs:
        for request in requests[:8]:  # warm-up
            await stub.Predict(request, timeout=30)
    deadline = time.perf_counter() + max_seconds
    sent = 0

    async def worker(stub):
        nonlocal sent, errors
        while sent < max_requests and time.perf_counter() < deadline:
            request = requests[sent % len(requests)]
            sent += 1
            start = time.perf_counter()
            try:
                await stub.Predict(request, timeout=30)
                latencies.append(time.perf_counter() - start)
            except grpc.aio.AioRpcError:
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*[worker(stubs[i % len(stubs)]) for i in range(concurrency)])
    elapsed = time.perf_counter() - start
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
    }


def start_server(argv: list[str], port: int) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=120)
    channel.close()
    return process


def measure_server(
    name: str, argv: list[str], port: int, images, max_requests, max_seconds
) -> dict:
    process = start_server(argv, port)
    try:
        levels = {}
        for concurrency in CONCURRENCY:
            levels[str(concurrency)] = asyncio.run(
                _load(f"127.0.0.1:{port}", images, concurrency, max_requests, max_seconds)
            )
            level = levels[str(concurrency)]
            print(
                f"{name:<22} c={concurrency:<3} {level['qps']:8.0f} QPS  p50 {level['p50_ms']:6.1f} ms"
                f"  p90 {level['p90_ms']:6.1f}  p99 {level['p99_ms']:6.1f}  errors {level['errors']}"
            )
        return levels
    finally:
        process.terminate()
        process.wait(timeout=60)


def run(*, max_requests: int = 3000, max_seconds: float = 10.0) -> dict:
    images, _ = datasets.load_arrays("mnist", "test", limit=64)
    with tempfile.TemporaryDirectory() as tmp:
        keras_path, repo = prepare_model(Path(tmp))
        bare = bare_model(repo, images)
        for batch, numbers in bare.items():
            print(
                f"bare model batch {batch:<3} {numbers['images_per_second']:8.0f} images/s  "
                f"{numbers['call_ms']:.2f} ms/call"
            )
        servers = {}
        port = free_port()
        common = [
            "-m",
            "zoo",
            "serve",
            "--workers",
            "1",
            "--rest-port",
            "-1",
            "--model-repo",
            str(repo),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--metrics-port",
            "-1",
        ]
        servers["zoo (batching)"] = measure_server(
            "zoo (batching)", common, port, images, max_requests, max_seconds
        )
        two_workers = [*common[:3], "--workers", "2", *common[5:]]
        servers["zoo (2 workers)"] = measure_server(
            "zoo (2 workers)", two_workers, port, images, max_requests, max_seconds
        )
        servers["zoo (no batching)"] = measure_server(
            "zoo (no batching)", [*common, "--no-batching"], port, images, max_requests, max_seconds
        )
        naive = ["-m", "bench.naive_server", "--model", str(keras_path), "--port", str(port)]
        servers["naive"] = measure_server("naive", naive, port, images, max_requests, max_seconds)
        noop = ["-m", "bench.noop_server", "--port", str(port)]
        servers["gRPC ceiling (no-op)"] = measure_server(
            "gRPC ceiling (no-op)", noop, port, images, max_requests, max_seconds
        )

    zoo32, naive32 = servers["zoo (batching)"]["32"], servers["naive"]["32"]
    targets = {
        "qps_ratio_to_naive_at_32": zoo32["qps"] / naive32["qps"],
        "qps_ratio_target": 20.0,
        "p99_ms_at_32": zoo32["p99_ms"],
        "p99_ms_target": 30.0,
        "fraction_of_bare_batched_throughput_at_32": zoo32["qps"] / bare["32"]["images_per_second"],
        "fraction_target": 0.25,
        "per_request_overhead_ms_at_1": servers["zoo (batching)"]["1"]["p50_ms"]
        - bare["1"]["call_ms"],
        "fraction_of_grpc_ceiling_at_32": zoo32["qps"]
        / servers["gRPC ceiling (no-op)"]["32"]["qps"],
        "grpc_ceiling_fraction_of_bare_at_32": servers["gRPC ceiling (no-op)"]["32"]["qps"]
        / bare["32"]["images_per_second"],
    }
    result = {
        "bare_model": bare,
        "servers": servers,
        "targets": targets,
        "limits": {"max_requests": max_requests, "max_seconds": max_seconds},
    }
    path = write_result("serve", result)
    plot(result, path.with_suffix(".png"))
    print("targets: " + ", ".join(f"{k}={v:.3g}" for k, v in targets.items()))
    print(f"written to {path} and {path.with_suffix('.png')}")
    return result


def plot(result: dict, path: Path) -> None:
    """p50 and p99 latency against throughput, per server, one point per concurrency."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5))
    ax = figure.subplots()
    for (name, levels), color in zip(
        result["servers"].items(), ("C0", "C1", "C3", "C7"), strict=False
    ):
        qps = [levels[c]["qps"] for c in levels]
        ax.plot(qps, [levels[c]["p50_ms"] for c in levels], "o-", color=color, label=f"{name} p50")
        ax.plot(qps, [levels[c]["p99_ms"] for c in levels], "x--", color=color, label=f"{name} p99")
        for c in levels:
            ax.annotate(f"c={c}", (levels[c]["qps"], levels[c]["p99_ms"]), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("throughput (requests/s, single-image MNIST)")
    ax.set_ylabel("latency (ms)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
