"""Memory over a long uptime (``pytest -m slow``): 30 hot-reload cycles of a 100 MB model through
one server, after the second of which resident memory may grow by less than 5 % of the model's size
per cycle; and a long stream of good and refused requests, gRPC and REST, that must leave it flat.
"""

import shutil
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from helpers import loopback_settings
from test_rest_api import call

from serving.client import PredictionClient
from serving.process.server import ServerThread

MODEL_MB = 100
CYCLES = 30


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def big_saved_model(path: Path) -> None:
    """A SavedModel with about 100 MB of weights and the zoo's serving signature."""

    class Big(tf.Module):
        def __init__(self):
            super().__init__()
            units = MODEL_MB * 1024 * 1024 // 4 // 784
            self.kernel = tf.Variable(tf.random.normal([784, units], stddev=0.01))
            self.head = tf.Variable(tf.random.normal([units, 10], stddev=0.01))

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.uint8, name="images")])
        def serve(self, images):
            x = tf.reshape(tf.cast(images, tf.float32) / 255.0, [-1, 784])
            logits = tf.matmul(tf.nn.relu(tf.matmul(x, self.kernel)), self.head)
            return {"probabilities": tf.nn.softmax(logits), "logits": logits}

    module = Big()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


def wait_for(condition, seconds=120.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_memory_stays_flat_across_reloads(tmp_path):
    pristine = tmp_path / "pristine"
    big_saved_model(pristine)
    repo = tmp_path / "repo" / "big"
    shutil.copytree(pristine, repo / "1")
    images = np.zeros((4, 28, 28, 1), np.uint8)
    samples = []
    with ServerThread(loopback_settings(tmp_path / "repo")) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        for version in range(2, CYCLES + 2):
            shutil.copytree(pristine, repo / str(version))
            wait_for(lambda v=version: running.dataplane.model_ready("big", v))
            shutil.rmtree(repo / str(version - 1))
            wait_for(lambda v=version: running.dataplane.loaded_versions("big") == [v])
            assert client.predict("big", images)["probabilities"].shape == (4, 10)
            samples.append(resident_mb())
    growth_per_cycle = (samples[-1] - samples[1]) / (len(samples) - 2)
    print(f"RSS after each cycle (MB): {[round(s) for s in samples]}")
    print(f"growth per cycle after the second: {growth_per_cycle:.1f} MB")
    assert growth_per_cycle < 0.05 * MODEL_MB


@pytest.mark.slow
def test_memory_stays_flat_under_a_stream_of_good_and_refused_requests(make_repo, test_images):
    images = test_images[0][:8]
    wrong_shape = np.zeros((2, 27, 28, 1), np.uint8)
    samples = []
    with ServerThread(loopback_settings(make_repo())) as running:
        client = PredictionClient(f"127.0.0.1:{running.port}")
        for _ in range(8):
            for request in range(500):
                assert client.predict("mnist", images)["probabilities"].shape == (8, 10)
                for model, bad in (("mnist", wrong_shape), ("nowhere", images)):
                    with pytest.raises(grpc.RpcError):
                        client.predict(model, bad)
                if request % 5 == 0:
                    body = {"instances": images[:2].tolist()}
                    assert call(running.rest_port, "/v1/models/mnist:predict", body)[0] == 200
                    assert call(running.rest_port, "/v1/models/mnist:predict", b"[")[0] == 400
            samples.append(resident_mb())
    print(f"RSS after each 1,700 requests (MB): {[round(s, 1) for s in samples]}")
    assert samples[-1] - samples[1] < 10
