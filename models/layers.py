"""Layers the architectures share."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class FusedBatchNorm(keras.layers.Layer):
    """Batch normalization of NHWC feature maps with TensorFlow's fused kernel.

    Same mathematics as ``keras.layers.BatchNormalization`` over the channel axis, but computed by
    ``FusedBatchNormV3`` instead of separate moment and normalization ops, which trains the zoo's
    conv nets about twice as fast on CPUs: they use it where they normalize. On Keras' other
    backends it computes
    the same with ``keras.ops``, in float32, so the zoo's models run there too (tested on JAX:
    ``tests/models/test_other_backends.py``). Moving statistics are updated in training as
    ``moving = momentum * moving + (1 - momentum) * batch``.

    Args:
        momentum: momentum of the moving statistics. Defaults to 0.9.
        epsilon: added to the variance. Defaults to 1e-3.
    """

    def __init__(self, momentum=0.9, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = (input_shape[-1],)

        def weight(name, initializer, trainable):
            return self.add_weight(
                shape=channels,
                initializer=initializer,
                name=name,
                trainable=trainable,
                autocast=False,
                aggregation="mean" if not trainable else "none",
            )

        self.gamma = weight("gamma", "ones", True)
        self.beta = weight("beta", "zeros", True)
        self.moving_mean = weight("moving_mean", "zeros", False)
        self.moving_variance = weight("moving_variance", "ones", False)

    def call(self, inputs, training=False):
        if keras.backend.backend() != "tensorflow":
            return self._normalize_with_ops(inputs, training)
        import tensorflow as tf  # the fused kernel is TensorFlow's own

        if not training:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs,
                self.gamma,
                self.beta,
                mean=self.moving_mean,
                variance=self.moving_variance,
                epsilon=self.epsilon,
                is_training=False,
            )
            return outputs
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True
        )
        self._update_moving_statistics(mean, variance)
        return outputs

    def _normalize_with_ops(self, inputs, training):
        values = ops.cast(inputs, "float32")
        if training:
            mean, variance = ops.moments(values, axes=[0, 1, 2])
            count = ops.cast(ops.size(values) // values.shape[-1], "float32")
            # The fused kernel hands back the unbiased variance for the moving average: so here.
            self._update_moving_statistics(mean, variance * count / ops.maximum(count - 1, 1))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        outputs = ops.batch_normalization(
            values, mean, variance, axis=-1, offset=self.beta, scale=self.gamma,
            epsilon=self.epsilon,
        )  # fmt: skip
        return ops.cast(outputs, inputs.dtype)

    def _update_moving_statistics(self, mean, variance):
        self.moving_mean.assign(self.momentum * self.moving_mean + (1 - self.momentum) * mean)
        self.moving_variance.assign(
            self.momentum * self.moving_variance + (1 - self.momentum) * variance
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="zoo")
class HorizontalFlip(keras.layers.Layer):
    """Mirrors NHWC images left to right (always: test-time augmentation, not a random one)."""

    def call(self, images):
        return ops.flip(images, axis=2)


@keras.saving.register_keras_serializable(package="zoo")
class PatchWhitening(keras.layers.Layer):
    """A frozen ``patch_size`` x ``patch_size`` convolution ("valid") that whitens image patches,
    as airbench's first layer does.

    ``adapt(images)`` fits it to the data: the filters are the eigenvectors of the patches'
    covariance, each scaled by ``1 / sqrt(eigenvalue + epsilon * mean eigenvalue)`` and centred
    by the bias, then repeated negated, so an activation after it keeps both signs. The
    network's first layer then starts from decorrelated inputs instead of learning them, which
    is what lets a short schedule go far. Its weights are not trained; they are saved with the
    model. Before ``adapt`` it is a random convolution.

    Args:
        patch_size: side of the patches. Defaults to 2.
        epsilon: regularizer of the small eigenvalues, relative to their mean. Defaults to 5e-4.
    """

    def __init__(self, patch_size=2, epsilon=5e-4, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.patch_size = patch_size
        self.epsilon = epsilon

    def build(self, input_shape):
        size, channels = self.patch_size, input_shape[-1]
        filters = 2 * size * size * channels
        self.kernel = self.add_weight(
            shape=(size, size, channels, filters), initializer="glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight(shape=(filters,), initializer="zeros", name="bias")

    def call(self, inputs):
        return ops.conv(inputs, self.kernel, padding="valid") + self.bias

    def adapt(self, images) -> None:
        """Fits the filters to ``images`` (NHWC floats, as the layer receives them)."""
        import numpy as np

        images = np.asarray(images, np.float32)
        size, (_, height, width, channels) = self.patch_size, images.shape
        # Patch vectors in the kernel's (row, column, channel) order.
        patches = np.stack(
            [images[:, i : height - size + 1 + i, j : width - size + 1 + j, :]
             for i in range(size) for j in range(size)], axis=-2,
        ).reshape(-1, size * size * channels)  # fmt: skip
        mean = patches.mean(axis=0, dtype=np.float64)
        covariance = (patches.T @ patches).astype(np.float64) / len(patches) - np.outer(mean, mean)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        scale = 1 / np.sqrt(eigenvalues + self.epsilon * eigenvalues.mean())
        filters = eigenvectors[:, ::-1] * scale[::-1]  # largest first
        filters = np.concatenate([filters, -filters], axis=1)
        self.kernel.assign(filters.reshape(size, size, channels, -1).astype("float32"))
        self.bias.assign((-mean @ filters).astype("float32"))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        size = self.patch_size
        height, width = (None if side is None else side - size + 1 for side in (height, width))
        return (batch, height, width, 2 * size * size * channels)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "epsilon": self.epsilon}
