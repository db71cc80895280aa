"""Source order, the embedded MNIST copy, the mocked TFDS download and the offline error path."""

import time

import numpy as np
import pytest
from helpers import random_images, write_cifar_batch, write_idx, write_npz

from core.errors import DatasetError
from training import datasets
from training.datasets import formats, sources


@pytest.fixture(autouse=True)
def _fresh_cache():
    datasets._base_arrays.cache_clear()
    yield
    datasets._base_arrays.cache_clear()


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(sources, "is_online", lambda host, timeout=0: False)


def listing(folder):
    return sorted((p.relative_to(folder), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_embedded_mnist_has_official_sizes_and_test_label_counts():
    x_train, y_train = datasets.load_arrays("mnist", "train")
    x_test, y_test = datasets.load_arrays("mnist", "test")
    assert x_train.shape == (60000, 28, 28, 1) and len(y_train) == 60000
    assert x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_embedded_copy_is_verified_by_checksum(monkeypatch, tmp_path):
    fake = tmp_path / "mnist.npz"
    write_npz(fake)
    monkeypatch.setitem(sources.EMBEDDED, "mnist", (fake, "0" * 64))
    with pytest.raises(DatasetError, match="Checksum mismatch"):
        datasets.load_arrays("mnist", "train")


def test_data_dir_npz_wins_over_embedded_copy(tmp_path):
    arrays = write_npz(tmp_path / "mnist.npz")
    before = listing(tmp_path)
    x_train, y_train = datasets.load_arrays("mnist", "train", data_dir=tmp_path)
    np.testing.assert_array_equal(x_train[..., 0], arrays["x_train"])
    assert sources.locate("mnist", tmp_path).kind == "npz"
    assert listing(tmp_path) == before, "nothing may be written into the user's data directory"


def test_zoo_data_dir_environment_variable(monkeypatch, tmp_path):
    write_npz(tmp_path / "fashion_mnist.npz", n_train=7)
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path))
    x_train, _ = datasets.load_arrays("fashion_mnist", "train")
    assert len(x_train) == 7


def test_idx_files_in_dataset_folder(tmp_path):
    folder = tmp_path / "fashion_mnist"
    folder.mkdir()
    for key, filename in formats.IDX_FILES.items():
        n = 4 if "train" in key else 2
        data = random_images(n, (28, 28)) if key.startswith("x") else np.arange(n)
        write_idx(folder / filename, data)
    assert sources.locate("fashion_mnist", tmp_path).kind == "idx"
    x_test, y_test = datasets.load_arrays("fashion_mnist", "test", data_dir=tmp_path)
    assert x_test.shape == (2, 28, 28, 1) and y_test.tolist() == [0, 1]


def test_cifar_python_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_batch(folder / name, random_images(2, (32, 32, 3)), [3, 4], b"labels")
    x_train, y_train = datasets.load_arrays("cifar10", "train", data_dir=tmp_path)
    assert x_train.shape == (10, 32, 32, 3) and y_train.tolist() == [3, 4] * 5


def test_offline_without_copy_fails_fast_with_where_it_looked(offline, tmp_path):
    start = time.monotonic()
    with pytest.raises(DatasetError) as error:
        datasets.load_arrays("cifar10", "train", data_dir=tmp_path)
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert "cifar-10-batches-py" in message and str(tmp_path) in message
    assert "--data-dir" in message and "ZOO_DATA_DIR" in message
    assert "tensorflow_datasets" in message or "cifar10" in message


def test_offline_probe_really_fails_within_seconds():
    start = time.monotonic()
    assert sources.is_online("host.invalid", timeout=2) is False
    assert time.monotonic() - start < 5


def test_tfds_path_with_mocked_download(monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(sources, "is_online", lambda host, timeout=0: True)
    with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
        source = sources.locate("cifar10")
        assert source.kind == "tfds"
        x_train, y_train, x_test, y_test = source.read()
    assert x_train.shape == (5, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_test.shape == (5,) and y_test.max() < 10


def test_unknown_dataset_and_split_name_the_choices():
    with pytest.raises(DatasetError, match="'imagenet'.*mnist, fashion_mnist"):
        datasets.get_info("imagenet")
    with pytest.raises(DatasetError, match="'validation'.*train, test"):
        datasets.load_arrays("mnist", "validation")


@pytest.mark.parametrize(
    ("shape", "labels", "message"),
    [
        ((32, 32), None, r"train images have shape \[32, 32, 1\]; fashion_mnist needs \[28, 28, 1\]"),
        ((28, 28), np.arange(12) % 10 + 5, r"train labels run from 5 to 14; fashion_mnist has classes 0 to 9"),
    ],
)  # fmt: skip
def test_a_file_in_the_layout_with_another_datasets_contents_is_refused(
    tmp_path, shape, labels, message
):
    path = tmp_path / "fashion_mnist.npz"
    arrays = write_npz(path, shape=shape)
    if labels is not None:
        np.savez(path, **{**arrays, "y_train": labels})
    with pytest.raises(DatasetError, match=rf"fashion_mnist\.npz: {message}"):
        datasets.load_arrays("fashion_mnist", "train", data_dir=tmp_path)
