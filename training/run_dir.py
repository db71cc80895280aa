"""The run directory, ``runs/NAME/TIMESTAMP/``, and atomic writes into it.

::

    config.yaml       the resolved config
    run.json          status ("running", "completed"), epochs done, resumes
    history.jsonl     one line of metrics per finished epoch
    checkpoints/      epoch-NNNN.keras: model and optimizer state, written atomically
    logs/             TensorBoard: train/, validation/ and the hparams session
    model.keras       the final model
    metrics.json      the final test metrics and the full history

Every file is written to a temporary name and renamed into place, so a run killed at any moment
(SIGKILL included) leaves either the old file or the new one, never half of one.
"""

import json
import os
import re
import sys
import time
import zipfile
from pathlib import Path

from core.errors import ZooError

CHECKPOINT_PATTERN = re.compile(r"^epoch-(\d{4,})\.keras$")
KEEP_CHECKPOINTS = 2


class RunDirError(ZooError):
    """A path given as a run directory is missing or is not one."""


def write_atomic(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file, fsync and rename; a failed write (a
    full disk, say) leaves neither a partial file nor the temporary one behind."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _save_model_atomic(model, tmp: Path, target: Path) -> None:
    """``model.save`` to ``tmp`` (Keras insists on the .keras suffix, hence a "tmp-" prefix),
    then a rename; a failed save (a full disk, say) leaves no partial file behind."""
    try:
        model.save(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")


class RunDir:
    """The files of one training run."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.config_path = self.path / "config.yaml"
        self.state_path = self.path / "run.json"
        self.history_path = self.path / "history.jsonl"
        self.checkpoints = self.path / "checkpoints"
        self.logs = self.path / "logs"
        self.model_path = self.path / "model.keras"
        self.metrics_path = self.path / "metrics.json"

    @classmethod
    def create(cls, runs_root: str | os.PathLike, name: str) -> "RunDir":
        """A new, empty run directory ``runs_root/name/YYYYmmdd-HHMMSS[-N]``."""
        parent = Path(runs_root) / name
        parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for attempt in range(1000):
            path = parent / (stamp if attempt == 0 else f"{stamp}-{attempt}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            run = cls(path)
            run.checkpoints.mkdir()
            run.logs.mkdir()
            return run
        raise RunDirError(f"Cannot create a run directory under {parent}.")

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RunDir":
        """An existing run directory; RunDirError if ``path`` is missing or not a run."""
        run = cls(path)
        if not run.path.is_dir():
            raise RunDirError(f"Run directory {str(run.path)!r} does not exist.")
        if not (run.config_path.is_file() and run.state_path.is_file()):
            raise RunDirError(
                f"{str(run.path)!r} is not a zoo run directory (it lacks config.yaml and run.json). "
                "Expected a folder such as runs/NAME/TIMESTAMP/ written by 'zoo train'."
            )
        return run

    def read_state(self) -> dict:
        return json.loads(self.state_path.read_text())

    def write_state(self, **state) -> None:
        write_json_atomic(self.state_path, state)

    def checkpoints_newest_first(self) -> list[tuple[int, Path]]:
        """``(epochs_done, path)`` of every complete checkpoint, newest first."""
        found = []
        for path in self.checkpoints.glob("epoch-*.keras"):
            match = CHECKPOINT_PATTERN.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found, reverse=True)

    def checkpoint_path(self, epochs_done: int) -> Path:
        return self.checkpoints / f"epoch-{epochs_done:04d}.keras"

    def save_checkpoint(self, model, epochs_done: int) -> None:
        """Saves model and optimizer state atomically, then prunes old checkpoints."""
        tmp = self.checkpoints / f"tmp-{os.getpid()}-epoch-{epochs_done:04d}.keras"
        _save_model_atomic(model, tmp, self.checkpoint_path(epochs_done))
        self.prune_checkpoints()
        self.write_state(**{**self.read_state(), "epochs_done": epochs_done})

    def save_final_model(self, model) -> None:
        """Saves ``model.keras`` atomically and removes what a killed earlier save left."""
        _save_model_atomic(model, self.path / f"tmp-{os.getpid()}-model.keras", self.model_path)
        for path in self.path.glob("tmp-*-model.keras"):
            path.unlink(missing_ok=True)

    @staticmethod
    def load_model(path: Path, *, compile: bool = True):
        """A ``.keras`` file of the run loaded; RunDirError naming the file and why it does not
        load (Keras calls a truncated archive "File not found")."""
        import keras

        try:
            return keras.saving.load_model(path, compile=compile)
        except Exception as error:  # zip, HDF5 and Keras errors alike: the file is unusable
            if not path.is_file():
                reason = "the file is gone"
            elif zipfile.is_zipfile(path):
                reason = str(error)
            else:
                reason = f"not a complete .keras archive, {path.stat().st_size:,} bytes"
            raise RunDirError(f"{path} does not load: {reason}") from None

    def prune_checkpoints(self) -> None:
        """Keeps the newest ``KEEP_CHECKPOINTS`` checkpoints and removes stray temporary files."""
        paths = sorted(self.checkpoints.glob("epoch-*.keras"))
        for path in paths[:-KEEP_CHECKPOINTS]:
            path.unlink(missing_ok=True)
        for path in self.checkpoints.glob("tmp-*"):
            path.unlink(missing_ok=True)

    def read_history(self, epochs_done: int | None = None) -> list[dict]:
        """The per-epoch metrics logged so far, cut to the first ``epochs_done`` epochs. A torn
        last line (a copy cut short) is left out with a warning; any other line that is not an
        epoch's metrics is a RunDirError naming it."""
        if not self.history_path.exists():
            return []
        lines = [line for line in self.history_path.read_text().splitlines() if line.strip()]
        rows = []
        for number, line in enumerate(lines, start=1):
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict) or not isinstance(row.get("epoch"), int):
                if number == len(lines):  # a torn last line: the epoch it began is redone
                    print(f"Warning: {self.history_path} ends in a torn line; it is left out.",
                          file=sys.stderr, flush=True)  # fmt: skip
                    break
                raise RunDirError(
                    f"{self.history_path} line {number} is not an epoch's metrics: {line[:100]!r}"
                )
            rows.append(row)
        return [row for row in rows if epochs_done is None or row["epoch"] < epochs_done]

    def write_history(self, rows: list[dict]) -> None:
        write_atomic(self.history_path, "".join(json.dumps(row) + "\n" for row in rows))
