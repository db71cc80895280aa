"""Readers for the on-disk formats datasets come in: Keras npz, IDX (gzipped), CIFAR python pickles.

Each reader returns ``(x_train, y_train, x_test, y_test)`` as numpy arrays with images in NHWC uint8
and integer labels, and raises :class:`DatasetError` naming the file when it is truncated or corrupt.
"""

import gzip
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np

from core.checksums import sha256_of
from core.errors import DatasetError

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
_IDX_UBYTE = 0x08


def verify_checksum(path: Path, expected_sha256: str) -> None:
    """Raises DatasetError when ``path``'s SHA-256 is not ``expected_sha256``."""
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise DatasetError(
            f"Checksum mismatch for {path}: expected sha256 {expected_sha256}, got {actual}. "
            "The file is corrupt or was replaced; restore it from git (git checkout -- data/)."
        )


def _with_channel(images: np.ndarray) -> np.ndarray:
    return images[..., np.newaxis] if images.ndim == 3 else images


def _check_pairs(path: Path, arrays: Arrays) -> Arrays:
    x_train, y_train, x_test, y_test = arrays
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if len(x) != len(y):
            raise DatasetError(
                f"{path}: {split} split has {len(x)} images but {len(y)} labels; "
                "the file is truncated or corrupt."
            )
    return arrays


def _check_pixels(path: Path, key: str, images: np.ndarray) -> None:
    """uint8 pixels, or integers within 0-255: a cast would silently wrap other values, and
    float images scaled to [0, 1] would train on near-black inputs."""
    if images.dtype == np.uint8:
        return
    if images.dtype.kind not in "iu":
        raise DatasetError(
            f"{path}: {key} has dtype {images.dtype}; expected uint8 pixels 0-255 (Keras' layout)."
        )
    low, high = (int(images.min()), int(images.max())) if images.size else (0, 0)
    if low < 0 or high > 255:
        raise DatasetError(
            f"{path}: {key} holds values {low} to {high}; expected uint8 pixels 0-255."
        )


def read_npz(path: Path) -> Arrays:
    """Reads a file in the layout of ``keras.datasets`` (``x_train, y_train, x_test, y_test``)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(data.files)
            if missing:
                raise DatasetError(
                    f"{path} lacks the arrays {sorted(missing)}; expected Keras' npz layout with "
                    "x_train, y_train, x_test, y_test."
                )
            arrays = tuple(data[key] for key in ("x_train", "y_train", "x_test", "y_test"))
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DatasetError(
            f"Cannot read {path}: the file is truncated or corrupt ({error})."
        ) from None
    x_train, y_train, x_test, y_test = arrays
    for key, images in (("x_train", x_train), ("x_test", x_test)):
        if images.ndim not in (3, 4):
            raise DatasetError(
                f"{path}: {key} has shape {list(images.shape)}; expected images [N, H, W] or "
                "[N, H, W, C]."
            )
        _check_pixels(path, key, images)
    for key, labels in (("y_train", y_train), ("y_test", y_test)):
        if labels.dtype.kind not in "iu":
            raise DatasetError(
                f"{path}: {key} has dtype {labels.dtype}; expected integer class ids."
            )
    return _check_pairs(
        path,
        (
            _with_channel(x_train.astype(np.uint8, copy=False)),
            y_train.astype(np.int64).reshape(-1),
            _with_channel(x_test.astype(np.uint8, copy=False)),
            y_test.astype(np.int64).reshape(-1),
        ),
    )


def read_idx(path: Path) -> np.ndarray:
    """Reads one gzipped IDX file (the format MNIST and Fashion-MNIST are published in)."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:
        raise DatasetError(
            f"Cannot read {path}: the file is truncated or corrupt ({error})."
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE:
        raise DatasetError(f"{path} is not an unsigned-byte IDX file (bad magic number).")
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DatasetError(f"{path} is truncated: its IDX header is incomplete.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header_size != expected:
        raise DatasetError(
            f"{path} is truncated or corrupt: header declares shape {shape} ({expected} bytes), "
            f"file holds {len(raw) - header_size} bytes of data."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def read_idx_dir(folder: Path) -> Arrays:
    """Reads the four IDX files of an MNIST-style dataset from ``folder``."""
    x_train, y_train, x_test, y_test = (read_idx(folder / IDX_FILES[key]) for key in IDX_FILES)
    return _check_pairs(
        folder,
        (
            _with_channel(x_train),
            y_train.astype(np.int64),
            _with_channel(x_test),
            y_test.astype(np.int64),
        ),
    )


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR's python batches hold: dicts, lists, bytes, numbers and numpy
    arrays. A pickle may name any importable callable and have it run while loading; this one
    refuses every global but numpy's array reconstruction, so a crafted batch runs nothing."""

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"it refers to {module}.{name}, which CIFAR batches never hold (refused, not run)"
            )
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return _CifarUnpickler(f, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as error:
        raise DatasetError(
            f"Cannot read {path}: the file is truncated or corrupt ({error})."
        ) from None


def _cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int64)
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except (KeyError, ValueError, TypeError) as error:
        raise DatasetError(f"{path} is not a CIFAR python batch ({error}).") from None
    if len(images) != len(labels):
        raise DatasetError(
            f"{path}: {len(images)} images but {len(labels)} labels; file is corrupt."
        )
    return images, labels


def read_cifar10_dir(folder: Path) -> Arrays:
    """Reads CIFAR-10's ``cifar-10-batches-py/`` (data_batch_1..5, test_batch)."""
    train = [_cifar_batch(folder / f"data_batch_{i}", b"labels") for i in range(1, 6)]
    x_test, y_test = _cifar_batch(folder / "test_batch", b"labels")
    return (
        np.concatenate([x for x, _ in train]),
        np.concatenate([y for _, y in train]),
        x_test,
        y_test,
    )


def read_cifar100_dir(folder: Path) -> Arrays:
    """Reads CIFAR-100's ``cifar-100-python/`` (train, test) with the 100 fine labels."""
    x_train, y_train = _cifar_batch(folder / "train", b"fine_labels")
    x_test, y_test = _cifar_batch(folder / "test", b"fine_labels")
    return x_train, y_train, x_test, y_test
