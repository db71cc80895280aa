"""perf_analyzer's command lines and report as the serving benchmark reads them, and, where
scripts/setup-peer.sh has installed it, a real run against ``zoo serve``."""

import pytest

from bench import perf_analyzer
from bench import servers as launch

CSV = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,"
    "p90 latency,p95 latency,p99 latency\n"
    "8,1391.83,4,2037,1607,439,1595,51,3,5510,7499,8092,9592\n"
)


def test_the_report_is_read_in_milliseconds_with_the_late_share():
    output = "[WARNING] Perf Analyzer was not able to keep up. 76.55% of the requests were delayed."
    result = perf_analyzer.parse(CSV, output)
    assert result["qps"] == pytest.approx(1391.83)
    assert result["p50_ms"] == pytest.approx(5.51) and result["p99_ms"] == pytest.approx(9.592)
    assert result["server_queue_ms"] == pytest.approx(1.607)
    assert result["server_infer_ms"] == pytest.approx(1.595)
    assert result["late_percent"] == pytest.approx(76.55)
    assert perf_analyzer.parse(CSV, "")["late_percent"] == 0.0


def test_a_level_is_a_concurrency_or_a_rate(tmp_path):
    closed = perf_analyzer.command("h:1", tmp_path / "a.csv", concurrency=8, rate=None)
    assert closed[closed.index("--concurrency-range") + 1] == "8" and "--async" in closed
    opened = perf_analyzer.command("h:1", tmp_path / "a.csv", concurrency=None, rate=1234.4)
    assert opened[opened.index("--request-rate-range") + 1] == "1234"
    assert opened[opened.index("--request-distribution") + 1] == "constant"
    for both_or_neither in ({"concurrency": 1, "rate": 5.0}, {"concurrency": None, "rate": None}):
        with pytest.raises(ValueError, match="one of concurrency and rate"):
            perf_analyzer.command("h:1", tmp_path / "a.csv", **both_or_neither)


@pytest.mark.slow
@pytest.mark.skipif(not perf_analyzer.available(), reason="scripts/setup-peer.sh installs it")
def test_perf_analyzer_drives_zoo_serve_closed_and_open_loop(tmp_path):
    _, repo = launch.prepare_model(tmp_path)
    server = launch.zoo_server("zoo", repo, protocol="v2", workers=1).start()
    try:
        pid = server.process.pid
        closed = perf_analyzer.measure(server.target, server_pid=pid, concurrency=2)
        opened = perf_analyzer.measure(server.target, server_pid=pid, rate=100)
    finally:
        server.stop()
    assert "error" not in closed and "error" not in opened, (closed, opened)
    assert closed["qps"] > 0 and 0 < closed["p50_ms"] <= closed["p99_ms"]
    assert opened["qps"] == pytest.approx(100, rel=0.2) and opened["server_cpu_cores"] > 0
