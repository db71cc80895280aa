"""The generated multilabel datasets: targets match what is drawn, determinism, split purity."""

import numpy as np
import pytest
from helpers import random_images

from training import datasets
from training.datasets import multilabel


def digit_set(seed=0):
    images = np.zeros((20, 28, 28, 1), np.uint8)
    images[:, 6:22, 8:20] = 255  # a 16x12 block of ink per "digit"
    return images, np.arange(20) % 10


@pytest.mark.parametrize("index", range(30))
def test_mnist_canvas_target_is_exactly_the_digits_drawn(index):
    images, labels = digit_set()
    rng = multilabel._rng("train", 0, index)
    canvas, target, placements = multilabel.mnist_canvas(images, labels, rng)
    assert canvas.shape == (56, 56, 1) and 1 <= len(placements) <= 3
    expected = np.zeros(10, np.float32)
    rebuilt = np.zeros_like(canvas)
    ink_count = np.zeros((56, 56), int)
    for image_index, row, col in placements:
        expected[labels[image_index]] = 1
        window = rebuilt[row : row + 28, col : col + 28]
        np.maximum(window, images[image_index], out=window)
        ink_count[row : row + 28, col : col + 28] += images[image_index][..., 0] >= 32
    np.testing.assert_array_equal(target, expected)
    np.testing.assert_array_equal(canvas, rebuilt)
    assert (ink_count > 1).sum() <= 4 * 3, "digits overlap by at most a few pixels"


def test_cifar_mosaic_tiles_hold_the_labelled_images():
    images = random_images(8, (32, 32, 3))
    labels = np.arange(8)
    for index in range(20):
        mosaic, target, placements = multilabel.cifar_mosaic(
            images, labels, multilabel._rng("test", 1, index)
        )
        assert mosaic.shape == (64, 64, 3) and 1 <= len(placements) <= 4
        filled = np.zeros((2, 2), bool)
        for image_index, row, col in placements:
            np.testing.assert_array_equal(
                mosaic[row : row + 32, col : col + 32], images[image_index]
            )
            filled[row // 32, col // 32] = True
            assert target[labels[image_index]] == 1
        assert target.sum() == len({labels[i] for i, _, _ in placements})
        for r, c in zip(*np.nonzero(~filled), strict=True):
            assert not mosaic[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32].any(), (
                "empty tile black"
            )


def test_generation_is_deterministic_and_prefix_stable():
    a_x, a_y = datasets.load_arrays("mnist_multilabel", "test", limit=40, seed=3)
    b_x, b_y = datasets.load_arrays("mnist_multilabel", "test", limit=20, seed=3)
    np.testing.assert_array_equal(a_x[:20], b_x)
    np.testing.assert_array_equal(a_y[:20], b_y)
    c_x, _ = datasets.load_arrays("mnist_multilabel", "test", limit=20, seed=4)
    assert not np.array_equal(b_x, c_x)


def test_test_split_only_uses_test_digits():
    x_test, y_test = datasets.load_arrays("mnist", "test")
    for index in range(25):
        _, _, placements = multilabel.mnist_canvas(
            x_test, y_test, multilabel._rng("test", 0, index)
        )
        for image_index, _, _ in placements:
            assert image_index < len(x_test)
    canvases, targets = datasets.load_arrays("mnist_multilabel", "test", limit=25)
    for index in range(25):
        canvas, target, _ = multilabel.mnist_canvas(
            x_test, y_test, multilabel._rng("test", 0, index)
        )
        np.testing.assert_array_equal(canvases[index], canvas)
        np.testing.assert_array_equal(targets[index], target)


def test_train_and_test_splits_differ():
    train, _ = datasets.load_arrays("mnist_multilabel", "train", limit=10)
    test, _ = datasets.load_arrays("mnist_multilabel", "test", limit=10)
    assert not any(np.array_equal(a, b) for a in train for b in test)
