"""The log of failed requests, bounded so that a client that sends bad requests in a loop cannot
flood it.

Each failed request logs one line, up to ``BURST`` lines in any window of ``WINDOW_SECONDS``;
beyond that its lines are dropped and counted, and the first line of a later window says how many
were dropped. The request metrics (``zoo_requests_total`` by code) still count every failure, so
nothing is lost but the repetition: a server under a stream of malformed requests writes at most
``BURST`` lines per window instead of one per request.
"""

import logging
import threading
import time

BURST = 20
WINDOW_SECONDS = 10.0


class RateLimit(logging.Filter):
    """Passes at most ``burst`` records per ``window`` seconds; the first record passed after a
    window that dropped some says how many."""

    def __init__(self, burst: int = BURST, window: float = WINDOW_SECONDS, clock=time.monotonic):
        super().__init__()
        self.burst, self.window, self.clock = burst, window, clock
        self.window_start = float("-inf")
        self.passed = self.dropped = 0
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        with self.lock:
            now = self.clock()
            if now - self.window_start >= self.window:
                self.window_start, self.passed = now, 0
            if self.passed >= self.burst:
                self.dropped += 1
                return False
            self.passed += 1
            dropped, self.dropped = self.dropped, 0
        if dropped:
            record.msg = (
                f"{record.getMessage()} ({dropped} failed requests before it not logged: more "
                f"than {self.burst} in {self.window:g} s)"
            )
            record.args = ()
        return True


class MalformedHttp(logging.Filter):
    """aiohttp's own lines about requests it could not parse ("Error handling request from ..."
    with a traceback of its parser): one line naming the error, within the same bound."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True  # anything else is the server's fault: logged whole
        reason = " ".join(str(error).split())
        reason = reason if len(reason) <= 200 else reason[:200] + "..."
        record.msg = f"{record.getMessage()}: {type(error).__name__}: {reason}"
        record.args, record.exc_info, record.exc_text = (), None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"  # the client's fault
        return limit.filter(record)


log = logging.getLogger("zoo.serving.requests")
limit = RateLimit()
log.addFilter(limit)
logging.getLogger("aiohttp.server").addFilter(MalformedHttp())
