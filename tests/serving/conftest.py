"""A tiny exported MNIST model and an in-process server on loopback, shared by the serving tests."""

import shutil

import grpc
import numpy as np
import pytest

from serving.client import PredictionClient
from serving.process.server import ServerThread
from serving.settings import ServerSettings
from training import datasets
from training.config import build_config
from training.export import export_run
from training.loop import train


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    config = build_config(
        {
            "model": "mnist_cnn",
            "epochs": 1,
            "train_limit": 1024,
            "test_limit": 64,
            "batch_size": 64,
            "histogram_freq": 0,
            "sample_images": 0,
            "runs_root": str(tmp_path_factory.mktemp("runs")),
        }
    )
    return train(config, verbose=0)


@pytest.fixture(scope="session")
def exported_version(trained_run, tmp_path_factory):
    """A pristine exported version folder to copy into test repositories."""
    return export_run(trained_run.path, name="mnist", repo=tmp_path_factory.mktemp("pristine"))


@pytest.fixture
def make_repo(tmp_path, exported_version):
    def make(versions=(1,), name="mnist"):
        root = tmp_path / "repo"
        for version in versions:
            shutil.copytree(exported_version, root / name / str(version))
        return root

    return make


@pytest.fixture(scope="module")
def server(tmp_path_factory, exported_version):
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(exported_version, root / "mnist" / "1")
    settings = ServerSettings(
        model_repo=str(root),
        host="127.0.0.1",
        port=0,
        metrics_port=0,
        rest_port=0,
        workers=1,
        poll_seconds=0.2,
        max_request_batch=64,
        auth_token="",
    )
    with ServerThread(settings) as running:
        yield running


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel


@pytest.fixture(scope="module")
def client(server):
    client = PredictionClient(f"127.0.0.1:{server.port}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_images():
    images, labels = datasets.load_arrays("mnist", "test", limit=32)
    return np.ascontiguousarray(images), labels
