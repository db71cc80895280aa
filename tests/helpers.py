"""Test helpers: dataset files in every supported format, a TensorBoard event reader, loopback
server settings."""

import gzip
import pickle
import socket
from pathlib import Path

import numpy as np


def random_images(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def write_npz(path: Path, n_train: int = 12, n_test: int = 6, shape=(28, 28)) -> dict:
    arrays = {
        "x_train": random_images(n_train, shape, 1),
        "y_train": np.arange(n_train, dtype=np.uint8) % 10,
        "x_test": random_images(n_test, shape, 2),
        "y_test": np.arange(n_test, dtype=np.uint8) % 10,
    }
    np.savez(path, **arrays)
    return arrays


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_cifar_batch(path: Path, images: np.ndarray, labels: np.ndarray, label_key: bytes):
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    with open(path, "wb") as f:
        pickle.dump({b"data": data, label_key: list(labels)}, f)


def event_tags(log_dir: Path) -> dict[str, set[tuple[str, str]]]:
    """``{subfolder: {(tag, plugin)}}`` of every TensorBoard event file under ``log_dir``."""
    import tensorflow as tf

    found: dict[str, set[tuple[str, str]]] = {}
    for path in log_dir.rglob("events.out.tfevents.*"):
        key = str(path.parent.relative_to(log_dir))
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                found.setdefault(key, set()).add(
                    (value.tag, value.metadata.plugin_data.plugin_name)
                )
    return found


def loopback_settings(repo, **overrides):
    """ServerSettings for a test server on a free loopback port, polling fast, no metrics port."""
    from serving.settings import ServerSettings

    values = {"model_repo": str(repo), "host": "127.0.0.1", "port": 0, "rest_port": 0, "workers": 1,
              "metrics_port": -1,
              "poll_seconds": 0.1, "auth_token": ""}  # fmt: skip
    return ServerSettings(**{**values, **overrides})


_handed_out: set[int] = set()


def free_port() -> int:
    """A free loopback port that no earlier call handed out: the kernel may give the same free
    port to two calls in a row, and a test that asks for a gRPC and a REST port needs two."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def write_image_folder(
    root: Path,
    classes=("cat", "dog", "owl"),
    counts=None,
    size: tuple[int, int] = (8, 8),
    mode: str = "RGB",
    suffix: str = ".png",
) -> Path:
    """``root/{split}/{class}/NNN{suffix}``: per split (``counts``, default 12 train and 4 test
    per class) images whose mean pixel value encodes their class (class ``i``: about 40 + 60 i)."""
    from PIL import Image

    counts = counts or {"train": 12, "test": 4}
    rng = np.random.default_rng(0)
    channels = 1 if mode == "L" else 3
    for split, count in counts.items():
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = rng.integers(0, 20, (size[0], size[1], channels)) + 40 + 60 * label
                image = Image.fromarray(pixels.astype(np.uint8).squeeze(), mode)
                image.save(folder / f"{index:03d}{suffix}")
    return root


def partial_rest_body(port: int, declared: int, sent: int) -> socket.socket:
    """A REST connection that declares a body of ``declared`` bytes and sends ``sent`` of them."""
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(
        b"POST /v2/models/mnist/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {declared}\r\n\r\n".encode()
        + b" " * sent
    )
    return connection
