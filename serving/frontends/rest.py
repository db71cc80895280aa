"""The REST front end (port 8501, as TensorFlow Serving): TensorFlow Serving's REST API and the
Open Inference Protocol's REST binding, on aiohttp in the server's own event loop.

Routes call the same data plane as the gRPC servicers, so lookup, validation, batching and metrics
are shared, and errors carry the same messages with their HTTP status (``{"error": message}``).

TensorFlow Serving:
  GET  /v1/models/NAME[/versions/N | /labels/L]              version status
  GET  /v1/models/NAME[/versions/N | /labels/L]/metadata     signature_def
  POST /v1/models/NAME[/versions/N | /labels/L]:predict      {"instances": [...]} or {"inputs": ...}
  POST /v1/models/NAME[/versions/N | /labels/L]:classify     {"examples": [{"images": ...}],
                                                               "context": {...} (optional)}
  POST /v1/models/NAME[/versions/N | /labels/L]:regress      {"examples": [...]}: regression
                                                             signatures only (501 otherwise)
Open Inference Protocol (KServe v2):
  GET  /v2/health/live, /v2/health/ready, /v2
  GET  /v2/models/NAME[/versions/N], .../ready
  POST /v2/models/NAME[/versions/N]/infer
"""

import hmac
import json
import time

import numpy as np
from aiohttp import web
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from core import __version__
from core.artifact import parse_version
from core.errors import shown
from core.images import ImageError, image_from_bytes
from core.outputs import ranked
from serving.errors import InvalidArgument, NotFound, ServingError, Unimplemented
from serving.frontends import rest_codec
from serving.frontends.auth import bearer_token
from serving.frontends.body_budget import BodyBudget
from serving.frontends.idle_connections import IdleConnections
from serving.plane import example_signatures as tf_signatures
from serving.plane.dataplane import DEFAULT_SIGNATURE, DataPlane
from serving.plane.extensions import EXTENSIONS, PLATFORM, check_model_control_parameters
from serving.telemetry import tracing
from serving.telemetry.metrics import ServerMetrics
from serving.telemetry.request_log import log

BINARY_HEADER = "Inference-Header-Content-Length"  # the binary tensor data extension
OPEN_PATHS = ("/v2/health/live", "/v2/health/ready")
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}  # others: _OTHER


def _json_examples(body: dict) -> list:
    """``examples`` of a :classify or :regress body, each with ``context``'s features merged in
    (an example's own win)."""
    examples, context = body.get("examples"), body.get("context", {})
    if not isinstance(examples, list) or not examples:
        raise InvalidArgument("'examples' must be a non-empty list of objects.")
    if not isinstance(context, dict):
        raise InvalidArgument(
            f"'context' must be an object of features. Received: {type(context).__name__}."
        )
    if context:
        examples = [{**context, **e} if isinstance(e, dict) else e for e in examples]
    return examples


def _version(text: str | None) -> int | None:
    if text is None:
        return None
    version = parse_version(text)
    if version is None:
        raise InvalidArgument(f"The version must be a non-negative integer. Received: {text!r}")
    return version


def _route_name(request: web.Request) -> str:
    """``REST:tf_predict``, ``REST:v2_infer``...: the route, never a client-chosen path (which
    would let clients grow the metrics' labels)."""
    handler = getattr(request.match_info.route, "handler", None)
    name = getattr(handler, "__name__", "")
    return "REST:" + (name if name.startswith(("tf_", "v2_")) else "unrouted")


