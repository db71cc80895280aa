"""``zoo serve --workers 2``: two processes on the same ports look like one server: both answer,
the metrics add up, a new version reaches both, and a worker that dies is replaced."""

import shutil
import signal
import socket
import time
import urllib.request

import grpc
import numpy as np
import psutil
from helpers import free_port
from supervised import Supervisor, fresh_client, worker_processes


def counted_predictions(metrics_port: int) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.decode().splitlines()
        if line.startswith("zoo_requests_total{") and 'method="Predict"' in line
        and 'code="OK"' in line
    )  # fmt: skip


def test_two_workers_share_ports_metrics_and_reloads(make_repo, exported_version, test_images):
    repo = make_repo()
    port, rest_port, metrics_port = free_port(), free_port(), free_port()
    supervisor = Supervisor(repo, port, rest_port, metrics_port)
    images = test_images[0][:2]
    try:
        supervisor.wait_for("Serving ['mnist']", count=2)  # both workers listen
        deadline = time.monotonic() + 120
        answered = 0
        while answered < 24:  # 24 separate connections, spread by the kernel over the workers
            assert time.monotonic() < deadline, "the workers stopped answering"
            try:
                assert fresh_client(port).predict("mnist", images)["classes"].shape == (2,)
                answered += 1
            except grpc.RpcError:
                time.sleep(0.2)
        assert counted_predictions(metrics_port) >= 24, "the metrics add the workers up"

        shutil.copytree(exported_version, repo / "mnist" / "2")
        deadline, on_version_2 = time.monotonic() + 120, 0
        while on_version_2 < 16:  # every worker must have loaded it for 16 in a row to pass
            assert time.monotonic() < deadline, "a worker never loaded version 2"
            try:
                fresh_client(port).predict("mnist", images, version=2)
                on_version_2 += 1
            except grpc.RpcError:
                on_version_2 = 0
                time.sleep(0.2)
        np.testing.assert_equal(fresh_client(port).predict("mnist", images)["classes"].shape, (2,))
    finally:
        code, log = supervisor.terminate()
    assert code == 0, log[-2000:]
    assert "Started 2 workers" in log
    for index in (0, 1):  # each worker's lines name it, and the metrics port that serves
        (serving,) = [line for line in log.splitlines()
                      if f"[zoo-worker-{index}] Serving ['mnist']" in line]  # fmt: skip
        assert f"metrics on port {metrics_port} (the supervisor's)" in serving


def test_sigterm_while_the_workers_start_stops_them_cleanly(make_repo):
    """Kubernetes may stop a pod that is still starting: every worker, whether it is importing
    TensorFlow or loading the models, exits 0, and so does the supervisor."""
    supervisor = Supervisor(make_repo(), free_port(), free_port(), free_port())
    supervisor.wait_for("Started 2 workers")
    code, log = supervisor.terminate()
    assert code == 0, log[-2000:]
    assert "Workers exited with [0, 0]" in log


def test_sighup_stops_the_supervisor_and_every_worker_cleanly(make_repo):
    supervisor = Supervisor(make_repo(), free_port(), free_port(), free_port())
    supervisor.wait_for("Serving ['mnist']", count=2)
    workers = worker_processes(supervisor)
    code, log = supervisor.terminate(signal.SIGHUP)
    assert code == 0, log[-2000:]
    assert "Workers exited with [0, 0]" in log
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def test_workers_do_not_outlive_a_killed_supervisor(make_repo):
    supervisor = Supervisor(make_repo(), free_port(), free_port(), free_port())
    supervisor.wait_for("Serving ['mnist']", count=2)
    workers = worker_processes(supervisor)
    supervisor.process.kill()
    supervisor.process.wait(timeout=10)
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, f"workers {[w.pid for w in alive]} went on serving without a supervisor"


def test_a_worker_that_dies_is_replaced(make_repo, test_images):
    """A worker killed while serving (the OOM killer, a crash in native code) gets a successor,
    so the server keeps its capacity; SIGTERM still stops every worker cleanly after."""
    port = free_port()
    supervisor = Supervisor(make_repo(), port, free_port(), free_port())
    try:
        supervisor.wait_for("Serving ['mnist']", count=2)
        victim = worker_processes(supervisor)[0]
        victim.kill()
        supervisor.wait_for("exited with code -9; starting a replacement")
        supervisor.wait_for("Serving ['mnist']", count=3)
        for _ in range(12):  # separate connections reach both workers again
            assert fresh_client(port).predict("mnist", test_images[0][:1])["classes"].shape == (1,)
    finally:
        code, log = supervisor.terminate()
    assert code == 0, log[-2000:]
    assert "Workers exited with [0, 0]" in log


def test_a_replacement_that_dies_before_serving_is_retried_with_backoff(make_repo, test_images):
    """A worker that keeps dying (a file that kills it while it loads) never takes the server
    down: the other worker serves on, and each quick death waits longer before the next try."""
    port = free_port()
    supervisor = Supervisor(make_repo(), port, free_port(), free_port())
    try:
        supervisor.wait_for("Serving ['mnist']", count=2)
        first, survivor = worker_processes(supervisor)
        first.kill()
        supervisor.wait_for("exited with code -9; starting a replacement in 0.0 s")
        deadline = time.monotonic() + 60
        while not (fresh := [w for w in worker_processes(supervisor) if w.pid != survivor.pid]):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        fresh[0].kill()  # long before it can have loaded TensorFlow and served
        supervisor.wait_for("exited with code -9; starting a replacement in 0.5 s")
        assert fresh_client(port).predict("mnist", test_images[0][:1])["classes"].shape == (1,)
        supervisor.wait_for("Serving ['mnist']", count=3)
        assert survivor.is_running()
    finally:
        code, log = supervisor.terminate()
    assert code == 0, log[-2000:]
    assert "stopping the others" not in log


def test_a_port_held_by_another_program_stops_the_server_before_any_worker_starts(make_repo):
    """A REST port held by another program: every worker would fail before it serves, so the
    supervisor refuses at once, naming the port, rather than start them (or restart them)."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        rest_port = squatter.getsockname()[1]
        supervisor = Supervisor(make_repo(), free_port(), rest_port, free_port())
        code = supervisor.process.wait(timeout=180)
        supervisor.reader.join(timeout=10)
    log = "".join(supervisor.lines)
    assert code == 2, log[-2000:]
    assert f"Cannot serve REST on 127.0.0.1:{rest_port}: Address already in use" in log
    assert "Started 2 workers" not in log and "Traceback" not in log


def test_a_second_server_on_a_port_held_by_workers_refuses_to_start(make_repo):
    port, repo = free_port(), make_repo()
    supervisor = Supervisor(repo, port, free_port(), free_port())
    try:
        supervisor.wait_for("Serving ['mnist']", count=2)
        second = Supervisor(repo, port, free_port(), free_port())
        code = second.process.wait(timeout=60)
        second.reader.join(timeout=10)
        log = "".join(second.lines)
        assert code == 2, log
        assert f"Cannot serve gRPC on 127.0.0.1:{port}: Address already in use" in log
        assert "Traceback" not in log
    finally:
        code, log = supervisor.terminate()
    assert code == 0 and "Workers exited with [0, 0]" in log


def test_backoff_doubles_from_the_second_quick_death_up_to_30_seconds():
    from serving.process.workers import _backoff

    assert [_backoff(n) for n in range(1, 10)] == [0, 0.5, 1, 2, 4, 8, 16, 30, 30]
