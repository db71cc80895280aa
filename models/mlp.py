"""A multilayer perceptron: the simplest baseline for MNIST-family data."""

import keras

from models.registry import register_model


def mlp_features(inputs, *, hidden_units=(512, 256), dropout=0.2):
    x = keras.layers.Flatten()(inputs)
    for units in hidden_units:
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(dropout)(x)
    return x


@register_model(default_input_shape=(28, 28, 1), suits=("mnist", "fashion_mnist"))
def mlp(inputs, **overrides):
    """Two hidden ReLU layers (512, 256) with dropout."""
    return mlp_features(inputs, **overrides)
