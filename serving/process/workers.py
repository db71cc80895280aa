"""Several server processes on the same ports: ``zoo serve --workers N``.

One Python process runs one event loop, which caps the gRPC and REST work it can do at about one
core. The supervisor here starts N worker processes that each run the whole server (``serve``)
with SO_REUSEPORT on the gRPC and REST ports, so the kernel spreads incoming connections over
them; each worker loads the models, polls the repository and batches on its own, and TensorFlow's
threads are divided between them. The client sees one server:

- metrics: the workers write prometheus-client's multiprocess files and the supervisor serves
  their sum on the metrics port;
- hot reload: every worker polls the repository and switches versions by itself;
- SIGTERM/SIGINT/SIGHUP: forwarded once to every worker, which drains its in-flight requests (one
  still starting exits at once); the supervisor exits 0 when all of them did. A worker whose
  supervisor dies (even of SIGKILL) is sent SIGTERM by the kernel, so none is left serving alone;
- a worker that dies once the server has served (killed for memory, a crash in native code, a
  file that kills it while it loads) is replaced, as gunicorn and uvicorn replace theirs, so the
  server keeps its capacity; the others serve meanwhile. A worker that dies again within a minute
  of its start waits before its next replacement, twice as long each time (0.5 s up to 30 s), so
  a crash that repeats does not spin. Only a worker that dies before the server ever served
  failed to start (a busy port, a broken repository), which a replacement would repeat: the
  supervisor then stops the others and exits 1.
"""

import contextlib
import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import wait

from core.cpu import usable_cores
from core.errors import ConfigError
from core.quiet import start_quietly
from serving.process import event_loop
from serving.settings import ServerSettings

log = logging.getLogger("zoo.serving")
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
PR_SET_PDEATHSIG = 1  # prctl(2)
FIRST_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS = 0.5, 30.0
STABLE_SECONDS = 60.0  # a worker that lived this long starts its backoff afresh


def _exit_before_serving(_signum, _frame):
    """SIGTERM/SIGINT to a worker still importing TensorFlow: nothing is in flight yet, so it
    exits cleanly (code 0) instead of dying of the signal."""
    raise SystemExit(0)


def _import_tensorflow() -> None:
    import tensorflow as tf

    tf.config.list_physical_devices()  # the moment TensorFlow logs its CUDA probe


def _die_with_supervisor(supervisor: int) -> None:
    """Asks the kernel (Linux) to send this process SIGTERM when its parent dies; exits at once
    if the parent died before the request."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:
        raise SystemExit(0)


def _worker(settings: ServerSettings, threads: int, listening, serving, supervisor: int) -> None:
    """One worker process: TensorFlow limited to its share of the cores, then the server, whose
    own signal handlers replace ``_exit_before_serving`` as soon as it runs. ``listening`` (a
    shared flag) tells the supervisor that the stop signals have a handler from now on,
    ``serving`` that the server has started."""
    for signum in event_loop.STOP_SIGNALS:
        signal.signal(signum, _exit_before_serving)
    _die_with_supervisor(supervisor)
    listening.value = 1
    start_quietly(_import_tensorflow)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from serving.process.server import serve

    def started(_running) -> None:
        serving.value = 1

    logging.basicConfig(  # each line names its worker: zoo-worker-N
        level=logging.INFO, format="%(asctime)s %(levelname)s [%(processName)s] %(message)s"
    )
    event_loop.run(serve(settings, started, worker=True), settings.loop)


@dataclass
class _Slot:
    """One worker's place: its process and the flags it shares with the supervisor."""

    process: multiprocessing.Process
    listening: object
    serving: object
    started: float


