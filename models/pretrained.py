"""Trained weights shipped with the zoo, one card each, like timm's ``pretrained=True``.

``models/pretrained/MODEL-DATASET.json`` is a checkpoint's card (what the CLI and the README
render: data, accuracy, calibration, speed, the command that made it), ``.md`` the same card for
people, and ``.weights.h5`` the weights (Keras' own format, stored as float16 to keep the set
small; they load into float32 variables). Each file is checked against the SHA-256 in its card
before it is loaded.

Example:
    >>> import models
    >>> models.list_pretrained("airnet*")
    ['airnet:cifar10', 'airnet:cifar10_multilabel', 'airnet:fashion_mnist']
    >>> model = models.create_model("resnet20", pretrained="cifar10")
"""

import fnmatch
import json
from functools import cache
from pathlib import Path

from core.checksums import sha256_of
from core.errors import ZooError

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


class PretrainedError(ZooError):
    """A checkpoint that does not exist, does not fit the request, or fails its check."""


def checkpoint_stem(model: str, dataset: str) -> str:
    """The file name (without suffix) of ``model``'s checkpoint trained on ``dataset``."""
    return f"{model}-{dataset}"


@cache
def _cards() -> dict[str, dict]:
    cards = {}
    for path in sorted(PRETRAINED_DIR.glob("*.json")):
        card = json.loads(path.read_text())
        cards[f"{card['model']}:{card['dataset']}"] = card
    return cards


def list_pretrained(pattern: str = "*") -> list[str]:
    """Sorted ``MODEL:DATASET`` names of the shipped checkpoints whose model matches
    ``pattern`` (shell-style, as ``list_models``)."""
    return sorted(key for key in _cards() if fnmatch.fnmatchcase(key.partition(":")[0], pattern))


def get_card(model: str, dataset: str) -> dict:
    """The card of ``model`` trained on ``dataset``; PretrainedError naming what exists if none."""
    key = f"{model}:{dataset}"
    if key not in _cards():
        trained_on = [k.partition(":")[2] for k in _cards() if k.startswith(f"{model}:")]
        offer = (
            f"{model} is shipped trained on: {', '.join(trained_on)}."
            if trained_on
            else f"Shipped checkpoints: {', '.join(list_pretrained())}."
        )
        raise PretrainedError(f"No pretrained {model!r} for dataset {dataset!r}. {offer}")
    return _cards()[key]


def parse_key(text: str) -> tuple[str, str]:
    """``"MODEL:DATASET"`` as ``(model, dataset)``, checked to name a shipped checkpoint."""
    model, colon, dataset = text.partition(":")
    if not colon or not model or not dataset:
        raise PretrainedError(
            f"Expected MODEL:DATASET (e.g. resnet20:cifar10). Received: {text!r}. "
            f"Shipped checkpoints: {', '.join(list_pretrained())}."
        )
    get_card(model, dataset)
    return model, dataset


def verified_weights(card: dict) -> Path:
    """The path of the card's weights file after checking its SHA-256; PretrainedError when
    the file is missing or differs (a partial checkout, a Git LFS pointer, a damaged copy)."""
    path = PRETRAINED_DIR / card["weights"]["file"]
    if not path.is_file():
        raise PretrainedError(
            f"Pretrained weights {path} are missing; restore them with: git checkout -- {path}"
        )
    actual = sha256_of(path)
    if actual != card["weights"]["sha256"]:
        raise PretrainedError(
            f"Pretrained weights {path} fail their SHA-256 check (expected "
            f"{card['weights']['sha256']}, found {actual}): the file is damaged or was replaced. "
            f"Restore it with: git checkout -- {path}"
        )
    return path


def save_float16_weights(model, path: Path) -> None:
    """Writes ``model``'s weights in Keras' ``.weights.h5`` layout with float32 arrays stored as
    float16 (half the size; ``load_weights`` casts them back into the float32 variables)."""
    import h5py  # Keras' own dependency for this format
    import numpy as np

    full = path.with_name(f".float32-{path.name}")
    model.save_weights(full)
    try:
        with h5py.File(full, "r") as source, h5py.File(path, "w") as target:

            def copy(name, item):
                if isinstance(item, h5py.Group):
                    target.require_group(name).attrs.update(item.attrs)
                    return
                data = item[()]
                if data.dtype == np.float32:
                    data = data.astype(np.float16)
                target.create_dataset(name, data=data)

            target.attrs.update(source.attrs)
            source.visititems(copy)
    finally:
        full.unlink(missing_ok=True)
