"""Prometheus metrics of the server, in a registry of its own (several servers may share a
process in tests), exposed over HTTP on the metrics port.

With several worker processes (``serving.process.workers``), prometheus-client's multiprocess
mode keeps each worker's values in files under ``PROMETHEUS_MULTIPROC_DIR`` and the supervisor
serves their sum: one server, as the client sees it.

prometheus-client serves each connection on a thread of its own; a connection that goes quiet for
the idle timeout (``--idle-timeout-seconds``) is dropped, so clients that connect and send nothing
cannot pile up threads.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    """Requests by model, method and status; latency; batch sizes; queue time; loaded versions."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "zoo_requests",
            "Requests by model, RPC method and gRPC status code.",
            ["model", "method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "zoo_request_latency_seconds",
            "Time from request to response, by model and method.",
            ["model", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "zoo_batch_size",
            "Examples per model call, by model.",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "zoo_queue_seconds",
            "Time a request waited for its model call, by model.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.dropped = Counter(
            "zoo_requests_dropped",
            "Requests answered without running the model: their deadline passed while they "
            "queued (reason=deadline), they were shed in overload (reason=overload), or they "
            "queued longer than max_queue_seconds (reason=queue_time).",
            ["model", "reason"],
            registry=self.registry,
        )
        self.versions = Gauge(
            "zoo_model_versions_loaded",
            "Versions loaded and serving, by model (the most any worker holds).",
            ["model"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )

    def record_request(self, model: str, method: str, code: str, seconds: float) -> None:
        self.requests.labels(model, method, code).inc()
        self.latency.labels(model, method).observe(seconds)

    def record_dropped(self, model: str, reason: str) -> None:
        self.dropped.labels(model, reason).inc()

    def record_batch(self, model: str, size: int, waits: list[float]) -> None:
        self.batch_size.labels(model).observe(size)
        for wait in waits:
            self.queue_seconds.labels(model).observe(wait)

    def serve_http(self, host: str, port: int, idle_timeout: float = 0):
        """Starts the /metrics HTTP server; returns ``(server, bound_port)``."""
        return _serve(host, port, self.registry, idle_timeout)


def serve_workers_metrics(host: str, port: int, folder: str, idle_timeout: float = 0):
    """The /metrics HTTP server of a supervisor: the sum of its workers' values in ``folder``
    (``PROMETHEUS_MULTIPROC_DIR``); returns ``(server, bound_port)``."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)
    return _serve(host, port, registry, idle_timeout)


def _serve(host: str, port: int, registry: CollectorRegistry, idle_timeout: float):
    """prometheus-client's HTTP server for ``registry``, its connections dropped after
    ``idle_timeout`` seconds without a byte from the client (0: never)."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    if idle_timeout:
        server.RequestHandlerClass = _dropping_quiet_clients(
            server.RequestHandlerClass, idle_timeout
        )
    return server, server.server_port


def _dropping_quiet_clients(handler: type, seconds: float) -> type:
    """``handler`` with a socket timeout of ``seconds``; a client that times out is dropped
    quietly (wsgiref would print a traceback for it)."""

    class QuietClientsDropped(handler):
        timeout = seconds

        def handle(self):
            try:
                super().handle()
            except TimeoutError:
                self.close_connection = True

    return QuietClientsDropped
