"""Datasets by name: arrays, a tf.data pipeline, and the metadata beside them.

Example:
    >>> from training import datasets
    >>> train, info = datasets.load("mnist", "train", batch_size=128, shuffle=True)
    >>> info.num_classes, info.input_shape
    (10, (28, 28, 1))
"""

import functools
import os

import numpy as np
import tensorflow as tf

from core.errors import DatasetError
from training.datasets import multilabel, sources
from training.datasets.catalog import CATALOG, MULTICLASS, MULTILABEL, DatasetInfo
from training.datasets.pipeline import AUGMENTATIONS, image_batches, make_pipeline

__all__ = [
    "AUGMENTATIONS",
    "CATALOG",
    "MULTICLASS",
    "MULTILABEL",
    "DatasetInfo",
    "get_info",
    "image_batches",
    "list_datasets",
    "load",
    "load_arrays",
    "make_pipeline",
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


def load(
    name: str,
    split: str,
    *,
    batch_size: int = 128,
    shuffle: bool = False,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    **pipeline_options,
) -> tuple[tf.data.Dataset, DatasetInfo]:
    """A batched tf.data pipeline of one split, and the dataset's metadata.

    Args:
        pipeline_options: passed to :func:`make_pipeline` (``augmentation``, ``one_hot_classes``...).
        Others: as in :func:`load_arrays`.
    """
    images, labels = load_arrays(name, split, data_dir=data_dir, limit=limit, seed=seed)
    dataset = make_pipeline(
        images, labels, batch_size=batch_size, shuffle=shuffle, seed=seed, **pipeline_options
    )
    return dataset, get_info(name)
