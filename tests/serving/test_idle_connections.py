"""Connections that carry no request are closed after ``--idle-timeout-seconds``, on every port:
raw TCP connections that send nothing, slowloris headers, idle keep-alive, a body that never
comes; clients that go quiet between calls reconnect by themselves."""

import select
import shutil
import socket
import time
import urllib.request

import pytest
from helpers import loopback_settings

from core.errors import ConfigError
from serving.client import PredictionClient
from serving.process.server import ServerThread
from serving.settings import build_settings

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def running(tmp_path_factory, exported_version):
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(exported_version, root / "mnist" / "1")
    with ServerThread(
        loopback_settings(root, idle_timeout_seconds=TIMEOUT, metrics_port=0)
    ) as server:
        yield server


def seconds_until_closed(sock: socket.socket, send=b"", limit=10.0) -> float:
    """Seconds until the server closes ``sock``, sending ``send`` a byte at a time meanwhile (one
    every 0.2 s, as a slowloris client would); fails after ``limit``."""
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < limit:
        if sent < len(send):
            try:
                sock.send(send[sent : sent + 1])
            except OSError:
                return time.monotonic() - start
            sent += 1
        if select.select([sock], [], [], 0.2)[0]:
            try:
                while sock.recv(65536):
                    pass  # an answer (408, a GOAWAY): read on to the close
            except OSError:
                pass
            return time.monotonic() - start
    raise AssertionError(f"still open after {limit} s")


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(True)
    sock.settimeout(10)
    return sock


@pytest.mark.parametrize("which", ["port", "rest_port", "metrics_port"])
def test_a_connection_that_sends_nothing_is_closed(running, which, capfd):
    with connect(getattr(running, which)) as sock:
        assert TIMEOUT * 0.5 <= seconds_until_closed(sock) <= TIMEOUT + 2
    assert "Traceback" not in capfd.readouterr().err


def test_metrics_answer_while_silent_connections_wait_to_be_dropped(running):
    silent = [connect(running.metrics_port) for _ in range(20)]
    url = f"http://127.0.0.1:{running.metrics_port}/metrics"
    assert urllib.request.urlopen(url, timeout=10).status == 200
    for sock in silent:
        assert seconds_until_closed(sock) <= TIMEOUT + 4  # accepted in turn: a little later
        sock.close()


def test_a_grpc_connection_that_never_finishes_its_handshake_is_closed(running):
    with connect(running.port) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")  # HTTP/2's preface, then no settings
        assert seconds_until_closed(sock) <= TIMEOUT + 2


def test_rest_headers_sent_a_byte_at_a_time_are_cut_off(running):
    headers = b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: 1\r\n" * 20
    with connect(running.rest_port) as sock:
        assert seconds_until_closed(sock, send=headers) <= TIMEOUT + 2


def test_a_rest_body_that_does_not_arrive_is_answered_408(running):
    with connect(running.rest_port) as sock:
        sock.sendall(
            b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"instances"'
        )
        start = time.monotonic()
        answer = sock.recv(65536)
        assert time.monotonic() - start <= TIMEOUT + 2
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"did not arrive within 1 s (--idle-timeout-seconds)" in answer


def test_an_idle_keep_alive_rest_connection_is_closed(running):
    with connect(running.rest_port) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert seconds_until_closed(sock) <= TIMEOUT + 2


def test_a_grpc_client_quiet_for_longer_than_the_timeout_reconnects(running, test_images):
    client = PredictionClient(f"127.0.0.1:{running.port}")
    images = test_images[0][:2]
    assert client.predict("mnist", images)["probabilities"].shape == (2, 10)
    time.sleep(TIMEOUT * 2.5)  # the server ends the idle connection meanwhile
    assert client.predict("mnist", images)["probabilities"].shape == (2, 10)


@pytest.mark.parametrize("value", [0.5, 0.001])
def test_an_idle_timeout_under_a_second_is_refused(value):
    with pytest.raises(ConfigError, match="0 \\(never\\) or at least 1 s"):
        build_settings(idle_timeout_seconds=value, auth_token="")
