"""Every on-disk format, read from small generated files, and its corrupt-file errors."""

import pickle

import numpy as np
import pytest
from helpers import random_images, write_cifar_batch, write_idx, write_npz

from core.errors import DatasetError
from training.datasets import formats


def test_npz_round_trip_adds_channel_axis(tmp_path):
    arrays = write_npz(tmp_path / "mnist.npz")
    x_train, y_train, x_test, y_test = formats.read_npz(tmp_path / "mnist.npz")
    assert x_train.shape == (12, 28, 28, 1) and x_train.dtype == np.uint8
    np.testing.assert_array_equal(x_train[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])
    assert y_train.dtype == np.int64


def test_truncated_npz_names_the_file(tmp_path):
    path = tmp_path / "mnist.npz"
    write_npz(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DatasetError, match="mnist.npz"):
        formats.read_npz(path)


def test_npz_missing_arrays_names_them(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DatasetError, match="y_train"):
        formats.read_npz(path)


def test_idx_folder_round_trip(tmp_path):
    arrays = {
        "x_train": random_images(5, (28, 28)),
        "y_train": np.arange(5),
        "x_test": random_images(3, (28, 28), 3),
        "y_test": np.arange(3),
    }
    for key, filename in formats.IDX_FILES.items():
        write_idx(tmp_path / filename, arrays[key])
    x_train, y_train, x_test, y_test = formats.read_idx_dir(tmp_path)
    np.testing.assert_array_equal(x_train[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(y_test, [0, 1, 2])
    assert x_test.shape == (3, 28, 28, 1)


def test_truncated_idx_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, random_images(4, (28, 28)))
    import gzip

    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz.*truncated"):
        formats.read_idx(path)


def test_idx_with_bad_magic_is_rejected(tmp_path):
    path = tmp_path / "x.gz"
    import gzip

    path.write_bytes(gzip.compress(b"\x01\x02\x03\x04rest"))
    with pytest.raises(DatasetError, match="magic"):
        formats.read_idx(path)


def test_cifar10_folder_round_trip(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    images = random_images(12, (32, 32, 3))
    for i in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{i}", images[2 * i - 2 : 2 * i], [i] * 2, b"labels")
    write_cifar_batch(folder / "test_batch", images[10:], [7, 8], b"labels")
    x_train, y_train, x_test, y_test = formats.read_cifar10_dir(folder)
    np.testing.assert_array_equal(x_train, images[:10])
    np.testing.assert_array_equal(y_train, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    np.testing.assert_array_equal(x_test, images[10:])
    np.testing.assert_array_equal(y_test, [7, 8])


def test_cifar100_folder_uses_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    images = random_images(4, (32, 32, 3))
    write_cifar_batch(folder / "train", images[:3], [99, 0, 42], b"fine_labels")
    write_cifar_batch(folder / "test", images[3:], [5], b"fine_labels")
    x_train, y_train, _, y_test = formats.read_cifar100_dir(folder)
    np.testing.assert_array_equal(y_train, [99, 0, 42])
    np.testing.assert_array_equal(x_train, images[:3])
    assert y_test.tolist() == [5]


def test_corrupt_cifar_batch_names_the_file(tmp_path):
    path = tmp_path / "test_batch"
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(DatasetError, match="test_batch"):
        formats._cifar_batch(path, b"labels")


def test_checksum_mismatch_is_an_error(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    formats.verify_checksum(path, formats.sha256_of(path))
    with pytest.raises(DatasetError, match="Checksum mismatch.*f.bin"):
        formats.verify_checksum(path, "0" * 64)


class _RunsACommand:
    """A pickle payload that would run ``touch`` while loading, had the unpickler allowed it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_crafted_cifar_batch_runs_nothing(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "ran"
    (folder / "data_batch_1").write_bytes(
        pickle.dumps({b"data": _RunsACommand(marker), b"labels": [1]})
    )
    with pytest.raises(DatasetError, match=r"data_batch_1.*posix\.system.*refused, not run"):
        formats.read_cifar10_dir(folder)
    assert not marker.exists(), "the payload must never run"


def test_corrupted_npz_names_the_file(tmp_path):
    path = tmp_path / "mnist.npz"
    write_npz(path)
    np.savez_compressed(path, **dict(np.load(path)))
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # damage the deflate stream, keep the zip directory
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"mnist\.npz"):
        formats.read_npz(path)


def test_npz_with_wrongly_shaped_images_is_refused(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=np.zeros((4, 10)), y_train=np.zeros(4), x_test=np.zeros((2, 10)),
             y_test=np.zeros(2))  # fmt: skip
    with pytest.raises(DatasetError, match=r"x_train has shape \[4, 10\]; expected images"):
        formats.read_npz(path)


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        ({"x_train": np.random.default_rng(0).random((12, 28, 28))},
         r"x_train has dtype float64; expected uint8 pixels 0-255"),
        ({"x_test": np.full((6, 28, 28), 300, np.int32)},
         r"x_test holds values 300 to 300; expected uint8 pixels 0-255"),
        ({"y_train": np.linspace(0, 9, 12)}, r"y_train has dtype float64; expected integer class"),
    ],
)  # fmt: skip
def test_npz_contents_that_a_cast_would_garble_are_refused(tmp_path, replace, message):
    path = tmp_path / "fashion_mnist.npz"
    np.savez(path, **{**write_npz(path), **replace})
    with pytest.raises(DatasetError, match=message):
        formats.read_npz(path)


def test_npz_images_of_other_integer_types_within_0_255_are_read(tmp_path):
    path = tmp_path / "mnist.npz"
    arrays = write_npz(path)
    np.savez(path, **{**arrays, "x_train": arrays["x_train"].astype(np.int64)})
    np.testing.assert_array_equal(formats.read_npz(path)[0][..., 0], arrays["x_train"])