def _json_body(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidArgument(f"The body is not valid JSON: {error}.") from None
    except RecursionError:
        raise InvalidArgument(
            "The body nests its JSON deeper than the decoder allows; tensors need a level per "
            "dimension only."
        ) from None
    if not isinstance(body, dict):
        raise InvalidArgument("The body must be a JSON object.")
    return body


class RestApi:
    """The routes; ``app`` is the aiohttp application to run.

    Args:
        dataplane: the data plane the gRPC servicers use too.
        metrics: request metrics (method names start with ``REST:``).
        token: when set, every route but the v2 health checks needs ``Authorization: Bearer``.
        max_body_bytes: largest request body (413 beyond it).
        idle_timeout: how long a connection may go without sending a request's headers, and a
            request's body may take to arrive (``serving.frontends.idle_connections``); 0: no limit.
    """

    def __init__(
        self, dataplane: DataPlane, metrics: ServerMetrics, token: str, max_body_bytes: int,
        idle_timeout: float = 0,
    ):  # fmt: skip
        self.dataplane, self.metrics, self.token = dataplane, metrics, token.encode()
        self.idle = IdleConnections(idle_timeout)
        self.bodies = BodyBudget(dataplane.settings.body_budget_bytes, max_body_bytes)
        middlewares = [self.idle.middleware, self._errors] if idle_timeout else [self._errors]
        self.app = web.Application(client_max_size=max_body_bytes, middlewares=middlewares)
        self.app.on_cleanup.append(self.idle.stop)
        routes = [
            web.get("/v2", self.v2_server_metadata),
            web.get("/v2/health/live", self.v2_live),
            web.get("/v2/health/ready", self.v2_ready),
        ]
        model = "/v1/models/{name:[^/:]+}"
        for pinned in ("", "/versions/{version:[^/:]+}", "/labels/{label:[^/:]+}"):
            routes += [
                web.get(model + pinned, self.tf_status),
                web.get(model + pinned + "/metadata", self.tf_metadata),
                web.post(model + pinned + ":predict", self.tf_predict),
                web.post(model + pinned + ":classify", self.tf_classify),
                web.post(model + pinned + ":regress", self.tf_regress),
            ]
        routes += [
            web.get("/v2/models/stats", self.v2_statistics),  # before /v2/models/{name}
            web.post("/v2/repository/index", self.v2_repository_index),
            web.post("/v2/repository/models/{name}/load", self.v2_load),
            web.post("/v2/repository/models/{name}/unload", self.v2_unload),
        ]
        for pinned in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
            routes += [
                web.get(pinned, self.v2_metadata),
                web.get(pinned + "/config", self.v2_config),
                web.get(pinned + "/stats", self.v2_statistics),
                web.get(pinned + "/ready", self.v2_ready_model),
                web.post(pinned + "/infer", self.v2_infer),
            ]
        self.app.add_routes(routes)

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        """Token check, then the handler; ServingError -> its HTTP status and message, anything
        else -> 500 (logged). Every request is counted in the metrics (and traced when on)."""
        name = request.match_info.get("name", "")
        label = self.dataplane.metric_label(name) if name else ""
        if not tracing.enabled():
            return await self._answer(request, handler, label, None)
        resource = getattr(request.match_info.route.resource, "canonical", "unrouted")
        method = request.method if request.method in HTTP_METHODS else "_OTHER"
        attributes = {"http.request.method": method, "http.route": resource, "zoo.model": label}
        with tracing.request(f"{method} {resource}", request.headers, attributes) as trace:
            return await self._answer(request, handler, label, trace)

    async def _answer(self, request: web.Request, handler, label: str, trace) -> web.Response:
        start, status, error_message = time.perf_counter(), 200, None
        try:
            if self.token and request.path not in OPEN_PATHS and not self._allowed(request):
                status = 401
                return web.json_response(
                    {"error": "missing or invalid bearer token: send 'Authorization: Bearer "
                     "<token>'"}, status=401)  # fmt: skip
            return await handler(request)
        except web.HTTPException as error:  # routing: 404 for unknown paths, 405, 413
            status = error.status
            return web.json_response({"error": error.reason}, status=error.status)
        except ServingError as error:
            status, error_message = error.http, str(error)
            log.warning("REST %s failed: %s", request.path, error)
            return web.json_response({"error": str(error)}, status=error.http)
        except Exception as error:
            status, error_message = 500, f"internal error: {error}"
            log.exception("REST %s raised an internal error", request.path)
            return web.json_response({"error": error_message}, status=500)
        finally:
            self.bodies.release(request)
            route = _route_name(request)
            self.metrics.record_request(label, route, str(status), time.perf_counter() - start)
            if trace is not None:
                failed = status >= 500 and error_message
                trace.outcome(
                    "http.response.status_code", status, error_message if failed else None
                )

    async def _read_body(self, request: web.Request) -> bytes:
        """The request's body, once the body budget has room for it (503 at once otherwise)."""
        self.bodies.reserve(request)
        return await self.idle.read_body(request)

    def _allowed(self, request: web.Request) -> bool:
        token = bearer_token([("authorization", request.headers.get("Authorization", ""))])
        return bool(token) and hmac.compare_digest(token.encode(), self.token)

    @staticmethod
    def _model_spec(request: web.Request) -> tuple[str, int | None, str | None]:
        """``(name, version, label)`` from the path."""
        info = request.match_info
        return info["name"], _version(info.get("version")), info.get("label")

    def _servable(self, request: web.Request):
        return self.dataplane.servable(*self._model_spec(request))

    # TensorFlow Serving's REST API --------------------------------------------------------

    async def tf_status(self, request: web.Request) -> web.Response:
        info = request.match_info
        version = _version(info.get("version"))
        if info.get("label"):
            version = self._servable(request).version
        statuses = self.dataplane.statuses(info["name"], version)
        return web.json_response(
            {
                "model_version_status": [
                    {
                        "version": str(number),
                        "state": status.state,
                        "status": {
                            "error_code": "INTERNAL" if status.error else "OK",
                            "error_message": status.error,
                        },
                    }
                    for number, status in sorted(statuses.items())
                ]
            }
        )

    async def tf_metadata(self, request: web.Request) -> web.Response:
        servable = self._servable(request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in servable.signature_defs.items():
            signatures.signature_def[name].CopyFrom(signature_def)
        return web.json_response(
            {
                "model_spec": {
                    "name": servable.name,
                    "signature_name": "",
                    "version": str(servable.version),
                },
                "metadata": {"signature_def": json_format.MessageToDict(signatures)},
            }
        )

    async def tf_predict(self, request: web.Request) -> web.Response:
        body = await self.dataplane.off_loop(_json_body, await self._read_body(request))
        servable = self._servable(request)
        signature_name = body.get("signature_name") or DEFAULT_SIGNATURE
        signature = self.dataplane.signature(servable, signature_name)
        if ("instances" in body) == ("inputs" in body):
            raise InvalidArgument("Give either 'instances' (row format) or 'inputs' (columnar).")
        rows = "instances" in body
        decode = rest_codec.row_inputs if rows else rest_codec.columnar_inputs
        inputs = await self.dataplane.off_loop(
            decode, body["instances" if rows else "inputs"], signature.inputs
        )
        _, _, outputs = await self.dataplane.infer(
            servable.name, inputs, version=servable.version, signature_name=signature_name
        )
        if rows:
            answer = {"predictions": await self.dataplane.off_loop(rest_codec.row_outputs, outputs)}
        else:
            answer = {
                "outputs": await self.dataplane.off_loop(rest_codec.columnar_outputs, outputs)
            }
        return web.json_response(answer)

    async def _examples_request(self, request: web.Request, method: str):
        """A :classify or :regress body's version, signature name, examples (JSON objects, the
        context merged in) and its signature if that is a ``method`` SignatureDef (else None)."""
        body = await self.dataplane.off_loop(_json_body, await self._read_body(request))
        servable = self._servable(request)
        examples = _json_examples(body)
        name = body.get("signature_name") or DEFAULT_SIGNATURE
        signature = self.dataplane.examples_signature(servable, name, method)
        return servable, name, examples, signature

    async def tf_classify(self, request: web.Request) -> web.Response:
        servable, signature_name, examples, tf_classifier = await self._examples_request(
            request, tf_signatures.CLASSIFY_METHOD
        )
        if tf_classifier is not None:
            protos = [rest_codec.json_example(example) for example in examples]
            outputs = await self.dataplane.run_examples(servable, tf_classifier, protos, None)
            per_example = tf_signatures.classifications(outputs, len(protos))
            return web.json_response(
                {"results": [[list(p) for p in pairs] for pairs in per_example]}
            )
        signature = self.dataplane.classifier(servable, signature_name)
        ((input_name, spec),) = signature.inputs.items()
        shape = tuple(spec.shape[1:])
        images = await self.dataplane.off_loop(
            lambda: np.stack([self._example(e, input_name, spec, shape) for e in examples])
        )
        servable, names, probabilities = await self.dataplane.classify(
            servable.name,
            {input_name: images},
            version=servable.version,
            signature_name=signature.name,
        )
        results = [[[names[i], float(row[i])] for i in ranked(row)] for row in probabilities]
        return web.json_response({"results": results})

    async def tf_regress(self, request: web.Request) -> web.Response:
        servable, signature_name, examples, regressor = await self._examples_request(
            request, tf_signatures.REGRESS_METHOD
        )
        if regressor is None:
            raise Unimplemented(tf_signatures.not_a_regressor(servable, signature_name))
        protos = [rest_codec.json_example(example) for example in examples]
        outputs = await self.dataplane.run_examples(servable, regressor, protos, None)
        return web.json_response({"results": tf_signatures.regressions(outputs, len(protos))})

    @staticmethod
    def _example(example, input_name: str, spec, shape) -> np.ndarray:
        """One JSON example: pixel values, or ``{"b64": PNG/JPEG or raw pixel bytes}``."""
        if not isinstance(example, dict) or input_name not in example:
            raise InvalidArgument(f"Each example needs the feature {input_name!r}.")
        value = example[input_name]
        if isinstance(value, dict):
            data = rest_codec.decode_b64(value, input_name)
            try:
                return image_from_bytes(data, shape, f"Feature {input_name!r}")
            except ImageError as error:
                raise InvalidArgument(str(error)) from None
        return rest_codec.to_array([value], spec, input_name)[0]

    # Open Inference Protocol REST ---------------------------------------------------------

    async def v2_server_metadata(self, request: web.Request) -> web.Response:
        return web.json_response({"name": "zoo", "version": __version__, "extensions": EXTENSIONS})

    async def v2_live(self, request: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def v2_ready(self, request: web.Request) -> web.Response:
        ready = self.dataplane.ready()
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    def _v2_servable(self, request: web.Request):
        version = _version(request.match_info.get("version"))
        return self.dataplane.servable(request.match_info["name"], version)

    async def v2_metadata(self, request: web.Request) -> web.Response:
        servable = self._v2_servable(request)
        signature = self.dataplane.signature(servable, DEFAULT_SIGNATURE)

        def tensors(specs):
            return [
                {
                    "name": s.name,
                    "datatype": rest_codec.NUMPY_TO_V2[s.dtype],
                    "shape": list(s.shape),
                }
                for s in specs.values()
            ]

        return web.json_response(
            {
                "name": servable.name,
                "versions": [str(v) for v in self.dataplane.loaded_versions(servable.name)],
                "platform": PLATFORM,
                "inputs": tensors(signature.inputs),
                "outputs": tensors(signature.outputs),
            }
        )

    async def v2_config(self, request: web.Request) -> web.Response:
        version = _version(request.match_info.get("version"))
        return web.json_response(self.dataplane.model_config(request.match_info["name"], version))

    async def v2_statistics(self, request: web.Request) -> web.Response:
        version = _version(request.match_info.get("version"))
        stats = self.dataplane.model_statistics(request.match_info.get("name", ""), version)
        return web.json_response({"model_stats": stats})

    async def v2_repository_index(self, request: web.Request) -> web.Response:
        raw = await self._read_body(request)
        ready_only = bool(_json_body(raw).get("ready")) if raw.strip() else False
        index = self.dataplane.repository_index()
        return web.json_response([e for e in index if not ready_only or e["state"] == "READY"])

    async def _model_control_parameters(self, request: web.Request, operation: str) -> None:
        raw = await self._read_body(request)
        body = _json_body(raw) if raw.strip() else {}
        parameters = body.get("parameters", {})
        if not isinstance(parameters, dict):
            raise InvalidArgument(f"'parameters' must be an object. Received: {shown(parameters)}")
        check_model_control_parameters(parameters, operation)

    async def v2_load(self, request: web.Request) -> web.Response:
        await self._model_control_parameters(request, "load")
        await self.dataplane.load_model(request.match_info["name"])
        return web.json_response({})

    async def v2_unload(self, request: web.Request) -> web.Response:
        await self._model_control_parameters(request, "unload")
        await self.dataplane.unload_model(request.match_info["name"])
        return web.json_response({})

    async def v2_ready_model(self, request: web.Request) -> web.Response:
        try:
            servable = self._v2_servable(request)
        except NotFound:
            return web.json_response(
                {"name": request.match_info["name"], "ready": False}, status=404
            )
        return web.json_response({"name": servable.name, "ready": True})

    async def v2_infer(self, request: web.Request) -> web.Response:
        json_part, binary = rest_codec.split_binary_body(
            await self._read_body(request), request.headers.get(BINARY_HEADER)
        )
        body = await self.dataplane.off_loop(_json_body, json_part)
        servable = self._v2_servable(request)
        parameters = rest_codec.json_object(body.get("parameters"), "'parameters'")
        signature_name = parameters.get("signature_name", DEFAULT_SIGNATURE)
        wanted = rest_codec.requested_outputs(body)
        signature = self.dataplane.signature(servable, signature_name)
        inputs = await self.dataplane.off_loop(
            rest_codec.v2_inputs, body.get("inputs"), signature.inputs, binary,
            self.dataplane.settings.max_message_bytes,
        )  # fmt: skip
        _, _, outputs = await self.dataplane.infer(
            servable.name, inputs, version=servable.version, signature_name=signature_name
        )
        unknown = sorted(set(wanted) - set(outputs))
        if unknown:
            raise InvalidArgument(f"Unknown output(s) {unknown}; outputs: {sorted(outputs)}.")
        response = {"model_name": servable.name, "model_version": str(servable.version)}
        if "id" in body:
            response["id"] = body["id"]
        content, header_length = await self.dataplane.off_loop(
            rest_codec.v2_response, response, outputs, wanted or list(outputs), body
        )
        if header_length is None:
            return web.Response(body=content, content_type="application/json")
        return web.Response(
            body=content,
            content_type="application/octet-stream",
            headers={BINARY_HEADER: str(header_length)},
        )
