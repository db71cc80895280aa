"""The serving benchmark's parts: the load generator against a real server in both protocols,
turns and medians of the side-by-side comparison, and the Triton peer answering as the zoo does."""

import numpy as np
import pytest
import tritonclient.grpc as triton

from bench import serve, serve_peer
from bench import servers as launch
from bench.load import measure, measure_open_loop
from training import datasets


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The benchmark's model, saved and exported as the benchmark does."""
    _, repo = launch.prepare_model(tmp_path_factory.mktemp("bench"))
    return repo


@pytest.fixture(scope="module")
def images():
    return datasets.load_arrays("mnist", "test", limit=64)[0]


def test_load_generators_speak_both_protocols_to_a_real_server(exported, images):
    server = launch.zoo_server("zoo", exported, protocol="v2", workers=1).start()
    try:
        for protocol in ("tfserving", "v2"):
            level = measure(
                server.target, protocol, images, 4,
                server_pid=server.process.pid, max_requests=40, max_seconds=30,
            )  # fmt: skip
            assert level["requests"] == 40 and level["errors"] == 0, (protocol, level)
            assert 0 < level["p50_ms"] <= level["p99_ms"] and level["qps"] > 0
            assert level["server_cpu_s_per_1000"] > 0
            opened = measure_open_loop(
                server.target, protocol, images, 50, seconds=1.0, server_pid=server.process.pid
            )
            assert opened["codes"] == {"OK": 50} and opened["sent"] == 50, (protocol, opened)
            assert 0 < opened["p50_ms"] <= opened["p99_ms"] <= opened["max_ms"]
            assert opened["send_lag_ms"] < 100
    finally:
        server.stop()
    with pytest.raises(ValueError, match="protocol must be one of"):
        measure(server.target, "rest", images, 1, server_pid=0, max_requests=1, max_seconds=1)
    with pytest.raises(ValueError, match="protocol must be one of"):
        measure_open_loop(server.target, "rest", images, 1, seconds=1, server_pid=0)


class _FakeServer:
    def __init__(self, name):
        self.name, self.protocol, self.target = name, "v2", name
        self.process = type("Process", (), {"pid": 0})()
        self.started = self.stopped = False

    def start(self):
        self.started = True
        return self

    def stop(self):
        self.stopped = True

    def version(self):
        return f"fake {self.name}"


def test_side_by_side_rotates_who_goes_first_and_reports_medians(monkeypatch):
    turns = []

    def fake_measure(target, protocol, images, concurrency, **limits):
        turns.append((target, concurrency))
        qps = 100.0 * len(turns)  # later turns look faster: rotation must share that out
        return {
            "qps": qps, "p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 3.0,
            "server_cpu_s_per_1000": 1.0, "requests": 10, "errors": 0,
        }  # fmt: skip

    monkeypatch.setattr(serve, "measure", fake_measure)
    pair = [_FakeServer("a"), _FakeServer("b")]
    result, versions = serve.measure_side_by_side(pair, None, {}, rounds=3)
    assert versions == {"a": "fake a", "b": "fake b"}
    assert all(s.started and s.stopped for s in pair)
    firsts = [turns[i][0] for i in range(0, len(turns), 2)]
    assert firsts == ["a", "b", "a", "b", "b", "a", "b", "a", "a", "b", "a", "b"]
    for name in ("a", "b"):
        level = result[name]["8"]
        runs = [run["qps"] for run in level["rounds"]]
        assert len(runs) == 3 and level["qps"] == sorted(runs)[1]
        assert level["requests"] == 30 and level["errors"] == 0


@pytest.mark.slow
@pytest.mark.skipif(not launch.peer_available(), reason="scripts/setup-peer.sh makes .venv-peer")
def test_triton_peer_answers_as_the_zoo_does(exported, images):
    """The same exported model behind both servers: the comparison is like for like."""
    pair = [
        launch.zoo_server("zoo", exported, protocol="v2", workers=1),
        launch.triton_peer("triton", exported / "mnist" / "1", instances=1),
    ]
    answers = []
    try:
        for server in pair:
            server.start()
            client = triton.InferenceServerClient(server.target)
            tensor = triton.InferInput("images", [8, 28, 28, 1], "UINT8")
            tensor.set_data_from_numpy(images[:8])
            output = triton.InferRequestedOutput("probabilities")
            answers.append(
                client.infer("mnist", [tensor], outputs=[output]).as_numpy("probabilities")
            )
            client.close()
    finally:
        for server in pair:
            server.stop()
    np.testing.assert_allclose(answers[0], answers[1], rtol=1e-5, atol=1e-6)


def test_the_peer_comparison_reads_its_targets_from_the_medians():
    """Medians skip the rounds perf_analyzer stopped in; the targets compare the zoo with the
    peer per concurrency, its open-loop tail, and how it sheds past its peak."""
    level = serve_peer.median_level([{"qps": 1.0, "p99_ms": 2.0}, {"error": "stopped"}])
    assert level["qps"] == 1.0 and level["errors"] == ["stopped"] and len(level["rounds"]) == 2

    def closed(qps):
        return {c: {"qps": qps} for c in ("1", "8", "32", "64")}

    opened = {"zoo": {"0.8": {"p50_ms": 4.0, "p99_ms": 10.0}}}
    overloaded = {
        "zoo": {
            "0.8": {"p99_ms": 10.0},
            "1.2": {
                "p99_ms": 15.0, "max_ms": 40.0, "failed_p99_ms": 12.0,
                "codes": {"OK": 80, "UNAVAILABLE": 20},
            },
        }
    }  # fmt: skip
    targets = serve_peer.targets(
        "zoo", "peer", {"zoo": closed(110.0), "peer": closed(100.0)}, opened, overloaded
    )
    assert targets["qps_at_or_above_peer_everywhere"]
    assert targets["qps_ratio_to_peer"]["8"] == pytest.approx(1.1)
    assert targets["p99_over_p50_at_80"] == 2.5
    assert targets["overload_shed_share"] == 0.2 and targets["overload_unavailable_only"]
    assert targets["overload_p99_over_80"] == 1.5
    behind = serve_peer.targets(
        "zoo", "peer", {"zoo": closed(90.0), "peer": closed(100.0)}, opened, overloaded
    )
    assert not behind["qps_at_or_above_peer_everywhere"]
