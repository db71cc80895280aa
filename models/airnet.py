"""A fast CIFAR-10 network in the spirit of Keller Jordan's airbench (94 % in seconds on a GPU).

1. A 2x2 stem conv without padding, like airbench's patch-whitening layer, cheaply widens each
   pixel's view before any pooling.
2. Three blocks of conv-pool-BN-act, conv-BN-act, each halving the resolution: pooling right
   after the first conv makes the second conv four times cheaper.
3. Global max pooling, then the head; a fixed 1/9 scale on the features keeps the logits small
   early in training, as airbench's temperature does.
4. Optionally (``stem="whitening"``) the stem is airbench's frozen patch-whitening layer, fitted
   to the training images (``models.layers.PatchWhitening``).

GELU is airbench's activation; on CPUs it is most of a narrow net's cost, so ``activation``
can swap it (the CIFAR-10 and Fashion-MNIST configs train on ReLU).
"""

import keras

from models.layers import FusedBatchNorm, PatchWhitening
from models.registry import register_model


def _conv_bn_act(x, filters: int, pool: bool, activation: str):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    if pool:
        x = keras.layers.MaxPooling2D(2)(x)
    x = FusedBatchNorm(momentum=0.6, epsilon=1e-5)(x)
    return keras.layers.Activation(activation)(x)


@register_model(
    default_input_shape=(32, 32, 3),
    suits=("cifar10", "cifar100", "cifar10_multilabel", "fashion_mnist"),
)
def airnet(
    inputs, *, stem_width=None, widths=(64, 256, 256), feature_scale=1 / 9, activation="gelu",
    stem="conv",
):  # fmt: skip
    """airbench-style CIFAR-10 net: 2x2 stem, three conv-pool blocks, global max pool.

    Args:
        stem: ``conv`` (a trained 2x2 convolution of ``stem_width`` filters, 24 unless given)
            or ``whitening`` (airbench's frozen patch-whitening layer, fitted to the training
            images before training: twice as many filters as a patch has values, 24 for RGB).
    """
    if stem == "whitening":
        if stem_width is not None:
            raise ValueError(
                f"stem_width is set by the data with stem='whitening'. Received: "
                f"stem_width={stem_width!r}"
            )
        x = PatchWhitening(2, name="whitening")(inputs)
    elif stem == "conv":
        x = keras.layers.Conv2D(stem_width or 24, 2, padding="valid")(inputs)
    else:
        raise ValueError(f"stem must be 'conv' or 'whitening'. Received: stem={stem!r}")
    x = keras.layers.Activation(activation)(x)
    for filters in widths:
        x = _conv_bn_act(x, filters, pool=True, activation=activation)
        x = _conv_bn_act(x, filters, pool=False, activation=activation)
    x = keras.layers.GlobalMaxPooling2D()(x)
    return keras.layers.Rescaling(feature_scale)(x)
