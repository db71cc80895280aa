"""TensorFlow started once per command, its start-up lines held back (``core.quiet``)."""

from core.quiet import start_quietly


def _import_and_find_devices() -> None:
    import tensorflow as tf

    tf.config.list_physical_devices()  # the moment TensorFlow logs its CUDA probe
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)


def start_tensorflow() -> None:
    """Imports TensorFlow quietly; call it where a command is about to need it, after any
    environment variable TensorFlow reads at import (``core.cpu.prefer_onednn_kernels``)."""
    start_quietly(_import_and_find_devices)
