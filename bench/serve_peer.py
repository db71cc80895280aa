"""``zoo bench serve`` against the peer: ``zoo serve`` and Triton Inference Server (through PyTriton,
``bench/triton_peer.py``) serving the same SavedModel, both driven by Triton's own load generator,
perf_analyzer, over the Open Inference Protocol (gRPC), side by side.

1. Closed loop at concurrency 1, 8, 32 and 64. Each server's peak is its best median QPS.
2. Open loop at 50, 80 and 95 % of each server's own peak, requests evenly spaced.
3. Overload at 120 % of each peak. perf_analyzer stops at the first refused request, so the
   benchmark's asyncio client (``bench.load.measure_open_loop``) sends at that rate and counts
   every status; the same client at 80 % is the baseline the answered requests' tail is compared
   with.

Both servers run at once and take turns at each level, who goes first rotating between levels
and rounds; medians over the rounds are reported, so a slow phase of the machine falls on both.

Targets (issue 32), same run, same model: the zoo's QPS at or above Triton's at every concurrency;
at 80 % of its peak, the zoo's p99 within 3x its p50; at 120 %, the zoo sheds: the excess answered
UNAVAILABLE quickly, the answered requests' p99 within 2x its value at 80 %, and none waiting
longer than ``max_queue_seconds``.
"""

import statistics
import tempfile
from collections import Counter
from pathlib import Path

from bench import perf_analyzer
from bench import servers as launch
from bench.load import measure_open_loop
from bench.report import write_result
from serving.settings import BatchingOptions
from training import datasets

CONCURRENCY = (1, 8, 32, 64)
OPEN_LOOP = (0.5, 0.8, 0.95)  # shares of each server's peak
OVERLOAD = 1.2
BASELINE = 0.8  # the overload's tail is compared with this load, same client
OVERLOAD_SECONDS = 10.0


def median_level(runs: list[dict]) -> dict:
    """The median of each number over the rounds that did not fail; the failures' messages."""
    good = [run for run in runs if "error" not in run]
    median = {
        key: statistics.median(run[key] for run in good)
        for key, value in (good[0].items() if good else ())
        if isinstance(value, int | float)
    }
    return {**median, "errors": [run["error"] for run in runs if "error" in run], "rounds": runs}


def _print(name: str, label: str, result: dict) -> None:
    if "error" in result:
        print(f"{name:<22} {label:<12} error: {result['error']}", flush=True)
        return
    line = f"{name:<22} {label:<12} {result['qps']:7.0f} QPS  p50 {result['p50_ms']:6.1f} ms"
    line += f"  p99 {result['p99_ms']:6.1f}"
    if "codes" in result:
        line += f"  max {result['max_ms']:6.0f}  {result['codes']}"
    print(line, flush=True)


def closed_loop(pair, rounds: int) -> dict:
    def level(server, concurrency):
        result = perf_analyzer.measure(
            server.target, server_pid=server.process.pid, concurrency=concurrency
        )
        _print(server.name, f"c={concurrency}", result)
        return result

    turns = launch.take_turns(pair, CONCURRENCY, rounds, level)
    return {
        name: {c: median_level(runs) for c, runs in levels.items()}
        for name, levels in turns.items()
    }


def open_loop(pair, peaks: dict, rounds: int) -> dict:
    def level(server, share):
        rate = share * peaks[server.name]
        result = perf_analyzer.measure(server.target, server_pid=server.process.pid, rate=rate)
        _print(server.name, f"{share:.0%} {rate:.0f}/s", result)
        return {**result, "rate": rate}

    turns = launch.take_turns(pair, OPEN_LOOP, rounds, level)
    return {
        name: {s: median_level(runs) for s, runs in levels.items()}
        for name, levels in turns.items()
    }


