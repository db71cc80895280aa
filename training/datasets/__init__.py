"""Datasets by name: their arrays and the metadata beside them.

This package imports no TensorFlow; the tf.data pipeline built from the arrays is
``training.datasets.pipeline``.

Example:
    >>> from training import datasets
    >>> images, labels = datasets.load_arrays("mnist", "train")
    >>> info = datasets.get_info("mnist")
    >>> info.num_classes, info.input_shape
    (10, (28, 28, 1))
"""

import functools
import os
from pathlib import Path

import numpy as np

from core.errors import DatasetError
from training.datasets import image_folder, multilabel, sources
from training.datasets.catalog import AUGMENTATIONS, CATALOG, MULTICLASS, MULTILABEL, DatasetInfo

__all__ = [
    "AUGMENTATIONS",
    "CATALOG",
    "MULTICLASS",
    "MULTILABEL",
    "DatasetInfo",
    "get_info",
    "is_folder_dataset",
    "list_datasets",
    "load_arrays",
]
SPLITS = ("train", "test")
FOLDER_SPLITS = ("train", "validation", "test")


def list_datasets() -> list[str]:
    """Names of every dataset, in catalog order."""
    return list(CATALOG)


def is_folder_dataset(name: str) -> bool:
    """Whether ``name`` is not a catalog name but a path: an image folder (or a mistyped one)."""
    return name not in CATALOG and (os.sep in name or Path(name).expanduser().is_dir())


def get_info(name: str, *, image_size: tuple[int, int] | None = None) -> DatasetInfo:
    """Metadata of dataset ``name``: a catalog name, or the path of an image folder (decoded, or
    read from its cache, to learn its classes and shape); DatasetError if it is neither."""
    if is_folder_dataset(name):
        return _folder_info(name, image_size)
    if name not in CATALOG:
        raise DatasetError(
            f"Unknown dataset {name!r}. Valid choices: {', '.join(CATALOG)}, or the path of a "
            "folder holding train/ and test/ with one subfolder per class."
        )
    return CATALOG[name]


@functools.lru_cache(maxsize=2)
def _folder(path: str, image_size: tuple[int, int] | None) -> image_folder.FolderDataset:
    return image_folder.load(path, image_size)


def _folder_info(path: str, image_size: tuple[int, int] | None) -> DatasetInfo:
    folder = _folder(path, image_size)
    return DatasetInfo(
        name=path,
        task=MULTICLASS,
        input_shape=folder.input_shape,
        class_names=folder.class_names,
        split_sizes={split: len(labels) for split, (_, labels) in folder.splits.items()},
        description=f"image folder {folder.root}",
    )


@functools.lru_cache(maxsize=4)
def _base_arrays(name: str, data_dir: str | None) -> tuple[np.ndarray, ...]:
    source = sources.locate(name, data_dir)
    arrays = source.read()
    _check_against_catalog(get_info(name), arrays, source.location)
    return arrays


def _check_against_catalog(info: DatasetInfo, arrays, location: str) -> None:
    """Images of the catalog's shape and labels within its classes: a file in the right layout
    with the wrong contents (another dataset's, say) stops here, not inside the first step."""
    for split, images, labels in (("train", *arrays[:2]), ("test", *arrays[2:])):
        if tuple(images.shape[1:]) != info.input_shape:
            raise DatasetError(
                f"{location}: {split} images have shape {list(images.shape[1:])}; {info.name} "
                f"needs {list(info.input_shape)}."
            )
        classes = len(info.class_names)
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise DatasetError(
                f"{location}: {split} labels run from {labels.min()} to {labels.max()}; "
                f"{info.name} has classes 0 to {classes - 1}."
            )


def load_arrays(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    seed: int = 0,
    image_size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images (uint8 NHWC) and labels of one split.

    Args:
        name: a dataset of :func:`list_datasets`, or the path of an image folder.
        split: ``"train"`` or ``"test"``; an image folder with ``validation/`` also has
            ``"validation"``.
        data_dir: folder with local copies. Defaults to ``$ZOO_DATA_DIR``, then the embedded
            copy (MNIST), then TensorFlow Datasets. Not for image folders.
        limit: keep only the first ``limit`` examples. Defaults to None (all).
        seed: seed of the generated (multilabel) datasets. Defaults to 0.
        image_size: ``(height, width)`` an image folder's images are resized to. Defaults to
            None (they must share one size). Not for catalog datasets.

    Returns:
        ``(images, labels)``: integer labels for multiclass datasets, float32 multi-hot rows for
        multilabel ones.
    """
    if is_folder_dataset(name):
        splits = _folder(name, image_size).splits
        if split not in splits:
            raise DatasetError(
                f"Image folder {name!r} has no {split!r} split. It has: {', '.join(splits)}."
            )
        images, labels = splits[split]
        return (images, labels) if limit is None else (images[:limit], labels[:limit])
    info = get_info(name)
    if split not in SPLITS:
        raise DatasetError(
            f"Unknown split {split!r} for {name!r}. Valid choices: {', '.join(SPLITS)}."
        )
    folder = sources.data_dir_from_env(data_dir)
    base = _base_arrays(info.base or name, str(folder) if folder else None)
    images, labels = base[0:2] if split == "train" else base[2:4]
    if info.base is None:
        return (images, labels) if limit is None else (images[:limit], labels[:limit])
    count = info.split_sizes[split] if limit is None else min(limit, info.split_sizes[split])
    return multilabel.generate(name, images, labels, split=split, count=count, seed=seed)
