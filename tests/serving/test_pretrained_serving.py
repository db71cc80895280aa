"""A fresh clone serves the shipped checkpoints without training: ``zoo export --pretrained``,
then the server answers, calibrated as the card says, and ``zoo predict`` names the class."""

import io

import numpy as np
import pytest
from helpers import loopback_settings
from PIL import Image

import models
from core.artifact import read_metadata
from serving.client import PredictionClient
from serving.process.server import ServerThread
from training import datasets
from zoo import cli


@pytest.fixture(scope="module")
def pretrained_server(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    for checkpoint in ("mnist_fastnet:mnist", "resnet20:cifar10"):
        assert cli.main(["export", "--pretrained", checkpoint, "--repo", str(repo)]) == 0
    with ServerThread(loopback_settings(repo)) as running:
        yield running, repo


def test_the_exported_checkpoint_carries_its_cards_calibration(pretrained_server):
    _, repo = pretrained_server
    card = models.get_card("resnet20", "cifar10")
    metadata = read_metadata(repo / "cifar10" / "1")
    assert metadata.calibration.temperature == card["calibration"]["temperature"]
    assert metadata.class_names == card["class_names"]
    assert metadata.source_run.startswith("pretrained resnet20:cifar10")


def test_the_served_checkpoint_answers_with_its_accuracy(pretrained_server):
    server, _ = pretrained_server
    images, labels = datasets.load_arrays("mnist", "test", limit=500)
    client = PredictionClient(f"127.0.0.1:{server.port}")
    try:
        classes = client.predict("mnist", images)["classes"]
    finally:
        client.close()
    card = models.get_card("mnist_fastnet", "mnist")
    assert (classes == labels).mean() >= card["headline"]["value"] - 0.01


def test_zoo_predict_names_the_cifar_class_of_a_png(pretrained_server, tmp_path, capsys):
    server, _ = pretrained_server
    # A frog-green blob on brown: whatever the model answers, it answers with a class name.
    pixels = np.zeros((32, 32, 3), np.uint8)
    pixels[...] = (120, 90, 60)
    pixels[8:24, 8:24] = (60, 160, 60)
    png = tmp_path / "image.png"
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    png.write_bytes(buffer.getvalue())
    capsys.readouterr()
    argv = ["predict", "--server", f"127.0.0.1:{server.port}", "--model", "cifar10", str(png)]
    assert cli.main([*argv, "--top-k", "1"]) == 0
    answer = capsys.readouterr().out.strip()
    classes = models.get_card("resnet20", "cifar10")["class_names"]
    assert answer.startswith(f"{png}: ")
    assert answer.split(": ", 1)[1].split(" (")[0] in classes
