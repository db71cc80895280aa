"""Datasets from folders of images: ``ROOT/{train,test}/CLASS/*.jpg|png`` (``validation/``
optional), the layout ``keras.utils.image_dataset_from_directory`` and TFDS' ``ImageFolder`` read.

Class names are the subfolder names, sorted; label ``i`` is the ``i``-th name. Every file is decoded
once into uint8 arrays, grayscale when every image is, RGB otherwise (alpha dropped), resized to
``image_size`` when one is given (resampled as the server does, ``core.images.resize``).
Each split comes in one fixed shuffled order (seed ``ORDER_SEED``), so a prefix (``--train-limit``)
or the held-out end (``validation_split``) spreads over the classes.

The decoded arrays are cached in ``cache_dir()`` under a key of the folder's path, the requested
size and every file's name, size and modification time: adding, removing or touching a file, or
asking for another size, decodes again; a second run with the same folder reads one ``.npz``.
"""

import hashlib
import io
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import DatasetError
from core.images import resize

SPLITS = ("train", "validation", "test")
REQUIRED_SPLITS = ("train", "test")
FORMATS = ("JPEG", "PNG")
GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F")
ORDER_SEED = 0
CACHE_FORMAT = 1  # bump when the cached arrays' meaning changes


@dataclass(frozen=True)
class FolderDataset:
    """A decoded image folder: class names and ``(images, labels)`` per split present."""

    root: Path
    class_names: tuple[str, ...]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.splits["train"][0].shape[1:])


def is_image_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder with a ``train/`` subfolder (what ``--dataset PATH`` needs)."""
    return (Path(path).expanduser() / "train").is_dir()


def cache_dir() -> Path:
    """``$ZOO_CACHE_DIR``, else ``$XDG_CACHE_HOME/zoo``, else ``~/.cache/zoo``; decoded folders
    live in its ``image_folders/``."""
    if os.environ.get("ZOO_CACHE_DIR"):
        return Path(os.environ["ZOO_CACHE_DIR"]).expanduser() / "image_folders"
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "zoo" / "image_folders"


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _class_files(folder: Path) -> dict[str, list[Path]]:
    """``{class name: its files, sorted}`` of one split's folder."""
    loose = sorted(p.name for p in folder.iterdir() if p.is_file() and _visible(p))
    if loose:
        raise DatasetError(
            f"{folder}/{loose[0]}: files directly in {folder.name}/ have no class; put each image "
            f"in {folder.name}/CLASS/ (one subfolder per class)."
        )
    classes = {}
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and _visible(p)):
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and _visible(p))
        if not files:
            raise DatasetError(f"Class folder {class_dir} holds no image; remove it or add images.")
        classes[class_dir.name] = files
    return classes


def scan(root: Path) -> tuple[tuple[str, ...], dict[str, list[tuple[Path, int]]]]:
    """The class names and, per split, ``(file, label)`` in sorted order; DatasetError naming the
    folder for a missing split, too few classes or splits that disagree on the classes."""
    if not root.is_dir():
        state = "is not a folder" if root.exists() else "does not exist"
        raise DatasetError(f"Image folder {str(root)!r} {state}.")
    layout = f"expected {root}/train/CLASS/*.jpg and {root}/test/CLASS/*.jpg"
    per_split = {}
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            if split in REQUIRED_SPLITS:
                raise DatasetError(f"{root} has no {split}/ folder; {layout}.")
            continue
        per_split[split] = _class_files(folder)
    class_names = tuple(per_split["train"])
    if len(class_names) < 2:
        raise DatasetError(
            f"{root}/train/ has {len(class_names)} class folder(s) {list(class_names)}; a "
            f"classifier needs at least two ({layout})."
        )
    for split, classes in per_split.items():
        if tuple(classes) != class_names:
            missing = sorted(set(class_names) - set(classes))
            extra = sorted(set(classes) - set(class_names))
            raise DatasetError(
                f"{root}/{split}/ and {root}/train/ differ in their classes: "
                f"{split}/ lacks {missing}, has {extra} that train/ lacks."
            )
    files = {
        split: [(path, label) for label, paths in enumerate(classes.values()) for path in paths]
        for split, classes in per_split.items()
    }
    return class_names, files


