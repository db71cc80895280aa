"""Chaos: faults thrown at ``zoo serve --workers 2`` while a client keeps asking, one Predict every
20 ms. Through each fault the service goes on answering that client, promptly; a worker it loses
is replaced; and it stops cleanly when told to. Slow: ``pytest -m slow tests/serving/test_chaos.py``.
"""

import base64
import io
import json
import shutil
import signal
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import psutil
import pytest
from helpers import free_port, partial_rest_body
from PIL import Image
from supervised import Supervisor, fresh_client, worker_processes
from test_warmup import forged_length_record

from serving.plane.warmup import WARMUP_FILE

pytestmark = pytest.mark.slow


@dataclass
class Call:
    start: float
    seconds: float
    code: str


class Prober(threading.Thread):
    """A client sending one Predict every 20 ms on its own connection, recording every call."""

    def __init__(self, port: int, image: np.ndarray):
        super().__init__(daemon=True)
        self.client = fresh_client(port)
        self.image = image
        self.calls: list[Call] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            start = time.monotonic()
            try:
                self.client.predict("mnist", self.image)
                code = "OK"
            except grpc.RpcError as error:
                code = error.code().name
            self.calls.append(Call(start, time.monotonic() - start, code))
            time.sleep(0.02)

    def calls_since(self, start: float) -> list[Call]:
        return [call for call in self.calls if call.start >= start]

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=60)


@dataclass
class Service:
    supervisor: Supervisor
    prober: Prober
    repo: Path
    port: int
    rest_port: int
    exported_version: Path


def start_service(repo: Path, exported_version: Path, image: np.ndarray) -> Service:
    port, rest_port = free_port(), free_port()
    supervisor = Supervisor(repo, port, rest_port, free_port())
    supervisor.wait_for("Serving ['mnist']", count=2)
    prober = Prober(port, image)
    prober.start()
    return Service(supervisor, prober, repo, port, rest_port, exported_version)


@pytest.fixture(scope="module")
def service(tmp_path_factory, exported_version, test_images):
    repo = tmp_path_factory.mktemp("chaos") / "repo"
    shutil.copytree(exported_version, repo / "mnist" / "1")
    running = start_service(repo, exported_version, test_images[0][:1])
    yield running
    running.prober.stop()
    code, log = running.supervisor.terminate()
    assert code == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]  # every fault said in a line of its own


def publish(service: Service, warmup: bytes | None = None) -> int:
    """A new version, staged beside the model and renamed into place as an exporter does."""
    version = 1 + max(int(path.name) for path in (service.repo / "mnist").iterdir()
                      if path.name.isdigit())  # fmt: skip
    staging = service.repo / "mnist" / f".staging-{version}"
    shutil.copytree(service.exported_version, staging)
    if warmup is not None:
        (staging / WARMUP_FILE).parent.mkdir(parents=True, exist_ok=True)
        (staging / WARMUP_FILE).write_bytes(warmup)
    staging.rename(service.repo / "mnist" / str(version))
    return version


def newest_available(port: int) -> int:
    """The newest AVAILABLE version a worker reports, on a connection of its own."""
    return max(s.version for s in fresh_client(port).status("mnist") if s.state == 30)


def all_answered_within(calls: list[Call], seconds: float) -> None:
    assert calls, "the prober made no call"
    assert {call.code for call in calls} == {"OK"}, [c for c in calls if c.code != "OK"][:5]
    assert max(call.seconds for call in calls) < seconds, max(call.seconds for call in calls)


def test_a_worker_killed_while_it_loads_a_version_is_replaced_and_the_version_lands(service):
    start = time.monotonic()
    serving = sum("Serving ['mnist']" in line for line in service.supervisor.lines)
    version = publish(service)
    service.supervisor.wait_for(f"Loading model mnist version {version}")
    worker_processes(service.supervisor)[0].kill()
    service.supervisor.wait_for("exited with code -9; starting a replacement")
    service.supervisor.wait_for("Serving ['mnist']", count=serving + 1)
    deadline = time.monotonic() + 60
    while not all(newest_available(service.port) == version for _ in range(12)):
        assert time.monotonic() < deadline, f"version {version} did not reach both workers"
        time.sleep(0.5)
    calls = service.prober.calls_since(start)
    failed = [call for call in calls if call.code != "OK"]
    # Only the calls in flight on the killed worker's connection fail, and only as UNAVAILABLE.
    assert {call.code for call in failed} <= {"UNAVAILABLE"}, failed
    assert len(failed) <= 3 and calls[-1].code == "OK", failed


