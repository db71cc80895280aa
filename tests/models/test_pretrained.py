"""The shipped checkpoints: each verified and loaded, meeting its card on 1,000 test images, and
refused clearly when damaged, missing or asked for in a shape it does not have."""

import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

import models
from bench.model_cards import QUICK_CHECK_EXAMPLES, quick_check
from models import pretrained
from training import datasets
from training.config import parse_config

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
# What the zoo promises to ship: (model, dataset) pairs the registry marks as suited.
PROMISED = {
    "mlp:mnist", "mlp:fashion_mnist", "mnist_cnn:mnist", "mnist_cnn:fashion_mnist",
    "mnist_fastnet:mnist", "mnist_fastnet:fashion_mnist", "airnet:fashion_mnist",
    "airnet:cifar10", "resnet20:cifar10", "mnist_fastnet:mnist_multilabel",
    "airnet:cifar10_multilabel",
}  # fmt: skip
SIZE_BUDGET_BYTES = 15_000_000


def test_every_promised_checkpoint_is_shipped_within_the_size_budget():
    assert set(models.list_pretrained()) == PROMISED
    sizes = [card["weights"]["bytes"] for card in map(_card, PROMISED)]
    assert sum(sizes) <= SIZE_BUDGET_BYTES


@pytest.mark.parametrize("key", sorted(PROMISED))
def test_each_checkpoint_passes_its_sha256_and_loads_as_its_card_says(key):
    card = _card(key)
    model = models.create_model(card["model"], pretrained=card["dataset"])
    assert model.count_params() == card["parameters"]
    assert tuple(model.input_shape[1:]) == tuple(card["input_shape"])
    assert model.output_shape[-1] == card["num_classes"] == len(card["class_names"])
    assert model.head.name == card["head"]


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory) -> Path | None:
    """``../shared/data`` with the CIFAR-10 JPEG copy extracted beside it, or None where this
    checkout has no ``../shared`` (the checkpoints on embedded MNIST are checked regardless)."""
    if not (SHARED_DATA / "fashion_mnist.npz").exists():
        return None
    folder = tmp_path_factory.mktemp("shared-data")
    (folder / "fashion_mnist.npz").symlink_to(SHARED_DATA / "fashion_mnist.npz")
    with tarfile.open(SHARED_DATA / "cifar10_jpeg.tar.gz") as archive:
        archive.extractall(folder / "cifar10", filter="data")
    return folder


@pytest.mark.parametrize("key", sorted(PROMISED))
def test_each_checkpoint_meets_its_card_on_the_first_1000_test_images(key, shared_data_dir):
    card = _card(key)
    config = parse_config(card["config"])
    info = datasets.get_info(card["dataset"])
    needs_files = (info.base or info.name) != "mnist"
    if needs_files and shared_data_dir is None:
        pytest.skip(f"{card['dataset']} needs ../shared/data beside the checkout")
    images, labels = datasets.load_arrays(
        card["dataset"], "test", data_dir=shared_data_dir if needs_files else None,
        limit=QUICK_CHECK_EXAMPLES, seed=config.seed,
    )  # fmt: skip
    model = models.create_model(card["model"], pretrained=card["dataset"])
    measured = quick_check(model, model.head, info, config, images, labels)
    assert measured["examples"] == card["quick_check"]["examples"] == QUICK_CHECK_EXAMPLES
    assert measured["value"] == pytest.approx(card["quick_check"]["value"], abs=0.005)


@pytest.fixture
def pretrained_copy(tmp_path, monkeypatch):
    """The checkpoint folder copied where a test may damage it."""
    copy = tmp_path / "pretrained"
    shutil.copytree(pretrained.PRETRAINED_DIR, copy)
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", copy)
    pretrained._cards.cache_clear()
    yield copy
    pretrained._cards.cache_clear()


def test_a_damaged_weights_file_is_refused_naming_it(pretrained_copy):
    weights = pretrained_copy / "resnet20-cifar10.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(models.PretrainedError, match="resnet20-cifar10.weights.h5 fail.*SHA-256"):
        models.create_model("resnet20", pretrained="cifar10")


def test_a_missing_weights_file_is_refused_naming_it(pretrained_copy):
    (pretrained_copy / "mlp-mnist.weights.h5").unlink()
    with pytest.raises(models.PretrainedError, match="mlp-mnist.weights.h5 are missing"):
        models.create_model("mlp", pretrained="mnist")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_shape": (28, 28, 1)}, r"takes images of shape \(32, 32, 3\).*\(28, 28, 1\)"),
        ({"num_classes": 100}, "has 10 classes. Received: num_classes=100"),
        ({"head": "sigmoid"}, "trained with the logits head; head='sigmoid'"),
        ({"widths": [8, 8, 8]}, r"fixes the architecture.*'widths': \[8, 8, 8\]"),
    ],
)
def test_what_does_not_fit_the_checkpoint_is_refused_naming_both(kwargs, message):
    with pytest.raises(models.PretrainedError, match=message):
        models.create_model("airnet", pretrained="cifar10", **kwargs)


def test_the_twin_head_shares_the_weights():
    logits = models.create_model("airnet", pretrained="cifar10")
    softmax = models.create_model("airnet", pretrained="cifar10", head="softmax")
    images = np.random.default_rng(0).random((4, 32, 32, 3), np.float32)
    z = np.asarray(logits(images))
    expected = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    np.testing.assert_allclose(softmax(images), expected, rtol=1e-5, atol=1e-6)


def test_an_unknown_checkpoint_names_what_is_shipped():
    with pytest.raises(models.PretrainedError, match="resnet20 is shipped trained on: cifar10"):
        models.create_model("resnet20", pretrained="cifar100")
    with pytest.raises(models.PretrainedError, match="Expected MODEL:DATASET"):
        pretrained.parse_key("resnet20")


def _card(key: str) -> dict:
    return models.get_card(*key.split(":"))