def _decode(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    """One file as a uint8 HxW (grayscale) or HxWx3 array; DatasetError naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in FORMATS:
                raise DatasetError(
                    f"{path}: a {image.format} image; image folders hold JPEG and PNG files."
                )
            image = image.convert("L" if image.mode in GRAYSCALE_MODES else "RGB")
            if size is not None:
                image = resize(image, size[1], size[0])
            return np.asarray(image, np.uint8)
    except UnidentifiedImageError:
        raise DatasetError(f"{path}: not a JPEG or PNG image; remove it from the folder.") from None
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetError(f"{path}: cannot be decoded, truncated or corrupt ({error}).") from None


def _stack(root: Path, decoded: dict[str, list[np.ndarray]], paths: dict) -> dict:
    """One uint8 NHWC array per split: RGB when any image is, one size for all (else an error
    naming two files of different sizes)."""
    first_split = next(iter(decoded))
    reference = decoded[first_split][0].shape[:2]
    for split, images in decoded.items():
        for index, image in enumerate(images):
            if image.shape[:2] != reference:
                raise DatasetError(
                    f"{paths[split][index][0]} is {image.shape[1]}x{image.shape[0]} pixels, "
                    f"{paths[first_split][0][0]} {reference[1]}x{reference[0]}; images of "
                    f"{root} differ in size. Set image_size (--image-size HxW) to resize them all."
                )
    color = any(image.ndim == 3 for images in decoded.values() for image in images)
    stacked = {}
    for split, images in decoded.items():
        if color:
            images = [np.repeat(i[..., None], 3, axis=2) if i.ndim == 2 else i for i in images]
        array = np.stack(images)
        stacked[split] = array if color else array[..., None]
    return stacked


def _fingerprint(root: Path, files: dict, size: tuple[int, int] | None) -> str:
    digest = hashlib.sha256(f"{CACHE_FORMAT}|{root.resolve()}|{size}".encode())
    for split, entries in files.items():
        for path, label in entries:
            stat = path.stat()
            digest.update(f"{split}|{label}|{path.relative_to(root)}|{stat.st_size}|"
                          f"{stat.st_mtime_ns}\n".encode())  # fmt: skip
    return digest.hexdigest()


def _cache_path(root: Path, key: str) -> Path:
    return cache_dir() / f"{root.resolve().name or 'root'}-{key[:20]}.npz"


def _read_cache(path: Path, class_names: tuple[str, ...]) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if tuple(data["class_names"].tolist()) != class_names:
                return None
            return {
                split: (data[f"{split}_images"], data[f"{split}_labels"])
                for split in SPLITS
                if f"{split}_images" in data.files
            }
    except (OSError, ValueError, KeyError, EOFError):
        return None  # missing or damaged: decode again


def _write_cache(path: Path, class_names: tuple[str, ...], splits: dict) -> None:
    """Atomically, or not at all: an unwritable cache only costs the next run a decode."""
    arrays = {"class_names": np.array(class_names)}
    for split, (images, labels) in splits.items():
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as f:
            tmp = Path(f.name)
        try:
            np.savez(tmp, **arrays)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as error:
        print(f"Warning: cannot cache decoded images in {path.parent}: {error}", file=sys.stderr)


def load(root: str | os.PathLike, image_size: tuple[int, int] | None = None) -> FolderDataset:
    """The decoded image folder at ``root``, from the cache when the folder has not changed.

    Args:
        root: a folder holding ``train/`` and ``test/`` (and optionally ``validation/``), each
            with one subfolder per class.
        image_size: ``(height, width)`` every image is resized to. Defaults to None: images must
            all have one size.
    """
    root = Path(root).expanduser()
    class_names, files = scan(root)
    key = _fingerprint(root, files, image_size)
    cached = _read_cache(_cache_path(root, key), class_names)
    if cached is not None:
        return FolderDataset(root, class_names, cached)
    decoded = {split: [_decode(path, image_size) for path, _ in entries]
               for split, entries in files.items()}  # fmt: skip
    images = _stack(root, decoded, files)
    splits = {}
    for split, entries in files.items():
        order = np.random.default_rng(ORDER_SEED).permutation(len(entries))
        labels = np.array([label for _, label in entries], np.int64)
        splits[split] = (images[split][order], labels[order])
    _write_cache(_cache_path(root, key), class_names, splits)
    return FolderDataset(root, class_names, splits)
