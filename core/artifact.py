"""The export artifact: TensorFlow Serving's repository layout, the signatures a zoo export offers,
and ``assets.extra/zoo.json``, its typed and versioned metadata, with one writer and one reader.

Layout: ``REPO/NAME/VERSION/`` with integer versions, each a SavedModel (``saved_model.pb``,
``variables/``) and ``assets.extra/zoo.json``. Training writes versions through
:func:`write_metadata`; the server and the CLI read them through :func:`read_metadata`.

``format_version`` 2 added ``calibration`` and the ``log_probabilities`` output; version 1 files
(written before) are still read, their missing fields taking their defaults.
"""

import json
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ZooError
from core.outputs import MULTICLASS

METADATA_PATH = Path("assets.extra") / "zoo.json"
METADATA_FORMAT = 2
READABLE_FORMATS = (1, 2)
SAVED_MODEL_FILE = "saved_model.pb"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MNIST_EXAMPLE_SHAPE = (28, 28, 1)


class ArtifactError(ZooError):
    """An exported version whose metadata cannot be read."""


class TensorInfo(BaseModel):
    """One input or output of a signature; -1 marks a dimension of any size."""

    model_config = ConfigDict(frozen=True)
    dtype: str
    shape: list[int]
    description: str = ""


class SignatureInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]


class InputInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    shape: list[int]
    dtype: str = "uint8"
    scale: str = "1/255 in graph"


class Calibration(BaseModel):
    """Temperature scaling fitted after training (docs/losses.md section 11)."""

    model_config = ConfigDict(frozen=True)
    method: str = "temperature scaling"
    temperature: float | list[float]
    validation_examples: int
    test: dict = Field(default_factory=dict, description="NLL, Brier, ECE before and after")


class ModelMetadata(BaseModel):
    """The content of ``zoo.json``. Unknown keys (from a newer writer) are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    format_version: int = METADATA_FORMAT
    name: str
    version: int
    task: Literal["multiclass", "multilabel"]
    head: str
    threshold: float = 0.5
    class_names: list[str]
    input: InputInfo
    signatures: dict[str, SignatureInfo]
    metrics: dict[str, float] = Field(default_factory=dict)
    calibration: Calibration | None = None
    config: dict = Field(default_factory=dict)
    source_run: str = ""
    exported_at: str = ""


def signature_spec(task: str, input_shape, num_classes: int) -> dict[str, SignatureInfo]:
    """The signatures an export offers, derived once from the task and shapes.

    - ``serving_default``: ``images`` uint8 [N, H, W, C] -> ``probabilities``, ``log_probabilities``,
      ``logits`` float32 [N, K] and ``classes`` int64 ([N], or [N, K] 0/1 for multilabel);
    - ``predict_images`` (28x28x1 inputs, 10 classes): TensorFlow Serving's MNIST example,
      ``images`` float32 [N, 784] in [0, 1] -> ``scores`` float32 [N, 10].
    """
    h, w, c = input_shape
    k = num_classes
    scores = TensorInfo(dtype="float32", shape=[-1, k])
    spec = {
        "serving_default": SignatureInfo(
            inputs={
                "images": TensorInfo(
                    dtype="uint8",
                    shape=[-1, h, w, c],
                    description="raw pixels 0-255; scaled to [0, 1] in the graph",
                )
            },
            outputs={
                "probabilities": scores,
                "log_probabilities": scores,
                "classes": TensorInfo(dtype="int64", shape=[-1] if task == MULTICLASS else [-1, k]),
                "logits": scores,
            },
        )
    }
    if tuple(input_shape) == MNIST_EXAMPLE_SHAPE and k == 10:
        spec["predict_images"] = SignatureInfo(
            inputs={
                "images": TensorInfo(
                    dtype="float32",
                    shape=[-1, 784],
                    description="pixels in [0, 1], row-major 28x28",
                )
            },
            outputs={"scores": scores},
        )
    return spec


MAX_VERSION = 2**63 - 1  # TensorFlow Serving's versions are int64


def parse_version(text: str) -> int | None:
    """A version number written in ASCII digits (a folder's name, a URL's or a request's field),
    or None for anything else. ``str.isdigit`` alone would also pass "²" (which ``int`` refuses)
    and "١" (which ``int`` reads as 1, a folder that is not ``1/``)."""
    return int(text) if text.isascii() and text.isdigit() else None


def version_folder_problem(name: str) -> str | None:
    """Why a folder of digits is no version (a leading zero, beyond int64), or None if it is one
    (or is no number at all)."""
    number = parse_version(name)
    if number is None:
        return None
    if str(number) != name:
        return f"{name!r} has a leading zero; name the version folder {number}"
    if number > MAX_VERSION:
        return f"{name!r} is beyond int64, the largest version TensorFlow Serving's API carries"
    return None


def existing_versions(model_dir: str | os.PathLike) -> list[int]:
    """The version folders of a model, ascending: names of ASCII digits, without a leading zero,
    within int64 (hidden temporary folders and others are ignored)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    names = [p.name for p in model_dir.iterdir() if p.is_dir()]
    versions = (parse_version(n) for n in names if version_folder_problem(n) is None)
    return sorted(v for v in versions if v is not None)


def ignored_version_folders(model_dir: str | os.PathLike) -> dict[str, str]:
    """``{folder name: why}`` of the folders of digits that are no version."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return {}
    problems = {p.name: version_folder_problem(p.name) for p in model_dir.iterdir() if p.is_dir()}
    return {name: why for name, why in problems.items() if why}


def version_stamp(version_dir: str | os.PathLike) -> float:
    """The newest modification time in a version's tree. A copy still running into
    ``N/variables/`` changes it even though ``N/`` itself is not touched."""
    newest = 0.0
    for folder, _, files in os.walk(version_dir):
        for name in (".", *files):
            try:
                newest = max(newest, os.stat(os.path.join(folder, name)).st_mtime)
            except OSError:  # removed while we looked
                continue
    return newest


def versions_on_disk(base_path: str | os.PathLike) -> dict[int, float]:
    """``{version: stamp}`` of a model's complete versions (folders holding saved_model.pb)."""
    base_path = Path(base_path)
    return {
        version: version_stamp(base_path / str(version))
        for version in existing_versions(base_path)
        if (base_path / str(version) / SAVED_MODEL_FILE).is_file()
    }


def write_metadata(version_dir: str | os.PathLike, metadata: ModelMetadata) -> None:
    """Writes ``zoo.json`` into a version being built (the export renames the folder after)."""
    path = Path(version_dir) / METADATA_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metadata.model_dump(mode="json"), indent=2) + "\n")


def parse_metadata(text: str, where: str = "zoo.json") -> ModelMetadata:
    """``zoo.json`` content as :class:`ModelMetadata`; ArtifactError naming what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{where} must hold a JSON object.")
    format_version = data.get("format_version")
    if format_version not in READABLE_FORMATS:
        raise ArtifactError(
            f"{where} has format_version {format_version!r}; this zoo reads "
            f"{', '.join(map(str, READABLE_FORMATS))}."
        )
    try:
        return ModelMetadata.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:3]
        )
        raise ArtifactError(f"{where} does not match the metadata schema: {problems}") from None


def read_metadata(version_dir: str | os.PathLike) -> ModelMetadata | None:
    """The metadata of an exported version; None for SavedModels from elsewhere (no zoo.json)."""
    path = Path(version_dir) / METADATA_PATH
    if not path.is_file():
        return None
    try:
        text = path.read_text()
    except UnicodeDecodeError as error:
        raise ArtifactError(f"{path} is not UTF-8 text: {error}") from None
    return parse_metadata(text, str(path))
