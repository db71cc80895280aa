"""Hot reload under load: how much slower requests get around the moment ``zoo serve`` switches
to a new version, against the same server away from it, and against another checkout (the code
before a change) taking turns with this one.

A closed-loop client (``concurrency`` callers, single-image ``Predict`` requests over 4
connections) runs for a few seconds; halfway a copy of the model is published as the next
version (copied into a hidden folder, then renamed, as ``zoo export`` does). The server loads
and warms it up, switches to it and unloads the old one. Around the switch is the second from
half a second before the first answer by the new version; the steady part is what ended before.

    python -m bench.reload --against /tmp/before-checkout --rounds 3
"""

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

from bench import servers as launch
from bench.load import CONNECTIONS, connect
from bench.report import describe_checkout, percentile, write_result
from bench.servers import prepare_model
from serving.client import predict_request
from training import datasets

SECONDS, PUBLISH_AFTER = 4.0, 1.5  # load per reload, and when the new version is published
BEFORE, AFTER = 0.5, 1.0  # the window around the new version's first answer


def publish(model: Path, version: int) -> None:
    staging = model / f".tmp-{version}"
    shutil.copytree(model / "1", staging)
    staging.rename(model / str(version))


async def _requests_during(target: str, images, concurrency: int, on_start) -> list[tuple]:
    """(sent, answered, version) of every answered request; ``on_start`` runs once the load runs.
    Failed requests are kept with version -1."""
    requests = [predict_request("mnist", images[i : i + 1]) for i in range(len(images))]
    channels, calls = await connect(target, "tfserving", CONNECTIONS, requests)
    records, end = [], time.perf_counter() + SECONDS

    async def caller(index: int):
        call = calls[index % len(calls)]
        while (sent := time.perf_counter()) < end:
            try:
                reply = await call(requests[index % len(requests)], timeout=30)
                version = reply.model_spec.version.value
            except grpc.aio.AioRpcError:
                version = -1
            records.append((sent, time.perf_counter(), version))

    on_start()
    await asyncio.gather(*[caller(i) for i in range(concurrency)])
    for channel in channels:
        await channel.close()
    return records


def _latencies(records, low: float, high: float) -> dict:
    ms = [1000 * (answered - sent) for sent, answered, _ in records if low <= answered < high]
    return {
        "requests": len(ms),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms, default=float("nan")),
    }


def reload_under_load(server: launch.Server, model: Path, version: int, images, concurrency):
    """One reload to ``version`` while the client runs: latencies steady and around the switch."""

    def start_publishing():
        threading.Timer(PUBLISH_AFTER, publish, (model, version)).start()

    records = asyncio.run(_requests_during(server.target, images, concurrency, start_publishing))
    switched = min((answered for _, answered, v in records if v == version), default=None)
    if switched is None:
        raise RuntimeError(f"{server.name} never answered with version {version}")
    return {
        "steady": _latencies(records, 0.0, switched - BEFORE),
        "around_switch": _latencies(records, switched - BEFORE, switched + AFTER),
        "errors": sum(v == -1 for *_, v in records),
    }


def _server(tree: Path, repo: Path, name: str) -> launch.Server:
    extra = ["--poll-seconds", "0.2"]
    return launch.zoo_server(name, repo, protocol="tfserving", workers=1, extra=extra, root=tree)


def _medians(reloads: list[dict]) -> dict:
    return {
        part: {
            key: statistics.median(r[part][key] for r in reloads)
            for key in ("p50_ms", "p99_ms", "max_ms")
        }
        for part in ("steady", "around_switch")
    } | {"errors": sum(r["errors"] for r in reloads), "reloads": reloads}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout to take turns with")
    parser.add_argument("--rounds", type=int, default=3, help="server starts per side")
    parser.add_argument("--reloads", type=int, default=3, help="reloads per server start")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    for name in ("rounds", "reloads", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1. Received: {getattr(args, name)}")
    if args.against is not None and not (args.against / "serving").is_dir():
        parser.error(f"--against must be a checkout of this project. Received: {args.against}")
    sides = {"this": launch.ROOT} | ({"against": args.against} if args.against else {})
    images, _ = datasets.load_arrays("mnist", "test", limit=64)
    samples = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as folder:
        _, repo = prepare_model(Path(folder))
        model = repo / "mnist"
        version = 1
        for _ in range(args.rounds):
            for side, tree in reversed(sides.items()):
                server = _server(tree, repo, side).start()
                try:
                    for _ in range(args.reloads):
                        version += 1
                        measured = reload_under_load(
                            server, model, version, images, args.concurrency
                        )
                        samples[side].append(measured)
                        print(f"{side} v{version}: {measured}", flush=True)
                finally:
                    server.stop()
                for old in range(2, version + 1):  # the next start loads version 1 again
                    shutil.rmtree(model / str(old), ignore_errors=True)
    result = {
        "concurrency": args.concurrency,
        "against_checkout": describe_checkout(args.against) if args.against else None,
        **{side: _medians(reloads) for side, reloads in samples.items()},
    }
    path = write_result("reload", result)
    for side in sides:
        m = result[side]
        print(
            f"{side:8s}: steady p99 {m['steady']['p99_ms']:.1f} ms, around the switch p99 "
            f"{m['around_switch']['p99_ms']:.1f} ms, slowest {m['around_switch']['max_ms']:.1f} "
            f"ms (medians of {len(m['reloads'])} reloads), {m['errors']} errors"
        )
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