def test_a_forged_warm_up_file_fails_its_version_and_kills_no_worker(service):
    workers = {w.pid for w in worker_processes(service.supervisor)}
    serving = newest_available(service.port)
    start = time.monotonic()
    version = publish(service, warmup=forged_length_record())
    service.supervisor.wait_for(f"Failed to load model mnist version {version}", count=2)
    time.sleep(1)
    assert {w.pid for w in worker_processes(service.supervisor)} == workers
    assert all(newest_available(service.port) == serving for _ in range(12))
    assert "claims 1,099,511,627,776 bytes" in "".join(service.supervisor.lines)
    all_answered_within(service.prober.calls_since(start), seconds=1.0)


def large_png(side: int, seed: int) -> str:
    """A base64 PNG of ``side`` x ``side`` grey pixels: cheap to send, costly to decode."""
    pixels = np.add.outer(np.arange(side), np.arange(side)) + seed
    buffer = io.BytesIO()
    Image.fromarray((pixels % 256).astype(np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_flood_of_large_images_to_decode_does_not_stall_other_clients(service):
    body = json.dumps({"instances": [{"b64": large_png(2048, seed)} for seed in range(16)]})
    url = f"http://127.0.0.1:{service.rest_port}/v1/models/mnist:predict"

    def flood(_) -> int:
        request = urllib.request.Request(url, data=body.encode())
        with urllib.request.urlopen(request, timeout=120) as response:
            return len(json.loads(response.read())["predictions"])

    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answered = list(pool.map(flood, range(24)))
    assert answered == [16] * 24
    all_answered_within(service.prober.calls_since(start), seconds=1.0)


def answered_503(connection) -> bool:
    """Whether the server refused this held body; one still being read has no answer yet."""
    connection.settimeout(0.2)
    try:
        return connection.recv(64).startswith(b"HTTP/1.1 503")
    except TimeoutError:
        return False


def test_a_flood_of_held_request_bodies_is_refused_and_its_memory_returned(service):
    workers = worker_processes(service.supervisor)
    before = sum(w.memory_info().rss for w in workers)
    start = time.monotonic()
    declared = 63 << 20
    holding = [partial_rest_body(service.rest_port, declared, 1 << 20) for _ in range(30)]
    time.sleep(2)
    refused = sum(answered_503(connection) for connection in holding)
    peak = sum(w.memory_info().rss for w in workers)
    for connection in holding:
        connection.close()
    time.sleep(2)
    after = sum(w.memory_info().rss for w in workers)
    all_answered_within(service.prober.calls_since(start), seconds=1.0)
    assert refused >= 20, refused  # each worker holds at most 4 x 64 MiB of bodies
    assert peak - before < 600 << 20, (before, peak)
    assert after - before < 150 << 20, (before, peak, after)


@pytest.mark.parametrize(
    "signals", [["SIGTERM", "SIGTERM"], ["SIGHUP"]], ids=["sigterm-twice", "sighup"]
)
def test_a_stop_signal_under_load_drains_and_exits_cleanly(signals, tmp_path, exported_version,
                                                           test_images):  # fmt: skip
    shutil.copytree(exported_version, tmp_path / "repo" / "mnist" / "1")
    service = start_service(tmp_path / "repo", exported_version, test_images[0][:1])
    workers = worker_processes(service.supervisor)
    time.sleep(1)
    for name in signals[:-1]:
        service.supervisor.process.send_signal(getattr(signal, name))
        time.sleep(0.05)
    code, log = service.supervisor.terminate(getattr(signal, signals[-1]))
    service.prober.stop()
    assert code == 0, log[-3000:]
    assert "Workers exited with [0, 0]" in log
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    codes = [call.code for call in service.prober.calls]
    assert codes[0] == "OK" and set(codes) <= {"OK", "UNAVAILABLE"}, set(codes)
    # Answered until the drain began, refused after: never an answer lost half-way.
    first_refused = codes.index("UNAVAILABLE") if "UNAVAILABLE" in codes else len(codes)
    assert set(codes[first_refused:]) == {"UNAVAILABLE"} or first_refused == len(codes)
