"""Generated multilabel datasets: images composed from a base dataset's split.

Every example is a pure function of ``(split, seed, index)``: it draws with its own random generator
seeded by those three numbers, so any prefix or subset is reproducible and the test split only ever
uses test images of the base dataset.
"""

import numpy as np

SPLIT_IDS = {"train": 0, "test": 1}
INK_THRESHOLD = 32  # a pixel at or above this value counts as ink when measuring overlap
PLACEMENT_TRIES = 50


def _rng(split: str, seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLIT_IDS[split], index])


def mnist_canvas(
    images: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    *,
    canvas_size: int = 56,
    max_digits: int = 3,
    max_overlap: int = 4,
    num_classes: int = 10,
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int]]]:
    """Draws 1 to ``max_digits`` digits at random positions on a black canvas.

    A digit is placed only where its ink overlaps the ink already drawn in at most ``max_overlap``
    pixels; a digit that finds no such place in ``PLACEMENT_TRIES`` tries is left out, so the target
    always lists exactly the digits drawn.

    Returns:
        The canvas (HxWx1 uint8), its multi-hot target (float32) and the placements
        ``(image_index, row, col)`` of the digits drawn.
    """
    size = images.shape[1]
    canvas = np.zeros((canvas_size, canvas_size, 1), np.uint8)
    ink = np.zeros((canvas_size, canvas_size), bool)
    target = np.zeros(num_classes, np.float32)
    placements = []
    for _ in range(rng.integers(1, max_digits + 1)):
        index = int(rng.integers(len(images)))
        digit = images[index]
        digit_ink = digit[..., 0] >= INK_THRESHOLD
        for _ in range(PLACEMENT_TRIES):
            row, col = (int(v) for v in rng.integers(0, canvas_size - size + 1, size=2))
            if (ink[row : row + size, col : col + size] & digit_ink).sum() <= max_overlap:
                window = canvas[row : row + size, col : col + size]
                np.maximum(window, digit, out=window)
                ink[row : row + size, col : col + size] |= digit_ink
                target[labels[index]] = 1.0
                placements.append((index, row, col))
                break
    return canvas, target, placements


def cifar_mosaic(
    images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, *, num_classes: int = 10
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int]]]:
    """Fills 1 to 4 tiles of a 2x2 mosaic with random images; empty tiles stay black.

    Returns:
        The mosaic (2Hx2Wx3 uint8), its multi-hot target and placements ``(image_index, row, col)``.
    """
    size = images.shape[1]
    mosaic = np.zeros((2 * size, 2 * size, images.shape[3]), np.uint8)
    target = np.zeros(num_classes, np.float32)
    placements = []
    tiles = rng.choice(4, size=int(rng.integers(1, 5)), replace=False)
    for tile in tiles:
        index = int(rng.integers(len(images)))
        row, col = divmod(int(tile), 2)
        mosaic[row * size : (row + 1) * size, col * size : (col + 1) * size] = images[index]
        target[labels[index]] = 1.0
        placements.append((index, row * size, col * size))
    return mosaic, target, placements


COMPOSERS = {"mnist_multilabel": mnist_canvas, "cifar10_multilabel": cifar_mosaic}


def generate(
    name: str, images: np.ndarray, labels: np.ndarray, *, split: str, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` examples of generated dataset ``name`` for ``split`` and ``seed``."""
    compose = COMPOSERS[name]
    first, target, _ = compose(images, labels, _rng(split, seed, 0))
    xs = np.empty((count, *first.shape), np.uint8)
    ys = np.empty((count, *target.shape), np.float32)
    if count:
        xs[0], ys[0] = first, target
    for index in range(1, count):
        xs[index], ys[index], _ = compose(images, labels, _rng(split, seed, index))
    return xs, ys
