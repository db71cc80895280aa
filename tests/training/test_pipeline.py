"""The tf.data pipeline: batching, scaling, shuffling, one-hot labels and augmentation."""

import numpy as np
import pytest
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


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``image`` moved down ``dy`` and right ``dx`` pixels, zero fill."""
    height, width = image.shape[:2]
    padded = np.pad(image, ((abs(dy), abs(dy)), (abs(dx), abs(dx)), (0, 0)))
    top, left = abs(dy) - dy, abs(dx) - dx
    return padded[top : top + height, left : left + width]


def how_augmented(original: np.ndarray, result: np.ndarray, max_shift: int):
    """``(flipped, dy, dx)`` that turn ``original`` into ``result``, or None."""
    for flipped in (False, True):
        source = original[:, ::-1] if flipped else original
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                if np.array_equal(shifted(source, dy, dx), result):
                    return flipped, dy, dx
    return None


@pytest.mark.parametrize("max_shift", [2, 4])
def test_flip_shift_mirrors_half_the_images_and_moves_them_up_to_max_shift(max_shift):
    images = random_images(64, (16, 16, 3))
    dataset = make_pipeline(images, np.arange(64), batch_size=64, augmentation="flip_shift",
                            max_shift=max_shift)  # fmt: skip
    x, _ = collect(dataset)
    found = [how_augmented(images[i], np.round(x[i] * 255).astype(np.uint8), max_shift)
             for i in range(64)]  # fmt: skip
    assert None not in found, "every image is its original, moved and maybe mirrored"
    flips = sum(flipped for flipped, _, _ in found)
    assert 16 <= flips <= 48, flips
    largest = max(max(abs(dy), abs(dx)) for _, dy, dx in found)
    assert largest == max_shift, "shifts reach max_shift and never pass it"


def test_load_returns_pipeline_and_metadata():
    dataset, info = load("mnist", "test", batch_size=32, limit=64)
    x, y = collect(dataset)
    assert x.shape == (64, 28, 28, 1) and info.num_classes == 10 and info.task == "multiclass"
