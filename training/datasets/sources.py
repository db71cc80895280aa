"""Where a base dataset's arrays come from, tried in order.

1. ``--data-dir`` / ``ZOO_DATA_DIR``: ``NAME.npz`` (Keras' layout), the four IDX ``.gz`` files in
   ``NAME/``, an image folder ``NAME/{train,test}/CLASS/``, or CIFAR's ``cifar-10-batches-py/`` /
   ``cifar-100-python/``. A data folder that holds none of these is an error: it never falls
   through to another source.
2. The copy embedded in the repository (MNIST only), verified by SHA-256 on load.
3. TensorFlow Datasets: its prepared cache, or a download when the download host is reachable.

Nothing is ever written into the user's data directory; TFDS writes only into its own cache, and
image folders are decoded into ``image_folder.cache_dir()``.
"""

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import DatasetError
from training.datasets import formats, image_folder
from training.datasets.catalog import CATALOG

REPO_ROOT = Path(__file__).resolve().parents[2]
EMBEDDED = {
    "mnist": (
        REPO_ROOT / "data" / "mnist.npz",
        "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",
    ),
}
CIFAR_DIRS = {
    "cifar10": ("cifar-10-batches-py", formats.read_cifar10_dir),
    "cifar100": ("cifar-100-python", formats.read_cifar100_dir),
}
DOWNLOAD_HOSTS = {
    "mnist": "storage.googleapis.com",
    "fashion_mnist": "fashion-mnist.s3-website.eu-central-1.amazonaws.com",
    "cifar10": "www.cs.toronto.edu",
    "cifar100": "www.cs.toronto.edu",
}
ONLINE_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Source:
    """One place a dataset can be read from: a label for users and the function that reads it."""

    kind: str
    location: str
    read: Callable[[], formats.Arrays]


def data_dir_from_env(data_dir: str | os.PathLike | None) -> Path | None:
    """The explicit ``data_dir`` if given, else ``$ZOO_DATA_DIR``, else ``None``."""
    chosen = data_dir if data_dir is not None else os.environ.get("ZOO_DATA_DIR")
    return Path(chosen).expanduser() if chosen else None


