"""The serving benchmark's parts: the load generator against a real server in both protocols,
turns and medians of the side-by-side comparison, and the Triton peer answering as the zoo does."""

import numpy as np
import pytest
import tritonclient.grpc as triton

from bench import serve
from bench import servers as launch
from bench.load import measure
from training import datasets


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The benchmark's model, saved and exported as the benchmark does."""
    _, repo = serve.prepare_model(tmp_path_factory.mktemp("bench"))
    return repo


@pytest.fixture(scope="module")
def images():
    return datasets.load_arrays("mnist", "test", limit=64)[0]


def test_load_generator_speaks_both_protocols_to_a_real_server(exported, images):
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
    finally:
        server.stop()
    with pytest.raises(ValueError, match="protocol must be one of"):
        measure(server.target, "rest", images, 1, server_pid=0, max_requests=1, max_seconds=1)


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
