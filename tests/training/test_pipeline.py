"""The tf.data pipeline: batching, scaling, shuffling, one-hot labels and augmentation."""

import numpy as np
from helpers import random_images

from training.datasets.pipeline import image_batches, load, make_pipeline


def collect(dataset):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_batches_are_scaled_floats_in_order_without_shuffle():
    images, labels = random_images(10, (28, 28, 1)), np.arange(10)
    x, y = collect(make_pipeline(images, labels, batch_size=4))
    assert x.dtype == np.float32 and x.shape == (10, 28, 28, 1)
    np.testing.assert_allclose(x, images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def test_image_batches_scale_in_order_without_autotuning():
    images = random_images(10, (28, 28, 1))
    dataset = image_batches(images, batch_size=4)
    batches = [x.numpy() for x in dataset]
    assert [len(x) for x in batches] == [4, 4, 2]
    np.testing.assert_allclose(np.concatenate(batches), images / 255.0, rtol=1e-6)
    assert dataset.options().autotune.enabled is False
    assert make_pipeline(images, np.arange(10), batch_size=4).options().autotune.enabled is False


def test_shuffle_is_a_seeded_permutation_that_changes_each_epoch():
    images, labels = random_images(50, (4, 4, 1)), np.arange(50)
    dataset = make_pipeline(images, labels, batch_size=8, shuffle=True, seed=7)
    _, first = collect(dataset)
    _, second = collect(dataset)
    assert sorted(first) == list(range(50)) and first.tolist() != second.tolist()
    _, again = collect(make_pipeline(images, labels, batch_size=8, shuffle=True, seed=7))
    np.testing.assert_array_equal(first, again)


def test_one_hot_labels_and_drop_remainder():
    dataset = make_pipeline(
        random_images(10, (4, 4, 1)),
        np.arange(10) % 3,
        batch_size=4,
        one_hot_classes=3,
        drop_remainder=True,
    )
    x, y = collect(dataset)
    assert len(x) == 8 and y.shape == (8, 3)
    np.testing.assert_array_equal(y.argmax(1), np.arange(8) % 3)


def test_shift_augmentation_moves_pixels_and_keeps_shape():
    images = np.zeros((16, 28, 28, 1), np.uint8)
    images[:, 10:18, 10:18] = 255
    x, _ = collect(make_pipeline(images, np.zeros(16), batch_size=16, augmentation="shift"))
    assert x.shape == images.shape
    assert not np.array_equal(x, images / 255.0), "some image moved"
    # Shifts of at most 2 pixels keep the 8x8 block inside the frame: no ink is lost or invented.
    np.testing.assert_allclose(x.sum(axis=(1, 2, 3)), 64.0)


def test_flip_shift_for_colour_images():
    images = random_images(8, (32, 32, 3))
    x, _ = collect(make_pipeline(images, np.arange(8), batch_size=8, augmentation="flip_shift"))
    assert x.shape == (8, 32, 32, 3) and x.min() >= 0.0 and x.max() <= 1.0


def test_load_returns_pipeline_and_metadata():
    dataset, info = load("mnist", "test", batch_size=32, limit=64)
    x, y = collect(dataset)
    assert x.shape == (64, 28, 28, 1) and info.num_classes == 10 and info.task == "multiclass"
