"""The event loop a server process runs on: uvloop where it is installed, asyncio's own otherwise.

Every request costs the event loop some Python work (gRPC's asyncio layer, aiohttp, the batcher),
and on a busy server that work, not the model, is what saturates a core. uvloop (libuv under the
asyncio API, as uvicorn uses by default) does the loop's share of it in C, for less CPU per request
than asyncio's own loop.
"""

import asyncio
import signal
from collections.abc import Coroutine

from core.errors import ConfigError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # each drains, then stops


def _uvloop():
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


def resolve(kind: str) -> str:
    """``kind`` (``auto``, ``uvloop`` or ``asyncio``) with ``auto`` resolved: ``uvloop`` when it
    is installed, else ``asyncio``; ConfigError when ``uvloop`` is asked for but missing."""
    if kind == "auto":
        return "uvloop" if _uvloop() else "asyncio"
    if kind == "uvloop" and _uvloop() is None:
        raise ConfigError("--loop uvloop needs the uvloop package (pip install uvloop).")
    return kind


def run(main: Coroutine, kind: str = "auto"):
    """Runs ``main`` to completion on a new event loop of ``kind``; returns its result."""
    if resolve(kind) == "uvloop":
        return _uvloop().run(main)
    return asyncio.run(main)
