"""``zoo bench serve``: the prediction server under load, beside a real peer, the bare model and a
naive server, all in one run on this machine.

For concurrency 1, 8, 32 and 64, one closed-loop gRPC client (``bench/load.py``) sends
single-image MNIST requests (bounded in count and time) and records QPS, p50/p90/p99 latency and
the server's CPU seconds per 1,000 requests. Measured one after the other, in TensorFlow
Serving's ``Predict``:

- ``zoo serve`` (one worker) with dynamic batching, and with ``--no-batching``;
- the naive server (``bench/naive_server.py``): the same API calling ``model(x)`` per request;
- a no-op server answering a fixed response (``bench/noop_server.py``): what Python gRPC and this
  load generator allow on the same 2 cores, whatever the model;
- and the bare SavedModel signature in-process at the same batch sizes: the limit.

Then the loop comparison: ``zoo serve`` on uvloop against asyncio's own loop, both servers
running at once and taking turns at each level, in alternating order, for several rounds; the
medians are reported, so that a slow phase of the machine falls on both. And last, against the
peer users would pick instead, Triton Inference Server through PyTriton, driven by perf_analyzer
(``bench/serve_peer.py``, its own results file).

Targets at concurrency 32 (issue 6): >= 20x the naive server's QPS, p99 <= 30 ms, the fraction of
the bare model's batched throughput reported (aim >= 25 %).
"""

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from bench import serve_peer
from bench import servers as launch
from bench.load import measure
from bench.report import write_result
from training import datasets

CONCURRENCY = (1, 8, 32, 64)
METRICS = ("qps", "p50_ms", "p90_ms", "p99_ms", "server_cpu_s_per_1000")


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


def _print_level(name: str, concurrency: int, level: dict) -> None:
    print(
        f"{name:<24} c={concurrency:<3} {level['qps']:7.0f} QPS  p50 {level['p50_ms']:6.1f} ms"
        f"  p99 {level['p99_ms']:6.1f}  cpu {level['server_cpu_s_per_1000']:5.2f} s/1k"
        f"  errors {level['errors']}",
        flush=True,
    )


def _level(server: launch.Server, images, concurrency: int, limits: dict) -> dict:
    """One load level against a running server, printed as it ends."""
    level = measure(
        server.target,
        server.protocol,
        images,
        concurrency,
        server_pid=server.process.pid,
        **limits,
    )
    _print_level(server.name, concurrency, level)
    return level


def measure_alone(server: launch.Server, images, limits: dict) -> dict:
    """Every concurrency level against ``server``, started for this and stopped after."""
    server.start()
    try:
        levels = {}
        for concurrency in CONCURRENCY:
            levels[str(concurrency)] = _level(server, images, concurrency, limits)
        return levels
    finally:
        server.stop()


def measure_side_by_side(
    pair: list[launch.Server], images, limits: dict, rounds: int
) -> tuple[dict, dict]:
    """The servers running at once, taking turns at each level (who goes first rotating between
    levels and rounds). Returns, per server, the median over rounds of each metric per level (the
    rounds kept), and each server's name and version."""
    for server in pair:
        server.start()
    try:
        versions = {server.name: server.version() for server in pair}
        turns = launch.take_turns(
            pair, CONCURRENCY, rounds, lambda server, c: _level(server, images, c, limits)
        )
    finally:
        for server in pair:
            server.stop()
    medians = {
        name: {c: _median_level(runs) for c, runs in levels.items()}
        for name, levels in turns.items()
    }
    return medians, versions


def _median_level(runs: list[dict]) -> dict:
    median = {metric: statistics.median(run[metric] for run in runs) for metric in METRICS}
    return {
        **median,
        "requests": sum(run["requests"] for run in runs),
        "errors": sum(run["errors"] for run in runs),
        "rounds": runs,
    }


def compare_loops(repo: Path, images, limits: dict, rounds: int) -> dict:
    """``zoo serve`` on uvloop against the same server on asyncio's own loop, side by side: QPS
    and server CPU per request, as ratios uvloop / asyncio per level."""
    pair = [
        launch.zoo_server(f"zoo v2 ({loop} loop)", repo, protocol="v2", workers=1,
                          extra=["--loop", loop])
        for loop in ("uvloop", "asyncio")
    ]  # fmt: skip
    measured, _ = measure_side_by_side(pair, images, limits, rounds)
    uv, plain = (measured[server.name] for server in pair)
    return {
        "servers": measured,
        "qps_ratio": {c: uv[c]["qps"] / plain[c]["qps"] for c in uv},
        "cpu_per_request_ratio": {
            c: uv[c]["server_cpu_s_per_1000"] / plain[c]["server_cpu_s_per_1000"] for c in uv
        },
    }


def run(
    *, max_requests: int = 3000, max_seconds: float = 10.0, rounds: int = 3, workers: int = 1
) -> dict:
    images, _ = datasets.load_arrays("mnist", "test", limit=64)
    limits = {"max_requests": max_requests, "max_seconds": max_seconds}
    with tempfile.TemporaryDirectory() as tmp:
        keras_path, repo = launch.prepare_model(Path(tmp))
        bare = bare_model(repo, images)
        for batch, numbers in bare.items():
            print(
                f"bare model batch {batch:<3} {numbers['images_per_second']:8.0f} images/s  "
                f"{numbers['call_ms']:.2f} ms/call"
            )
        alone = [
            launch.zoo_server("zoo (batching)", repo, protocol="tfserving", workers=1),
            launch.zoo_server(
                "zoo (no batching)", repo, protocol="tfserving", workers=1, extra=["--no-batching"]
            ),
            launch.naive_server(keras_path),
            launch.noop_server(),
        ]
        servers = {server.name: measure_alone(server, images, limits) for server in alone}
        loop = compare_loops(repo, images, limits, rounds)
    zoo32, naive32 = servers["zoo (batching)"]["32"], servers["naive"]["32"]
    ceiling = servers["gRPC ceiling (no-op)"]
    targets = {
        "qps_ratio_to_naive_at_32": zoo32["qps"] / naive32["qps"],
        "qps_ratio_target": 20.0,
        "p99_ms_at_32": zoo32["p99_ms"],
        "p99_ms_target": 30.0,
        "fraction_of_bare_batched_throughput_at_32": zoo32["qps"] / bare["32"]["images_per_second"],
        "fraction_target": 0.25,
        "per_request_overhead_ms_at_1": servers["zoo (batching)"]["1"]["p50_ms"]
        - bare["1"]["call_ms"],
        "fraction_of_grpc_ceiling_at_32": zoo32["qps"] / ceiling["32"]["qps"],
        "grpc_ceiling_fraction_of_bare_at_32": ceiling["32"]["qps"]
        / bare["32"]["images_per_second"],
    }
    result = {
        "bare_model": bare,
        "servers": servers,
        "targets": targets,
        "loop": loop,
        "peer_note": "against the peer: serve_peer-KIND.json (perf_analyzer)",
        "limits": {**limits, "rounds": rounds},
    }
    path = write_result("serve", result)
    plot(result, path.with_suffix(".png"))
    print("targets: " + ", ".join(f"{k}={v:.3g}" for k, v in targets.items()))
    print(f"written to {path} and {path.with_suffix('.png')}")
    serve_peer.run(rounds=rounds, workers=workers)
    return result


def plot(result: dict, path: Path) -> None:
    """p50 and p99 latency against throughput, per server, one point per concurrency."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5.5))
    ax = figure.subplots()
    curves = dict(result["servers"])
    for index, (name, levels) in enumerate(curves.items()):
        color = f"C{index}"
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
