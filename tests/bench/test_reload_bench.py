"""The hot-reload benchmark: one reload under load against a real server, its arguments, and its
README line."""

import pytest

from bench import readme_table
from bench import reload as reload_bench
from bench import servers as launch
from training import datasets


def test_a_reload_under_load_is_measured_steady_and_around_the_switch(tmp_path, monkeypatch):
    monkeypatch.setattr(reload_bench, "SECONDS", 2.5)
    monkeypatch.setattr(reload_bench, "PUBLISH_AFTER", 0.8)
    _, repo = launch.prepare_model(tmp_path)
    images = datasets.load_arrays("mnist", "test", limit=8)[0]
    server = launch.zoo_server(
        "zoo", repo, protocol="tfserving", workers=1, extra=["--poll-seconds", "0.2"]
    ).start()
    try:
        measured = reload_bench.reload_under_load(server, repo / "mnist", 2, images, 4)
    finally:
        server.stop()
    assert measured["errors"] == 0
    for part in ("steady", "around_switch"):
        numbers = measured[part]
        assert numbers["requests"] > 0, measured
        assert 0 < numbers["p50_ms"] <= numbers["p99_ms"] <= numbers["max_ms"], measured
    assert sorted(p.name for p in (repo / "mnist").iterdir()) == ["1", "2"]  # no staging left


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rounds", "0"], "--rounds must be at least 1. Received: 0"),
        (["--concurrency", "-2"], "--concurrency must be at least 1. Received: -2"),
        (["--against", "/nonexistent"], "--against must be a checkout of this project"),
    ],
)
def test_bad_arguments_are_refused_before_any_server_starts(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(launch.Server, "start", lambda self: pytest.fail("a server started"))
    with pytest.raises(SystemExit) as exit_info:
        reload_bench.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def _side(steady_p99, around_p99, around_max):
    return {
        "steady": {"p50_ms": 10.0, "p99_ms": steady_p99, "max_ms": steady_p99 + 5},
        "around_switch": {"p50_ms": 11.0, "p99_ms": around_p99, "max_ms": around_max},
        "errors": 0,
        "reloads": [{}] * 9,
    }


def test_the_readme_line_gives_the_switch_against_steady_and_the_checkout_before():
    result = {"concurrency": 32, "this": _side(24.6, 38.2, 51.2)}
    alone = readme_table.reload_line(result)
    assert "p99 38 ms and slowest 51 ms in the second around the switch" in alone
    assert "25 ms p99 away from it, 0 failed requests (medians of 9 reloads)." in alone
    result["against"] = _side(23.6, 173.5, 302.1)
    both = readme_table.reload_line(result)
    assert both.startswith(alone[:-1])
    assert "p99 174 ms, slowest 302 ms around the switch (24 ms away from it)." in both
