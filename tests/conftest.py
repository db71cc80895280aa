"""Shared test set-up: quiet TensorFlow on the kernels ``zoo train`` runs, no user data directory
or cache leaking in, tiny data writers."""

import os
from pathlib import Path

import numpy as np
import pytest
from helpers import random_images, write_cifar_batch, write_npz

from core.cpu import prefer_onednn_kernels

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
prefer_onednn_kernels()  # the kernels `zoo train` runs, asked for before TensorFlow's import


@pytest.fixture(autouse=True)
def _isolated_data_env(monkeypatch, tmp_path_factory):
    """Tests never see the developer's ZOO_DATA_DIR, TFDS cache or precision cache."""
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path_factory.mktemp("tfds")))
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path_factory.mktemp("zoo-cache")))


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """A ``--data-dir`` with small generated MNIST, Fashion-MNIST and CIFAR-10 copies (a data
    folder must hold the dataset asked for: nothing falls back to the embedded MNIST)."""
    folder = tmp_path_factory.mktemp("data")
    write_npz(folder / "mnist.npz", n_train=96, n_test=48)
    write_npz(folder / "fashion_mnist.npz", n_train=96, n_test=48)
    cifar = folder / "cifar-10-batches-py"
    cifar.mkdir()
    for index, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        images = random_images(20, (32, 32, 3), seed=index)
        write_cifar_batch(cifar / name, images, np.arange(20) % 10, b"labels")
    return folder
