"""Time limits on REST connections that carry no request, so that idle clients cannot hold the
server's file descriptors and memory for as long as they like.

aiohttp closes a connection that stays idle *between* requests after its keep-alive timeout, but
waits for a connection's first request forever: a client that opens connections and sends
nothing, or a request's headers a byte at a time (slowloris), would keep each one open. Here a
connection that has not sent a whole request's headers within the idle timeout of connecting is
closed, and a request's body must arrive within it as well (408). gRPC gets the same bounds from
its own handshake and idle timeouts (``serving.process.server.connection_options``).
"""

import asyncio
import time

from aiohttp import web

from serving.errors import ClientClosed, RequestTimeout


class IdleConnections:
    """Closes REST connections whose first request's headers have not arrived within ``timeout``
    seconds of connecting (checked every ``min(1, timeout / 4)`` seconds); bounds the wait for a
    request's body by ``timeout`` too. A ``timeout`` of 0 bounds nothing.

    Add ``middleware`` to the application first and ``stop`` to its ``on_cleanup``; ``start``
    once its runner is set up.
    """

    def __init__(self, timeout: float):
        self.timeout = timeout
        # aiohttp's connection handlers take no weak references: both are pruned to the
        # server's open connections at every check instead.
        self.connected: dict[web.RequestHandler, float] = {}
        self.requested: set[web.RequestHandler] = set()
        self.watcher: asyncio.Task | None = None

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        self.requested.add(request.protocol)
        return await handler(request)

    async def read_body(self, request: web.Request) -> bytes:
        """The request's body; RequestTimeout when it has not all arrived within the timeout,
        ClientClosed when the client went away before it had."""
        try:
            if not self.timeout:
                return await request.read()
            return await asyncio.wait_for(request.read(), self.timeout)
        except TimeoutError:
            raise RequestTimeout(
                f"The request's body did not arrive within {self.timeout:g} s "
                "(--idle-timeout-seconds)."
            ) from None
        except ConnectionResetError:
            raise ClientClosed(
                "The client closed the connection before its request's body arrived."
            ) from None

    def close_silent(self, server: web.Server, now: float) -> None:
        """Closes the connections of ``server`` that have sent no request since ``timeout`` ago."""
        connections = server.connections
        self.requested.intersection_update(connections)
        self.connected = {c: self.connected.get(c, now) for c in connections}
        for connection, connected in self.connected.items():
            if connection not in self.requested and now - connected >= self.timeout:
                connection.force_close()

    def start(self, server: web.Server) -> None:
        """Watches ``server``'s connections until ``stop`` (nothing to watch without a timeout)."""
        if self.timeout:
            self.watcher = asyncio.get_running_loop().create_task(self._watch(server))

    async def stop(self, app: web.Application | None = None) -> None:
        if self.watcher:
            self.watcher.cancel()

    async def _watch(self, server: web.Server) -> None:
        while True:
            self.close_silent(server, time.monotonic())
            await asyncio.sleep(min(1.0, self.timeout / 4))
