"""The server's event loop: uvloop when installed (the default), asyncio's own on request."""

import asyncio
import json
import threading
import time
import urllib.request

import numpy as np
import pytest

from core.errors import ConfigError
from serving.client import PredictionClient
from serving.process import event_loop
from serving.process.server import ServerThread
from serving.settings import build_settings
from tests.helpers import loopback_settings


def answers(server: ServerThread, images: np.ndarray) -> np.ndarray:
    client = PredictionClient(f"127.0.0.1:{server.port}")
    try:
        return client.predict("mnist", images)["probabilities"]
    finally:
        client.close()


def test_the_default_server_runs_on_uvloop(server, test_images):
    assert type(server.loop).__module__.startswith("uvloop")
    assert answers(server, test_images[0][:4]).shape == (4, 10)


def test_asyncio_loop_on_request_serves_the_same_answers(server, make_repo, test_images):
    images = test_images[0][:4]
    with ServerThread(loopback_settings(make_repo(), loop="asyncio")) as plain:
        assert type(plain.loop) is asyncio.new_event_loop().__class__
        np.testing.assert_allclose(answers(plain, images), answers(server, images), rtol=1e-6)


def test_auto_falls_back_to_asyncio_without_uvloop(monkeypatch):
    monkeypatch.setattr(event_loop, "_uvloop", lambda: None)
    assert event_loop.resolve("auto") == "asyncio"
    with pytest.raises(ConfigError, match=r"--loop uvloop needs the uvloop package"):
        event_loop.resolve("uvloop")


def test_an_unknown_loop_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match=r"loop.*'trio'.*'auto', 'uvloop' or 'asyncio'"):
        build_settings(model_repo=str(tmp_path), loop="trio")


def test_a_large_json_request_does_not_stall_other_connections(make_repo):
    """Parsing and converting a 12 MB JSON body (3,000 images as nested lists) runs off the event
    loop: health checks keep answering while it converts (on the loop they waited for the whole
    conversion; what is left is json.loads holding the interpreter, a fraction of it)."""
    with ServerThread(
        loopback_settings(make_repo(), rest_port=0, max_request_batch=4096)
    ) as server:
        url = f"http://127.0.0.1:{server.rest_port}"
        body = json.dumps({"instances": np.zeros((3000, 28, 28, 1), np.uint8).tolist()}).encode()
        took = {}

        def large_request():
            start = time.perf_counter()
            request = urllib.request.Request(f"{url}/v1/models/mnist:predict", data=body)
            urllib.request.urlopen(request, timeout=120).read()
            took["seconds"] = time.perf_counter() - start

        thread = threading.Thread(target=large_request)
        thread.start()
        waits = []
        while thread.is_alive():
            start = time.perf_counter()
            urllib.request.urlopen(f"{url}/v2/health/live", timeout=30).read()
            waits.append(time.perf_counter() - start)
            time.sleep(0.005)
        thread.join()
    assert "seconds" in took and len(waits) > 10
    assert max(waits) < 0.4 * took["seconds"], (max(waits), took)
