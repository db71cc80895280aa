"""Cold start of ``zoo serve``: seconds from process start until the model's health is SERVING,
and the process' resident memory then, for this checkout and another one (the code before a
change), alternating so that one slow phase of the machine does not decide.

    python -m bench.serve_start --against /tmp/before-checkout --rounds 5
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.report import describe_checkout, write_result
from bench.servers import free_port

ROOT = Path(__file__).resolve().parents[1]


def exported_model(folder: Path) -> Path:
    """A repository holding one exported ``mnist_cnn`` (untrained weights suffice to load)."""
    import models
    from training import datasets
    from training.export import build_archive

    model = models.create_model("mnist_cnn", head="logits")
    archive = build_archive(model, models.get_head("logits"), datasets.get_info("mnist"), 0.5)
    archive.write_out(str(folder / "mnist" / "1"), verbose=False)
    return folder


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cold_start(tree: Path, repo: Path, port: int) -> dict:
    """Starts ``zoo serve`` from ``tree``; returns seconds to SERVING and RSS at that moment."""
    env = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = [sys.executable, "-m", "zoo", "serve", "--model-repo", str(repo),
            "--host", "127.0.0.1", "--port", str(port), "--metrics-port", "-1"]  # fmt: skip
    # A tree with worker processes (older ones had none) runs one: one process to measure.
    serving = tree / "serving"
    if (serving / "workers.py").exists() or (serving / "process" / "workers.py").exists():
        argv += ["--workers", "1", "--rest-port", "-1"]
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=tree, env=env, stderr=subprocess.DEVNULL)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="mnist")
            while time.perf_counter() - start < 180:
                try:
                    if stub.Check(request, timeout=1).status == 1:
                        return {
                            "seconds": time.perf_counter() - start,
                            "rss_mb": resident_mb(process.pid),
                        }
                except grpc.RpcError:
                    time.sleep(0.02)
        raise RuntimeError(f"zoo serve from {tree} did not reach SERVING")
    finally:
        process.terminate()
        process.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="the other checkout")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        repo = exported_model(Path(folder))
        samples = {"this": [], "against": []}
        for _ in range(args.rounds):
            for side, tree in (("against", args.against), ("this", ROOT)):
                samples[side].append(cold_start(tree, repo, free_port()))
    summary = {
        side: {
            "median_seconds_to_serving": statistics.median(s["seconds"] for s in runs),
            "median_rss_mb": statistics.median(s["rss_mb"] for s in runs),
            "runs": runs,
        }
        for side, runs in samples.items()
    }
    path = write_result(
        "serve_start", {"against_checkout": describe_checkout(args.against), **summary}
    )
    for side in ("against", "this"):
        print(
            f"{side:8s}: {summary[side]['median_seconds_to_serving']:.2f} s to SERVING, "
            f"{summary[side]['median_rss_mb']:.0f} MB resident"
        )
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
