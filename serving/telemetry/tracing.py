"""OpenTelemetry tracing: one span per request, with children for its stages.

A traced request is a SERVER span (``inference.GRPCInferenceService/ModelInfer``, ``POST
/v2/models/{name}/infer``...) whose parent is the client's W3C ``traceparent`` (gRPC metadata or
HTTP header) when it sends one. Its children, from the times the data plane and the batcher
already take:

1. ``decode``: from the request's start to the data plane (reading and converting the inputs);
2. ``queue``: waiting for the model, in the batcher's queue or for a model thread;
3. ``batch``: the merged call this request was part of (``zoo.batch.size`` examples from
   ``zoo.batch.requests`` requests), with ``model``, the model call itself, as its child;
4. ``encode``: from the data plane's answer to the request's end (the response message).

Off unless ``zoo serve --tracing``; while off, the front ends skip it (``enabled()``).
The exporter is configured the standard way, by the ``OTEL_*`` environment variables the SDK reads
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_PROTOCOL``, ``OTEL_TRACES_SAMPLER``,
``OTEL_SERVICE_NAME``, ``OTEL_BSP_*``...); ``OTEL_TRACES_EXPORTER=console`` prints the spans.
"""

import contextlib
import contextvars
import logging
import os
import time
from collections.abc import Iterable

from core.errors import ConfigError

PROTOCOLS = ("http/protobuf", "grpc")  # the specification's default first
EXPORTERS = ("otlp", "console")
DEFAULT_SERVICE_NAME = "zoo-serve"
log = logging.getLogger("zoo.serving")

_provider = None  # the SDK's TracerProvider while tracing is on
_tracer = None
_active: contextvars.ContextVar["RequestTrace | None"] = contextvars.ContextVar(
    "zoo_request_trace", default=None
)


def _setting(*names: str, default: str = "") -> str:
    """The first of the environment variables ``names`` that is set, lower-cased."""
    for name in names:
        if os.environ.get(name, "").strip():
            return os.environ[name].strip().lower()
    return default


def configured_exporter() -> tuple[str, str]:
    """``(exporter, protocol)`` as the ``OTEL_*`` environment variables ask; ConfigError naming
    the variable, its value and the choices when it is one we do not ship."""
    kind = _setting("OTEL_TRACES_EXPORTER", default="otlp")
    if kind not in EXPORTERS:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={kind!r} is not served with --tracing; use one of "
            f"{', '.join(EXPORTERS)}."
        )
    protocol = _setting(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL", default=PROTOCOLS[0]
    )
    if kind == "otlp" and protocol not in PROTOCOLS:
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; use one of "
            f"{', '.join(PROTOCOLS)}."
        )
    return kind, protocol


def _exporter():
    """The span exporter the environment configures, and where it sends, in words."""
    kind, protocol = configured_exporter()
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(), "the console"
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    endpoint = _setting("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    return OTLPSpanExporter(), f"OTLP ({protocol}) at {endpoint or 'the default endpoint'}"


def start(exporter=None) -> None:
    """Turns tracing on for this process: spans go to ``exporter`` one by one (tests), else in
    batches to the exporter the environment configures."""
    global _provider, _tracer
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if _setting("OTEL_SDK_DISABLED") == "true":
        log.warning("--tracing does nothing while OTEL_SDK_DISABLED=true; no spans are recorded")
        return
    if exporter is None:
        exporter, where = _exporter()
        processor = BatchSpanProcessor(exporter)
        sampler = _setting("OTEL_TRACES_SAMPLER", default="parentbased_always_on")
        log.info("Tracing requests to %s, sampler %s", where, sampler)
    else:
        processor = SimpleSpanProcessor(exporter)
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: DEFAULT_SERVICE_NAME}
    _provider = TracerProvider(resource=Resource.create(attributes))
    _provider.add_span_processor(processor)
    _tracer = _provider.get_tracer("zoo.serving")


def stop() -> None:
    """Sends the spans still buffered and turns tracing off."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider = _tracer = None


def enabled() -> bool:
    """Whether this process records spans (``start`` was called, ``stop`` not yet)."""
    return _tracer is not None


def active() -> "RequestTrace | None":
    """The trace of the request this task is serving; None when tracing is off."""
    return _active.get()


class RequestTrace:
    """One request's span, and the stage spans hung under it from ``time.perf_counter()``
    readings."""

    def __init__(self, span):
        self.span = span
        self.origin_ns, self.origin = time.time_ns(), time.perf_counter()
        self.decoded = False
        self.answered_at: float | None = None

    def _ns(self, perf: float) -> int:
        return self.origin_ns + int((perf - self.origin) * 1e9)

    def stage(self, name: str, start: float, end: float, parent=None, attributes=None):
        """A finished child span from ``start`` to ``end`` (perf_counter seconds)."""
        from opentelemetry import trace

        context = trace.set_span_in_context(parent or self.span)
        span = _tracer.start_span(
            name, context=context, start_time=self._ns(start), attributes=attributes
        )
        span.end(end_time=self._ns(max(end, start)))
        return span

    def reached_data_plane(self) -> None:
        """The inputs are decoded: the ``decode`` span ends here (at the first call only)."""
        if not self.decoded:
            self.decoded = True
            self.stage("decode", self.origin, time.perf_counter())

    def answered(self) -> None:
        """The data plane answered: ``encode`` starts here (at the last call)."""
        self.answered_at = time.perf_counter()

    def batched(
        self, enqueued: float, started: float, call: tuple[float, float], ended: float,
        examples: int, requests: int,
    ) -> None:  # fmt: skip
        """``queue`` from ``enqueued`` to ``started``, then ``batch`` to ``ended`` with the
        model ``call`` (start, end) inside it."""
        self.stage("queue", enqueued, started)
        batch = self.stage(
            "batch", started, ended,
            attributes={"zoo.batch.size": examples, "zoo.batch.requests": requests},
        )  # fmt: skip
        self.stage("model", *call, parent=batch)

    def outcome(self, attribute: str, value: int, error: str | None) -> None:
        """The status the client receives (``attribute``: the protocol's status attribute);
        ``error``: the message, when the server failed the request."""
        self.span.set_attribute(attribute, value)
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            self.span.set_status(Status(StatusCode.ERROR, error[:200]))


@contextlib.contextmanager
def request(name: str, headers: Iterable[tuple[str, str]] | dict, attributes: dict):
    """The span of one request while its handler runs (nothing when tracing is off); yields the
    :class:`RequestTrace` or None. ``headers``: the gRPC metadata or HTTP headers, for the
    client's ``traceparent``."""
    if _tracer is None:
        yield None
        return
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    carrier = dict(headers) if not hasattr(headers, "get") else headers
    span = _tracer.start_span(
        name, context=propagate.extract(carrier), kind=SpanKind.SERVER, attributes=attributes
    )
    if not span.is_recording():  # not sampled: no stage spans either
        span.end()
        yield None
        return
    trace = RequestTrace(span)
    token = _active.set(trace)
    try:
        yield trace
    finally:
        _active.reset(token)
        if trace.answered_at is not None:
            trace.stage("encode", trace.answered_at, time.perf_counter())
        span.end()
