"""One memory budget for the REST request bodies the server holds, across all connections.

aiohttp stops reading a connection whose body nobody reads, but a body that is read stays in
memory until its request is answered: without a bound, many clients each sending a body near
``max_message_bytes`` at once add up to gigabytes. A request reserves its body's size
(``Content-Length``; ``max_message_bytes`` when it gives none) before a byte is read, and gives
it back when it is answered; a request that does not fit is answered 503 at once, unread.
"""

from serving.errors import Unavailable

RESERVED = "zoo_body_bytes"  # where a request keeps what it reserved


class BodyBudget:
    """At most ``limit`` bytes of request bodies held at once; ``largest``: what a body without
    a ``Content-Length`` counts as."""

    def __init__(self, limit: int, largest: int):
        self.limit, self.largest, self.held = limit, largest, 0

    def reserve(self, request) -> None:
        """Counts the request's body against the budget; Unavailable when it does not fit."""
        size = request.content_length
        size = self.largest if size is None else min(size, self.largest)
        if self.held + size > self.limit:
            raise Unavailable(
                f"The server already holds {self.held:,} bytes of request bodies; this one "
                f"({size:,} bytes) would pass its budget of {self.limit:,} "
                "(--body-budget-bytes). Retry shortly."
            )
        self.held += size
        request[RESERVED] = size

    def release(self, request) -> None:
        """Gives back what the request reserved (once it is answered)."""
        self.held -= request.get(RESERVED, 0)
        request[RESERVED] = 0
