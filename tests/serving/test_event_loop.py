"""The server's event loop: uvloop when installed (the default), asyncio's own on request."""

import asyncio

import numpy as np
import pytest

from core.errors import ConfigError
from serving import event_loop
from serving.client import PredictionClient
from serving.server import ServerThread
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
