"""The one pixel transform shared by training pipelines and exported models."""

import tensorflow as tf


def scale_pixels(images: tf.Tensor) -> tf.Tensor:
    """uint8 pixels in [0, 255] to float32 in [0, 1]. Exported models apply the same transform."""
    return tf.cast(images, tf.float32) / 255.0