def ensure_ports_free(settings: ServerSettings) -> None:
    """ConfigError naming the port when another program holds the gRPC or REST port. The workers
    bind with SO_REUSEPORT, which would let them join another server's sockets on that port (and
    take part of its traffic); a plain bind first makes that a refusal."""
    for what, port in (("gRPC", settings.port), ("REST", settings.rest_port)):
        if port <= 0:
            continue
        family, kind, proto, _, address = socket.getaddrinfo(
            settings.host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.bind(address)
            except OSError as error:
                raise ConfigError(
                    f"Cannot serve {what} on {settings.host}:{port}: {error.strerror}. Another "
                    "program holds the port; only the workers of one zoo serve share a port."
                ) from None


def run_workers(settings: ServerSettings) -> int:
    """Runs ``settings.worker_count`` workers until a stop signal; returns the exit code."""
    from prometheus_client import multiprocess

    from serving.telemetry.metrics import serve_workers_metrics

    ensure_ports_free(settings)
    count = settings.worker_count
    threads = max(1, usable_cores() // count)
    metrics_dir = tempfile.mkdtemp(prefix="zoo-metrics-")
    os.environ[METRICS_DIR_VARIABLE] = metrics_dir  # inherited by the workers, read at import
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked TF state

    def start_worker(index: int) -> _Slot:
        listening, serving = context.RawValue("b", 0), context.RawValue("b", 0)
        process = context.Process(
            target=_worker,
            args=(settings, threads, listening, serving, os.getpid()),
            name=f"zoo-worker-{index}",
        )
        process.start()
        return _Slot(process, listening, serving, time.monotonic())

    slots: list[_Slot] = []
    stopping = threading.Event()
    failed = False
    metrics_server = None

    def forward(signum, _frame=None):
        if stopping.is_set():  # once: a second signal would kill a worker that is draining
            return
        stopping.set()
        for slot in slots:
            args = (slot.process, slot.listening, signum)
            threading.Thread(target=_signal_once_listening, args=args, daemon=True).start()

    try:
        slots.extend(start_worker(index) for index in range(count))
        if settings.metrics_port >= 0:
            metrics_server, _ = serve_workers_metrics(
                settings.metrics_host, settings.metrics_port, metrics_dir,
                settings.idle_timeout_seconds,
            )  # fmt: skip
        for signum in event_loop.STOP_SIGNALS:
            signal.signal(signum, forward)
        log.info("Started %d workers (%d TensorFlow threads each)", count, threads)
        running, restarts = set(range(count)), {}  # restarts: index -> when to start it
        failures, served = [0] * count, False
        while running or restarts:
            timeout = None if not restarts else min(restarts.values()) - time.monotonic()
            wait([slots[i].process.sentinel for i in running], timeout=_bounded(timeout))
            for index, due in list(restarts.items()):
                if stopping.is_set() or due <= time.monotonic():
                    del restarts[index]
                    if not stopping.is_set():
                        slots[index] = start_worker(index)
                        running.add(index)
            for index in [i for i in running if slots[i].process.exitcode is not None]:
                slot = slots[index]
                running.discard(index)
                multiprocess.mark_process_dead(slot.process.pid, metrics_dir)
                served = served or any(s.serving.value for s in slots)
                if stopping.is_set():
                    continue
                if served:
                    lived = time.monotonic() - slot.started
                    failures[index] = 0 if lived >= STABLE_SECONDS else failures[index] + 1
                    delay = _backoff(failures[index])
                    log.warning("Worker %d (pid %d) exited with code %s; starting a replacement "
                                "in %.1f s", index, slot.process.pid, slot.process.exitcode,
                                delay)  # fmt: skip
                    restarts[index] = time.monotonic() + delay
                else:
                    log.error("Worker %d exited with code %s before it served; stopping the "
                              "others", index, slot.process.exitcode)  # fmt: skip
                    failed = True
                    forward(signal.SIGTERM)
        codes = [slot.process.exitcode for slot in slots]
        log.info("Workers exited with %s", codes)
        return 0 if not failed and all(code == 0 for code in codes) else 1
    finally:
        for slot in slots:
            if slot.process.is_alive():
                slot.process.terminate()
        if metrics_server:
            metrics_server.shutdown()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _backoff(failures: int) -> float:
    """Seconds before the next replacement of a worker that died ``failures`` times in a row
    soon after its start: none the first time, then 0.5 s doubling up to 30 s."""
    if failures <= 1:
        return 0.0
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (failures - 2))


def _bounded(timeout: float | None) -> float | None:
    """A wait's timeout, at least 0 and at most half a second while a restart is due (a stop
    signal meanwhile must not wait for it)."""
    return None if timeout is None else min(max(timeout, 0.0), 0.5)


def _signal_once_listening(process, listening, signum: int) -> None:
    """Sends ``signum`` to a worker as soon as it handles it: a worker whose interpreter is still
    starting would die of it (exit code -15) instead of stopping cleanly."""
    while not listening.value:
        if wait([process.sentinel], timeout=0.01):  # it ended before it listened
            return
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(process.pid, signum)
