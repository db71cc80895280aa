"""Zoo: a Keras 3 / TensorFlow model zoo, training service and gRPC prediction server.

This package is the command line (``zoo``); the shared definitions live in ``core``.
"""

from core import __version__

__all__ = ["__version__"]
