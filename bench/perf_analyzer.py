"""Triton's perf_analyzer, the field's serving load generator, driving a server over the Open
Inference Protocol (gRPC): closed loop at a concurrency, or open loop at a fixed request rate.

``scripts/setup-peer.sh`` puts the binary (from tritonclient 2.51's wheel) and the libraries it
links into ``.venv-peer``. Each level is one perf_analyzer run with asynchronous requests (fewer
client threads on the 2 cores the server shares), stable windows at ``-s 50`` and the report read
back from its CSV, latencies in ms.
"""

import csv
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from bench.load import cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / ".venv-peer"
BINARY = PEER / "bin" / "perf_analyzer"
LIBRARIES = (
    PEER / "lib",
    PEER / "lib" / "python3.11" / "site-packages" / "nvidia" / "cuda_runtime" / "lib",
)
WINDOW_MS = 3000
OPEN_LOOP_THREADS = 4  # client threads sending at a fixed rate: enough to keep the schedule here
TIMEOUT_SECONDS = 300
COLUMNS = {  # CSV column -> result key (microseconds -> ms)
    "p50 latency": "p50_ms",
    "p90 latency": "p90_ms",
    "p95 latency": "p95_ms",
    "p99 latency": "p99_ms",
    "Server Queue": "server_queue_ms",
    "Server Compute Infer": "server_infer_ms",
}


def available() -> bool:
    """Whether ``scripts/setup-peer.sh`` has put perf_analyzer in ``.venv-peer``."""
    return BINARY.exists()


def _environment() -> dict:
    paths = [str(path) for path in LIBRARIES] + [os.environ.get("LD_LIBRARY_PATH", "")]
    return {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(filter(None, paths))}


def command(target: str, csv_path: Path, *, concurrency: int | None, rate: float | None) -> list:
    """The perf_analyzer command line of one level: ``concurrency`` (closed loop) or ``rate``
    requests per second (open loop, evenly spaced), single-image requests for ``mnist``."""
    if (concurrency is None) == (rate is None):
        raise ValueError("one of concurrency and rate, not both")
    argv = [str(BINARY), "-m", "mnist", "-u", target, "-i", "grpc", "--async"]
    argv += ["-s", "50", "-p", str(WINDOW_MS), "-f", str(csv_path)]
    if concurrency is not None:
        return [*argv, "--concurrency-range", str(concurrency)]
    return [
        *argv, "--request-rate-range", f"{rate:.0f}", "--request-distribution", "constant",
        "--max-threads", str(OPEN_LOOP_THREADS),
    ]  # fmt: skip


def parse(csv_text: str, output: str) -> dict:
    """QPS and latencies (ms) from perf_analyzer's CSV, and from its printed report the share of
    requests it sent late (open loop: the client could not keep the rate)."""
    row = next(csv.DictReader(csv_text.splitlines()))
    result = {"qps": float(row["Inferences/Second"])}
    for column, key in COLUMNS.items():
        result[key] = float(row[column]) / 1000
    late = re.search(r"([\d.]+)% of the requests were delayed", output)
    result["late_percent"] = float(late.group(1)) if late else 0.0
    return result


def measure(target: str, *, server_pid: int, concurrency=None, rate=None) -> dict:
    """One level against ``target``: QPS, p50/p90/p95/p99 latency and the server's own queue and
    model time (ms), and the server's CPU cores busy meanwhile. An error (perf_analyzer stops at
    the first failed request) is returned as ``{"error": its last line}``."""
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "level.csv"
        argv = command(target, csv_path, concurrency=concurrency, rate=rate)
        cpu_before, start = cpu_seconds(server_pid), time.perf_counter()
        try:
            run = subprocess.run(
                argv, capture_output=True, text=True, env=_environment(), timeout=TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired:
            return {"error": f"perf_analyzer did not finish within {TIMEOUT_SECONDS} s"}
        cores = (cpu_seconds(server_pid) - cpu_before) / (time.perf_counter() - start)
        output = run.stdout + run.stderr
        if run.returncode != 0 or not csv_path.exists():
            lines = [line.strip() for line in output.splitlines() if line.strip()]
            return {"error": lines[-1] if lines else f"exit status {run.returncode}"}
        return {**parse(csv_path.read_text(), output), "server_cpu_cores": cores}
