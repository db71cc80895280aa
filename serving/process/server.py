"""The server: gRPC (both protocols, health, reflection) and REST front ends on one event loop,
with TLS, token auth, metrics and hot reload.

``serve(settings)`` runs until SIGTERM/SIGINT/SIGHUP: it then reports NOT_SERVING, stops accepting,
lets in-flight requests finish (up to ``grace_seconds``) and returns. ``ServerThread`` runs the
same server on a background thread, for tests and benchmarks.
"""

import asyncio
import contextlib
import logging
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc
from tritonclient.grpc import service_pb2_grpc

from core.errors import ConfigError
from serving.frontends.auth import TokenAuthInterceptor
from serving.frontends.kserve_servicer import InferenceServicer
from serving.frontends.rest import RestApi
from serving.frontends.tfserving_servicer import ModelServicer, PredictionServicer
from serving.plane.dataplane import DataPlane
from serving.plane.heap import freeze_baseline
from serving.process import event_loop
from serving.process.open_files import raise_open_files_limit
from serving.settings import ServerSettings
from serving.telemetry import tracing
from serving.telemetry.metrics import ServerMetrics

log = logging.getLogger("zoo.serving")


def _credentials(settings: ServerSettings):
    if not settings.tls:
        return None
    key, cert = Path(settings.tls_key).read_bytes(), Path(settings.tls_cert).read_bytes()
    client_ca = Path(settings.tls_client_ca).read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def _rest_ssl_context(settings: ServerSettings) -> ssl.SSLContext | None:
    """The REST port's TLS: the gRPC port's certificate, key and client CA."""
    if not settings.tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    if settings.tls_client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(settings.tls_client_ca)
    return context


async def _start_rest(
    settings: ServerSettings, dataplane: DataPlane, metrics: ServerMetrics, reuse_port: bool
):
    """Starts the REST front end on ``settings.rest_port``; returns ``(runner, bound port)``."""
    if settings.rest_port < 0:
        return None, -1
    idle = settings.idle_timeout_seconds
    api = RestApi(dataplane, metrics, settings.auth_token, settings.max_message_bytes, idle)
    between_requests = {"keepalive_timeout": idle} if idle else {}
    runner = web.AppRunner(
        api.app, access_log=None, shutdown_timeout=settings.grace_seconds, **between_requests
    )
    await runner.setup()
    api.idle.start(runner.server)
    site = web.TCPSite(
        runner,
        settings.host,
        settings.rest_port,
        ssl_context=_rest_ssl_context(settings),
        reuse_port=reuse_port or None,
    )
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise ConfigError(
            f"Cannot serve REST on {settings.host}:{settings.rest_port}: {error.strerror}."
        ) from None
    return runner, runner.addresses[0][1]


@dataclass
class Running:
    """A started server: its ports, and an event that stops it."""

    port: int
    metrics_port: int
    stop: asyncio.Event
    dataplane: DataPlane
    rest_port: int = -1


