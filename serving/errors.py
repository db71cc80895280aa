"""Domain errors that carry their gRPC status and HTTP status, and the decorator that maps them.

Servicers raise these and ``@grpc_errors`` aborts the call with the error's status and message
(the REST front end answers the HTTP status with the same message); they catch only what they
turn into one of these (an image that does not decode becomes InvalidArgument). Anything else
becomes INTERNAL, logged with its traceback.
"""

import functools
import time

import grpc

from serving.telemetry import tracing
from serving.telemetry.request_log import log

# The statuses that are the server's fault, not the client's (OpenTelemetry's gRPC conventions).
SERVER_FAULTS = {
    grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS,
}  # fmt: skip


class ServingError(Exception):
    """A request the server refuses; ``code`` is the gRPC status the client receives, ``http``
    the HTTP status of the REST front end."""

    code = grpc.StatusCode.INTERNAL
    http = 500


class NotFound(ServingError):
    code = grpc.StatusCode.NOT_FOUND
    http = 404


class InvalidArgument(ServingError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    http = 400


class ResourceExhausted(ServingError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http = 413


class DeadlineExceeded(ServingError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    http = 504


class RequestTimeout(ServingError):
    """A REST request whose body did not arrive in time (the gRPC transport bounds its own)."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    http = 408


class ClientClosed(ServingError):
    """A REST client that went away before its request's body had arrived (HTTP 499, as nginx
    logs it: no one receives the answer)."""

    code = grpc.StatusCode.CANCELLED
    http = 499


class Unavailable(ServingError):
    code = grpc.StatusCode.UNAVAILABLE
    http = 503


class Unimplemented(ServingError):
    code = grpc.StatusCode.UNIMPLEMENTED
    http = 501


def deadline_of(context) -> float | None:
    """The client's deadline as a ``time.perf_counter()`` value, or None without one."""
    remaining = context.time_remaining()
    return None if remaining is None else time.perf_counter() + remaining


def model_name_of(request) -> str:
    """The model a request names, whichever protocol it speaks ("" when it names none)."""
    for path in (("model_spec", "name"), ("model_name",), ("name",)):
        value = request
        for attribute in path:
            value = getattr(value, attribute, None)
        if isinstance(value, str):
            return value
    return ""


def grpc_errors(method):
    """Wraps an async servicer method: ServingError -> its status; other exceptions -> INTERNAL.

    Every call's outcome and latency go to the servicer's ``metrics.record_request``, labelled with
    the model's name only when the repository knows it; every failed call is logged in one line,
    within ``serving.telemetry.request_log``'s bound. With tracing on, the call is a span named
    ``SERVICE/Method`` (the servicer's ``SERVICE``).
    """

    async def handle(self, request, context, model: str, trace):
        start = time.perf_counter()
        code, message = grpc.StatusCode.OK, ""
        try:
            return await method(self, request, context)
        except ServingError as error:
            code, message = error.code, str(error)
        except Exception as error:
            log.exception("%s raised an internal error", method.__name__)
            code, message = grpc.StatusCode.INTERNAL, f"internal error: {error}"
        finally:
            self.metrics.record_request(
                model, method.__name__, code.name, time.perf_counter() - start
            )
            if trace is not None:
                failed = code in SERVER_FAULTS
                trace.outcome("rpc.grpc.status_code", code.value[0], message if failed else None)
        log.warning("%s model=%r failed: %s: %s", method.__name__, model, code.name, message)
        await context.abort(code, message)

    @functools.wraps(method)
    async def wrapper(self, request, context):
        model = self.dataplane.metric_label(model_name_of(request))
        if not tracing.enabled():
            return await handle(self, request, context, model, None)
        name = f"{self.SERVICE}/{method.__name__}"
        attributes = {"rpc.system": "grpc", "rpc.method": name, "zoo.model": model}
        with tracing.request(name, context.invocation_metadata() or (), attributes) as trace:
            return await handle(self, request, context, model, trace)

    return wrapper
