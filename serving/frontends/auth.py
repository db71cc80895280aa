"""Bearer-token authentication of the gRPC API (the REST front end checks the same header).

With a token set, every RPC needs ``authorization: Bearer TOKEN`` (the scheme in any case, the
token compared in constant time), except reflection and the server's overall health, which load
balancers, Kubernetes probes and the Docker HEALTHCHECK ask. A model's health needs the token too,
so model names cannot be probed without it.
"""

import hmac

import grpc

HEALTH_METHODS = "/grpc.health.v1.Health/"
REFLECTION_METHODS = "/grpc.reflection."


def bearer_token(metadata) -> str | None:
    """The token of an ``authorization: Bearer TOKEN`` header (the scheme in any case), or None."""
    value = dict(metadata or ()).get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Requires ``authorization: Bearer TOKEN`` on every RPC except reflection and the server's
    overall health (what load balancers, Kubernetes probes and the Docker HEALTHCHECK ask). A
    model's health needs the token too, so model names cannot be probed without it."""

    def __init__(self, token: str):
        self.expected = token.encode()

    def allows(self, metadata) -> bool:
        token = bearer_token(metadata)
        return token is not None and hmac.compare_digest(token.encode(), self.expected)

    async def intercept_service(self, continuation, handler_call_details):
        method, metadata = handler_call_details.method, handler_call_details.invocation_metadata
        if method.startswith(REFLECTION_METHODS) or self.allows(metadata):
            return await continuation(handler_call_details)
        reason = "missing" if bearer_token(metadata) is None else "invalid"
        message = f"{reason} bearer token: send metadata 'authorization: Bearer <token>'"
        if method.startswith(HEALTH_METHODS):
            return self._overall_health_only(await continuation(handler_call_details), message)

        async def deny(request, context):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        return grpc.unary_unary_rpc_method_handler(deny)

    @staticmethod
    def _overall_health_only(handler, message: str):
        """The health handler (Check or Watch), refusing requests that name a service (a model).
        Both are coroutines in grpc.aio: Watch streams with ``context.write``."""
        kind, make = (
            (handler.unary_unary, grpc.unary_unary_rpc_method_handler)
            if handler.unary_unary is not None
            else (handler.unary_stream, grpc.unary_stream_rpc_method_handler)
        )

        async def overall_only(request, context):
            if request.service:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
            return await kind(request, context)

        return make(
            overall_only,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
