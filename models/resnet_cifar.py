"""The CIFAR ResNet v1 of He et al. (2016), section 4.2: 6n+2 layers in three stages of widths
16, 32, 64. ``resnet20`` (n=3) has about 0.27 M parameters.

Where a stage halves the resolution the shortcut is a strided 1x1 conv with batch norm (option B).
Batch norm is the zoo's ``FusedBatchNorm`` (``models.layers``), registered with Keras: a saved
model loads once ``models`` is imported.
"""

import keras

from models.layers import FusedBatchNorm
from models.registry import register_model

L2 = 1e-4


def _conv(x, filters: int, kernel_size: int, strides: int = 1):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=keras.regularizers.L2(L2),
    )(x)


def basic_block(x, filters: int, strides: int):
    """conv3-BN-ReLU-conv3-BN, added to the (projected) input, then ReLU."""
    shortcut = x
    y = keras.layers.ReLU()(FusedBatchNorm()(_conv(x, filters, 3, strides)))
    y = FusedBatchNorm()(_conv(y, filters, 3))
    if strides != 1 or x.shape[-1] != filters:
        shortcut = FusedBatchNorm()(_conv(x, filters, 1, strides))
    return keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))


def cifar_resnet(inputs, *, blocks_per_stage: int, widths=(16, 32, 64)):
    x = keras.layers.ReLU()(FusedBatchNorm()(_conv(inputs, widths[0], 3)))
    for stage, filters in enumerate(widths):
        for block in range(blocks_per_stage):
            x = basic_block(x, filters, strides=2 if stage > 0 and block == 0 else 1)
    return keras.layers.GlobalAveragePooling2D()(x)


SUITS = ("cifar10", "cifar100", "cifar10_multilabel")


@register_model(default_input_shape=(32, 32, 3), suits=SUITS)
def resnet20(inputs, **overrides):
    """CIFAR ResNet v1, 20 layers (He et al. 2016), ~0.27 M parameters."""
    return cifar_resnet(inputs, blocks_per_stage=3, **overrides)


@register_model(default_input_shape=(32, 32, 3), suits=SUITS)
def resnet56(inputs, **overrides):
    """CIFAR ResNet v1, 56 layers (He et al. 2016), ~0.85 M parameters."""
    return cifar_resnet(inputs, blocks_per_stage=9, **overrides)
