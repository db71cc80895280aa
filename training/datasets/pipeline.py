"""The tf.data input pipeline: shuffled index batches gathered from in-memory arrays.

Shuffling indices and gathering whole batches costs one ``tf.gather`` per batch instead of one
dataset element per image, which keeps the pipeline far ahead of any CPU training step.
"""

import os

import numpy as np
import tensorflow as tf

from training.datasets import get_info, load_arrays
from training.datasets.catalog import AUGMENTATIONS, DatasetInfo
from training.preprocess import scale_pixels


def _translate(images: tf.Tensor, max_shift: int, seed: tf.Tensor) -> tf.Tensor:
    """Shifts each image by its own random integer offset in [-max_shift, max_shift], zero fill."""
    batch = tf.shape(images)[0]
    offsets = tf.random.stateless_uniform(
        [batch, 2], seed=seed, minval=-max_shift, maxval=max_shift + 1, dtype=tf.int32
    )
    offsets = tf.cast(offsets, tf.float32)
    ones, zeros = tf.ones([batch, 1]), tf.zeros([batch, 1])
    # Projective transform rows [a0 a1 a2 b0 b1 b2 c0 c1]: output(x, y) = input(x + dx, y + dy).
    transforms = tf.concat(
        [ones, zeros, offsets[:, :1], zeros, ones, offsets[:, 1:], zeros, zeros], axis=1
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="NEAREST",
        fill_mode="CONSTANT",
    )


def _flip(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    flip = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed=seed) < 0.5
    return tf.where(flip, tf.reverse(images, axis=[2]), images)


def augment(images: tf.Tensor, kind: str, seed: tf.Tensor, max_shift: int = 2) -> tf.Tensor:
    """Batched, per-image augmentation: ``shift`` (digits) or ``flip_shift`` (natural images)."""
    if kind == "shift":
        return _translate(images, max_shift, seed)
    if kind == "flip_shift":
        return _flip(_translate(images, max_shift, seed), seed + 1)
    return images


def make_pipeline(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    augmentation: str = "none",
    max_shift: int = 2,
    one_hot_classes: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of ``(float32 images in [0, 1], labels)`` from uint8 images held in memory.

    Args:
        images: uint8 NHWC array.
        labels: integer class ids (multiclass) or float multi-hot rows (multilabel).
        batch_size: examples per batch.
        shuffle: reshuffle every epoch (deterministic for a given ``seed``). Defaults to False.
        seed: seeds shuffling and augmentation. Defaults to 0.
        augmentation: one of ``AUGMENTATIONS``. Defaults to ``"none"``.
        max_shift: largest shift in pixels for the shift augmentations. Defaults to 2.
        one_hot_classes: turn integer labels into one-hot rows of this width (needed by
            label smoothing). Defaults to None (keep labels as they are).
        drop_remainder: drop a last, smaller batch. Defaults to False.
    """
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"Unknown augmentation {augmentation!r}; expected one of {AUGMENTATIONS}.")
    all_images = tf.constant(images)
    all_labels = tf.constant(labels)
    indices = tf.data.Dataset.range(len(images))
    if shuffle:
        indices = indices.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    batches = indices.batch(batch_size, drop_remainder=drop_remainder).enumerate()

    def gather(step: tf.Tensor, batch_indices: tf.Tensor):
        x = scale_pixels(tf.gather(all_images, batch_indices))
        y = tf.gather(all_labels, batch_indices)
        if one_hot_classes is not None:
            y = tf.one_hot(y, one_hot_classes)
        if augmentation != "none":
            # A per-batch seed from (seed, step) keeps augmentation reproducible yet fresh each batch.
            x = augment(x, augmentation, tf.stack([tf.constant(seed, tf.int64), step]), max_shift)
        return x, y

    return without_autotuning(
        batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    )


def image_batches(images: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Batches of float32 images in [0, 1] from uint8 images, in order: what ``predict`` takes.

    Passing numpy arrays to ``predict`` instead would build Keras' own tf.data pipeline, with
    autotuning on and the stalls ``without_autotuning`` explains.
    """
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(batch_size)
    return without_autotuning(dataset.map(scale_pixels).prefetch(1))


def without_autotuning(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with tf.data's autotuning off.

    With it on, destroying an iterator (Keras does at every epoch, validation and ``predict``)
    at times waited 30 s or more for autotuning's thread, the process idle meanwhile, and short
    fits now and then ran with one core idle. ``AUTOTUNE`` then takes tf.data's static defaults.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


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
        Others: as in :func:`training.datasets.load_arrays`.
    """
    images, labels = load_arrays(name, split, data_dir=data_dir, limit=limit, seed=seed)
    dataset = make_pipeline(
        images, labels, batch_size=batch_size, shuffle=shuffle, seed=seed, **pipeline_options
    )
    return dataset, get_info(name)