def overload(pair, peaks: dict, images, rounds: int) -> dict:
    def level(server, share):
        rate = share * peaks[server.name]
        result = measure_open_loop(
            server.target, "v2", images, rate,
            seconds=OVERLOAD_SECONDS, server_pid=server.process.pid,
        )  # fmt: skip
        _print(server.name, f"{share:.0%} {rate:.0f}/s", result)
        return result

    turns = launch.take_turns(pair, (BASELINE, OVERLOAD), rounds, level)
    return {
        name: {
            share: {**median_level(runs), "codes": _summed_codes(runs)}
            for share, runs in levels.items()
        }
        for name, levels in turns.items()
    }


def _summed_codes(runs: list[dict]) -> dict:
    return dict(sum((Counter(run["codes"]) for run in runs), Counter()))


def targets(zoo: str, peer: str, closed: dict, opened: dict, overloaded: dict) -> dict:
    """The issue's targets, from the medians."""
    ratios = {c: closed[zoo][c]["qps"] / closed[peer][c]["qps"] for c in closed[zoo]}
    at_80 = opened[zoo][str(BASELINE)]
    base, over = overloaded[zoo][str(BASELINE)], overloaded[zoo][str(OVERLOAD)]
    shed = sum(count for code, count in over["codes"].items() if code != "OK")
    limit_ms = 1000 * BatchingOptions().max_queue_seconds
    return {
        "qps_ratio_to_peer": ratios,
        "qps_at_or_above_peer_everywhere": all(ratio >= 1 for ratio in ratios.values()),
        "p99_over_p50_at_80": at_80["p99_ms"] / at_80["p50_ms"],
        "p99_over_p50_at_80_target": 3.0,
        "overload_codes": over["codes"],
        "overload_shed_share": shed / sum(over["codes"].values()),
        "overload_unavailable_only": set(over["codes"]) <= {"OK", "UNAVAILABLE"},
        "overload_shed_p99_ms": over["failed_p99_ms"],
        "overload_p99_over_80": over["p99_ms"] / base["p99_ms"],
        "overload_p99_over_80_target": 2.0,
        "overload_max_ms": over["max_ms"],
        "overload_max_ms_target": limit_ms,
    }


def run(*, rounds: int = 2, workers: int = 1) -> dict:
    """The comparison, written to ``bench/results/serve_peer-KIND.json`` (with more than one
    worker, ``serve_peer_Nworkers-KIND.json``)."""
    if not (launch.peer_available() and perf_analyzer.available()):
        note = "no peer: run scripts/setup-peer.sh to make .venv-peer (Triton, perf_analyzer)"
        print(note)
        return {"peer_note": note}
    images, _ = datasets.load_arrays("mnist", "test", limit=64)
    plural = "s" * (workers > 1)
    with tempfile.TemporaryDirectory() as tmp:
        _, repo = launch.prepare_model(Path(tmp))
        pair = [
            launch.zoo_server(
                f"zoo ({workers} worker{plural})", repo, protocol="v2", workers=workers
            ),
            launch.triton_peer(
                f"Triton ({workers} instance{plural})", repo / "mnist" / "1", instances=workers
            ),
        ]
        for server in pair:
            server.start()
        try:
            versions = {server.name: server.version() for server in pair}
            closed = closed_loop(pair, rounds)
            peaks = {
                name: max(level["qps"] for level in levels.values())
                for name, levels in closed.items()
            }
            opened = open_loop(pair, peaks, rounds)
            overloaded = overload(pair, peaks, images, rounds)
        finally:
            for server in pair:
                server.stop()
    zoo, peer = (server.name for server in pair)
    result = {
        "versions": versions,
        "load_generator": "perf_analyzer (tritonclient 2.51), gRPC, --async; overload: bench.load",
        "peaks": peaks,
        "closed_loop": closed,
        "open_loop": opened,
        "overload": overloaded,
        "targets": targets(zoo, peer, closed, opened, overloaded),
        "rounds": rounds,
        "workers": workers,
    }
    path = write_result("serve_peer" if workers == 1 else f"serve_peer_{workers}workers", result)
    print("targets: " + ", ".join(f"{k}={v}" for k, v in result["targets"].items()))
    print(f"written to {path}")
    return result
