"""The failed-request log stays bounded under a stream of bad requests, and says what it dropped;
the metrics still count every failure."""

import logging
import socket
import urllib.request

import grpc
import numpy as np
import pytest
from helpers import loopback_settings
from test_rest_api import call

from serving.client import PredictionClient
from serving.process.server import ServerThread
from serving.telemetry import request_log
from serving.telemetry.request_log import RateLimit


def record(message="Predict failed"):
    return logging.LogRecord("zoo.serving.requests", logging.WARNING, "", 0, message, (), None)


def test_rate_limit_passes_a_burst_per_window_then_says_how_many_it_dropped():
    now = [100.0]
    limit = RateLimit(burst=3, window=10.0, clock=lambda: now[0])
    records = [record() for _ in range(7)]
    assert [limit.filter(r) for r in records] == [True] * 3 + [False] * 4
    now[0] += 9.9
    assert not limit.filter(record())  # still the same window
    now[0] += 0.1
    first = record()
    assert limit.filter(first)
    assert first.getMessage() == (
        "Predict failed (5 failed requests before it not logged: more than 3 in 10 s)"
    )
    second = record()
    assert limit.filter(second) and second.getMessage() == "Predict failed"


def test_a_stream_of_bad_requests_logs_a_burst_and_counts_every_one(
    make_repo, test_images, caplog, monkeypatch
):
    # A fresh window that outlasts the test, whatever other tests logged before.
    for name, value in {"window_start": float("-inf"), "passed": 0, "dropped": 0}.items():
        monkeypatch.setattr(request_log.limit, name, value)
    monkeypatch.setattr(request_log.limit, "window", 3600.0)
    caplog.set_level(logging.WARNING, logger="zoo.serving.requests")
    bad_images = test_images[0][:1].astype(np.float32)
    with ServerThread(loopback_settings(make_repo(), metrics_port=0)) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        for _ in range(50):
            with pytest.raises(grpc.RpcError) as refused:
                client.predict("mnist", bad_images)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        for _ in range(10):
            status, answer = call(running.rest_port, "/v1/models/mnist:predict", b'{"instances": [')
            assert status == 400 and "not valid JSON" in answer["error"]
        lines = [r.getMessage() for r in caplog.records if r.name == "zoo.serving.requests"]
        assert len(lines) == request_log.BURST
        assert "Predict model='mnist' failed: INVALID_ARGUMENT" in lines[0]

        request_log.limit.window_start = float("-inf")  # the next window opens
        with pytest.raises(grpc.RpcError):
            client.predict("mnist", bad_images)
        last = [r.getMessage() for r in caplog.records if r.name == "zoo.serving.requests"][-1]
        dropped = 60 - request_log.BURST
        assert f"({dropped} failed requests before it not logged: more than" in last
        url = f"http://127.0.0.1:{running.metrics_port}/metrics"
        metrics = urllib.request.urlopen(url, timeout=10).read().decode()
    counted = 'zoo_requests_total{code="INVALID_ARGUMENT",method="Predict",model="mnist"} 51.0'
    assert counted in metrics


def test_malformed_http_is_one_line_each_within_the_same_bound(make_repo, caplog, monkeypatch):
    """aiohttp once logged an 11-line parser traceback per malformed request, without bound."""
    for name, value in {"window_start": float("-inf"), "passed": 0, "dropped": 0}.items():
        monkeypatch.setattr(request_log.limit, name, value)
    monkeypatch.setattr(request_log.limit, "window", 3600.0)
    caplog.set_level(logging.WARNING)
    with ServerThread(loopback_settings(make_repo())) as running:
        for _ in range(30):
            with socket.create_connection(("127.0.0.1", running.rest_port), timeout=10) as raw:
                raw.sendall(b"GET /v2 HTTP/1.1\r\nHost localhost\r\n\r\n")  # a header without ':'
                assert b" 400 Bad Request" in raw.recv(100)
        assert call(running.rest_port, "/v2/health/ready")[0] == 200
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(records) == request_log.BURST
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in records)
    assert {r.levelname for r in records} == {"WARNING"}  # the client's error, not the server's
    assert "Error handling request from 127.0.0.1: BadHttpMessage: 400" in records[0].getMessage()