def tfds_dir() -> Path:
    """TFDS' own cache (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``)."""
    return Path(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")).expanduser()


def local_candidates(name: str, data_dir: Path | None) -> list[tuple[Path, Callable]]:
    """The files or folders that would hold ``name``, in the order they are tried."""
    candidates = []
    if data_dir is not None:
        candidates.append((data_dir / f"{name}.npz", formats.read_npz))
        candidates.append((data_dir / name / formats.IDX_FILES["x_train"], None))
        candidates.append((data_dir / name / "train", read_catalog_folder))
        if name in CIFAR_DIRS:
            folder, reader = CIFAR_DIRS[name]
            candidates.append((data_dir / folder, reader))
    return candidates


def _local_source(name: str, data_dir: Path | None) -> Source | None:
    for path, reader in local_candidates(name, data_dir):
        if not path.exists():
            continue
        if reader is None:  # IDX files: the folder holding the four files
            return Source(
                "idx", str(path.parent), lambda folder=path.parent: formats.read_idx_dir(folder)
            )
        if reader is read_catalog_folder:
            return Source(
                "image-folder", str(path.parent), lambda p=path.parent: read_catalog_folder(name, p)
            )
        kind = "npz" if path.suffix == ".npz" else "cifar-python"
        return Source(kind, str(path), lambda p=path, r=reader: r(p))
    return None


def read_catalog_folder(name: str, root: Path) -> formats.Arrays:
    """A catalog dataset from an image folder: each class subfolder named as one of its classes
    (labels follow the catalog's order, whatever the folders' order)."""
    class_names = CATALOG[name].class_names
    if (root / "validation").is_dir():
        raise DatasetError(
            f"{root}/validation/: {name} has a train and a test split only; to train with this "
            f"folder's validation split, pass the folder itself: --dataset {root}"
        )
    folder = image_folder.load(root)
    unknown = sorted(set(folder.class_names) - set(class_names))
    if unknown:
        raise DatasetError(
            f"{root}/train/ has class folders {unknown} that {name} does not have; its classes: "
            f"{', '.join(class_names)}."
        )
    to_catalog = np.array([class_names.index(c) for c in folder.class_names], np.int64)
    (x_train, y_train), (x_test, y_test) = folder.splits["train"], folder.splits["test"]
    return x_train, to_catalog[y_train], x_test, to_catalog[y_test]


def _embedded_source(name: str) -> Source | None:
    if name not in EMBEDDED:
        return None
    path, sha256 = EMBEDDED[name]
    if not path.exists():
        return None

    def read() -> formats.Arrays:
        formats.verify_checksum(path, sha256)
        return formats.read_npz(path)

    return Source("embedded", str(path), read)


def is_online(host: str, timeout: float = ONLINE_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host:443`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _read_tfds(name: str) -> formats.Arrays:
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=str(tfds_dir()))
    if not builder.is_prepared():
        builder.download_and_prepare()
    arrays = []
    for split in ("train", "test"):
        images, labels = [], []
        dataset = builder.as_dataset(split=split, as_supervised=True).batch(8192)
        for x, y in tfds.as_numpy(dataset):
            images.append(x)
            labels.append(y)
        arrays += [np.concatenate(images).astype(np.uint8), np.concatenate(labels).astype(np.int64)]
    return tuple(arrays)


def _tfds_source(name: str) -> Source | None:
    import tensorflow_datasets as tfds

    location = str(tfds_dir() / name)
    prepared = tfds.builder(name, data_dir=str(tfds_dir())).is_prepared()
    if prepared or is_online(DOWNLOAD_HOSTS[name]):
        return Source("tfds", location, lambda: _read_tfds(name))
    return None


def _not_found_message(name: str) -> str:
    looked = ["--data-dir / ZOO_DATA_DIR: not set"]
    if name in EMBEDDED:
        looked.append(f"{EMBEDDED[name][0]} (embedded copy): missing")
    looked.append(f"TensorFlow Datasets cache {tfds_dir() / name}: not prepared")
    looked.append(f"download from {DOWNLOAD_HOSTS[name]}: unreachable (offline?)")
    return (
        f"Dataset {name!r} is not available offline. Looked in:\n  - "
        + "\n  - ".join(looked)
        + f"\nFix: put {_layouts(name)} in a folder and pass --data-dir FOLDER (or set "
        "ZOO_DATA_DIR), or run once with internet access so TensorFlow Datasets can download it."
    )


def _layouts(name: str) -> str:
    layouts = [f"{name}.npz (Keras' layout)", f"{name}/train/CLASS/ and {name}/test/CLASS/ images"]
    if name in CIFAR_DIRS:
        layouts.append(f"{CIFAR_DIRS[name][0]}/ (CIFAR's python batches)")
    else:
        layouts.append(f"{name}/ with the four IDX .gz files")
    return ", ".join(layouts[:-1]) + " or " + layouts[-1]


def _not_in_data_dir_message(name: str, data_dir: Path) -> str:
    looked = [
        f"{path.parent}/ (IDX files): not found" if reader is None else f"{path}: not found"
        for path, reader in local_candidates(name, data_dir)
    ]
    hint = ""
    if image_folder.is_image_folder(data_dir):
        hint = f"\n{data_dir} is an image folder itself: train on it with --dataset {data_dir}"
    return (
        f"Data folder {str(data_dir)!r} (--data-dir or ZOO_DATA_DIR) does not hold {name!r}. "
        "Looked for:\n  - " + "\n  - ".join(looked) + f"\nIt takes {_layouts(name)}.{hint}"
    )


def locate(name: str, data_dir: str | os.PathLike | None = None) -> Source:
    """The first source that holds base dataset ``name``; DatasetError listing where it looked.
    A data folder that does not exist or lacks the dataset is an error, never a reason to fall
    back silently to another source."""
    folder = data_dir_from_env(data_dir)
    if folder is not None and not folder.is_dir():
        raise DatasetError(
            f"Data folder {str(folder)!r} (--data-dir or ZOO_DATA_DIR) "
            f"{'is not a folder' if folder.exists() else 'does not exist'}."
        )
    if folder is not None:
        source = _local_source(name, folder)
        if source is None:
            raise DatasetError(_not_in_data_dir_message(name, folder))
        return source
    source = _embedded_source(name) or _tfds_source(name)
    if source is None:
        raise DatasetError(_not_found_message(name))
    return source


def describe(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """Where ``name`` would load from, for ``zoo datasets``, without reading it or going online."""
    folder = data_dir_from_env(data_dir)
    if folder is not None:
        source = _local_source(name, folder)
        return f"{source.kind}: {source.location}" if source else f"not in {folder}"
    source = _embedded_source(name)
    if source is not None:
        return f"{source.kind}: {source.location}"
    return f"tfds: {tfds_dir() / name} (downloads on first use)"
