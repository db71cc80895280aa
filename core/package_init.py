"""Importing a light module of a heavy package without running the package's ``__init__``.

Importing ``a.b`` runs ``a/__init__.py`` first. For ``tensorflow`` that loads the whole runtime,
for the zoo's ``models`` Keras: seconds, where a command needs only a proto module (TF Serving's
API imports TensorFlow's ``*_pb2``) or the model catalogue. :func:`without_package_init` lets
such modules load alone; the package imported properly later in the same process finds them
already loaded and shares them.
"""

import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def without_package_init(package: str) -> Iterator[None]:
    """Within it, ``package.module`` imports without ``package/__init__.py`` running: a stand-in
    for the package sits in its place and is taken away on leaving. Where the package is already
    imported, nothing changes."""
    if package in sys.modules:
        yield
        return
    spec = importlib.util.find_spec(package)
    stand_in = types.ModuleType(package)
    stand_in.__path__ = list(spec.submodule_search_locations)
    sys.modules[package] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(package) is stand_in:
            del sys.modules[package]
