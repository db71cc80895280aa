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

import numpy as np

from core.errors import DatasetError
from training.datasets import multilabel, sources
from training.datasets.catalog import AUGMENTATIONS, CATALOG, MULTICLASS, MULTILABEL, DatasetInfo

__all__ = [
    "AUGMENTATIONS",
    "CATALOG",
    "MULTICLASS",
    "MULTILABEL",
    "DatasetInfo",
    "get_info",
    "list_datasets",
    "load_arrays",
]
SPLITS = ("train", "test")


def list_datasets() -> list[str]:
    """Names of every dataset, in catalog order."""
    return list(CATALOG)


def get_info(name: str) -> DatasetInfo:
    """Metadata of dataset ``name``; DatasetError naming the valid choices if unknown."""
    if name not in CATALOG:
        raise DatasetError(f"Unknown dataset {name!r}. Valid choices: {', '.join(CATALOG)}.")
    return CATALOG[name]


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
) -> tuple[np.ndarray, np.ndarray]:
    """Images (uint8 NHWC) and labels of one split.

    Args:
        name: a dataset of :func:`list_datasets`.
        split: ``"train"`` or ``"test"``.
        data_dir: folder with local copies. Defaults to ``$ZOO_DATA_DIR``, then the embedded
            copy (MNIST), then TensorFlow Datasets.
        limit: keep only the first ``limit`` examples. Defaults to None (all).
        seed: seed of the generated (multilabel) datasets. Defaults to 0.

    Returns:
        ``(images, labels)``: integer labels for multiclass datasets, float32 multi-hot rows for
        multilabel ones.
    """
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