async def _poll_forever(dataplane: DataPlane, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await dataplane.poll()
        except Exception:
            log.exception("Polling the model repository failed")


# Calls gRPC core may hold before the server takes them. Past its default of 1,000 core cancels
# the excess (clients see CANCELLED, which the server never sees, so cannot log or count); under
# this bound every call reaches the data plane, whose queue bounds refuse what cannot be answered
# in time as UNAVAILABLE, counted. A call's bytes stay under HTTP/2 flow control meanwhile.
PENDING_CALLS = 10_000


def connection_options(settings: ServerSettings) -> list[tuple[str, int]]:
    """gRPC's bounds on a connection's life, from ``--max-connection-age-seconds`` and
    ``--idle-timeout-seconds``.

    A gRPC client keeps one HTTP/2 connection for as long as it lives, and the kernel (workers on
    SO_REUSEPORT) or a Kubernetes Service chose its process when it connected: without an age,
    a worker or replica added later never gets that client's requests. The idle timeout ends
    connections with no call in flight (GOAWAY; a client reconnects on its next call) and, as the
    handshake timeout, connections that never complete their handshake (raw TCP connections that
    send nothing, or not even HTTP/2's settings), which otherwise hold a file descriptor forever.
    """
    options = []
    if settings.max_connection_age_seconds:
        options += [
            ("grpc.max_connection_age_ms", int(1000 * settings.max_connection_age_seconds)),
            ("grpc.max_connection_age_grace_ms", int(1000 * settings.grace_seconds)),
        ]
    if settings.idle_timeout_seconds:
        idle_ms = int(1000 * settings.idle_timeout_seconds)
        options += [
            ("grpc.max_connection_idle_ms", idle_ms),
            ("grpc.server_handshake_timeout_ms", idle_ms),
        ]
    return options


async def serve(
    settings: ServerSettings,
    on_started=None,
    stop: asyncio.Event | None = None,
    *,
    worker: bool = False,
):
    """Runs the server until ``stop`` is set (or SIGTERM/SIGINT in the main thread).

    Args:
        worker: one of several processes sharing the ports (``serving.process.workers``): the
            ports are bound with SO_REUSEPORT, and the supervisor serves the metrics of all.
    """
    # Signals first: one that arrives while the models load stops the server as soon as it has
    # started, through the same graceful shutdown as later.
    stop = stop or asyncio.Event()
    before, limit = raise_open_files_limit()
    if limit != before:
        log.info(
            "Raised the open-files limit from %d to %d (a connection holds one)", before, limit
        )
    with contextlib.suppress(ValueError, RuntimeError):  # only possible in the main thread
        for signum in event_loop.STOP_SIGNALS:
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    if settings.tracing:
        tracing.start()
    metrics = ServerMetrics()
    health_servicer = health.aio.HealthServicer()

    async def set_health(name: str, serving: bool):
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await health_servicer.set(name, status)

    async def model_changed_health(name: str, serving: bool):
        await set_health(name, serving)
        await set_health("", dataplane.ready())

    def model_changed(name: str, serving: bool):
        asyncio.get_running_loop().create_task(model_changed_health(name, serving))

    dataplane = DataPlane(settings, metrics, on_model_change=model_changed)
    freeze_baseline()
    await dataplane.poll()  # first load, before the port opens

    interceptors = [TokenAuthInterceptor(settings.auth_token)] if settings.auth_token else []
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", int(worker)),
            ("grpc.server.max_pending_requests", PENDING_CALLS),
            ("grpc.server.max_pending_requests_hard_limit", PENDING_CALLS),
            *connection_options(settings),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(dataplane, metrics), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelServicer(dataplane, metrics), server
    )
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceServicer(dataplane, metrics), server
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [
            "tensorflow.serving.PredictionService",
            "tensorflow.serving.ModelService",
            "inference.GRPCInferenceService",
            health.SERVICE_NAME,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    address = f"{settings.host}:{settings.port}"
    credentials = _credentials(settings)
    try:
        port = (
            server.add_secure_port(address, credentials)
            if credentials
            else server.add_insecure_port(address)
        )
    except RuntimeError:
        await dataplane.close()
        raise ConfigError(
            f"Cannot listen on {address}: the port is in use or the address is not on this machine."
        ) from None
    metrics_server, metrics_port = (None, -1)
    if settings.metrics_port >= 0 and not worker:
        try:
            metrics_server, metrics_port = metrics.serve_http(
                settings.metrics_host, settings.metrics_port, settings.idle_timeout_seconds
            )
        except OSError as error:
            await dataplane.close()
            raise ConfigError(
                f"Cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: "
                f"{error.strerror}."
            ) from None

    await server.start()
    rest_runner, rest_port = await _start_rest(settings, dataplane, metrics, reuse_port=worker)
    await set_health("", dataplane.ready())
    poller = asyncio.get_running_loop().create_task(_poll_forever(dataplane, settings.poll_seconds))
    if settings.metrics_port < 0:
        metrics_said = "no metrics port"
    elif worker:  # the supervisor serves every worker's metrics on the port
        metrics_said = f"metrics on port {settings.metrics_port} (the supervisor's)"
    else:
        metrics_said = f"metrics on port {metrics_port}"
    log.info(
        "Serving %s on %s (%s), REST on port %s, %s, %s event loop",
        dataplane.model_names(),
        address.replace(str(settings.port), str(port)),
        "TLS" if credentials else "plaintext",
        rest_port if rest_port >= 0 else "off",
        metrics_said,
        type(asyncio.get_running_loop()).__module__.split(".")[0],
    )
    if on_started:
        on_started(Running(port, metrics_port, stop, dataplane, rest_port))
    await stop.wait()

    log.info("Shutting down: finishing in-flight requests (up to %.0f s)", settings.grace_seconds)
    await health_servicer.enter_graceful_shutdown()
    poller.cancel()
    stopping = [server.stop(settings.grace_seconds)]
    if rest_runner:
        stopping.append(rest_runner.cleanup())
    await asyncio.gather(*stopping)
    await dataplane.close()
    if metrics_server:
        metrics_server.shutdown()
    if settings.tracing:
        tracing.stop()
    log.info("Server stopped")


class ServerThread:
    """``serve`` on a background thread with its own event loop (tests, benchmarks).

    Example:
        >>> with ServerThread(ServerSettings(model_repo="model_repo", port=0)) as server:
        ...     channel = grpc.insecure_channel(f"localhost:{server.port}")
    """

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self.started = threading.Event()
        self.running: Running | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="zoo-server", daemon=True)

    def _run(self):
        def on_started(running):
            self.running = running
            self.loop = asyncio.get_running_loop()
            self.started.set()

        try:
            event_loop.run(serve(self.settings, on_started), self.settings.loop)
        except BaseException as error:
            self.error = error
            self.started.set()

    def start(self, timeout: float = 120) -> "ServerThread":
        self.thread.start()
        if not self.started.wait(timeout) or self.error:
            raise RuntimeError(f"server did not start: {self.error!r}")
        return self

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def rest_port(self) -> int:
        return self.running.rest_port

    @property
    def metrics_port(self) -> int:
        return self.running.metrics_port

    @property
    def dataplane(self) -> DataPlane:
        return self.running.dataplane

    def stop(self) -> None:
        if self.running:
            self.loop.call_soon_threadsafe(self.running.stop.set)
        self.thread.join(timeout=60)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
