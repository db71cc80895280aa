"""Multiply-adds per image: the cost figure of a model card, as timm's results tables give it."""

import math

import keras


def multiply_adds(model: keras.Model) -> int:
    """Multiply-accumulate operations for one image through the convolutions and dense layers
    (the rest, activations, pooling and normalization, is a small fraction and not counted)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            height, width = layer.output.shape[1:3]
            kernel = math.prod(layer.kernel.shape)  # kh * kw * (in / groups) * filters
            total += height * width * kernel
        elif isinstance(layer, keras.layers.Dense):
            total += math.prod(layer.kernel.shape)
    return total
