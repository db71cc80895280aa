"""The keras-io "Simple MNIST convnet": the reference every benchmark compares against.

Conv32-Pool-Conv64-Pool-Flatten-Dropout, then the head's Dense(10). With a softmax head it is
the keras-io model layer for layer (34,826 parameters).
"""

import keras

from models.registry import register_model


@register_model(default_input_shape=(28, 28, 1), suits=("mnist", "fashion_mnist"))
def mnist_cnn(inputs, *, dropout=0.5):
    """keras-io Simple MNIST convnet (Conv32-Pool-Conv64-Pool-Dropout-Dense)."""
    x = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    return keras.layers.Dropout(dropout)(x)
