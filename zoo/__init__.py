"""Zoo: a Keras 3 / TensorFlow model zoo, training service and gRPC prediction server."""

__version__ = "0.1.0"
