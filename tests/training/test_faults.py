"""Training and export under faults: a full disk, concurrent exports, killed exports' leftovers,
and bad input refused before anything is written."""

import errno
import os
import shutil
import time

import keras
import pytest

from core.artifact import existing_versions
from training import export
from training.config import build_config
from training.run_dir import RunDir, RunDirError
from zoo import cli

TINY = ["--model", "mlp", "--epochs", "1", "--train-limit", "64", "--test-limit", "16",
        "--batch-size", "32", "--histogram-freq", "0", "--sample-images", "0", "--quiet"]  # fmt: skip


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_while_checkpointing_is_one_line_and_leaves_no_partial_file(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(keras.Model, "save", no_space)
    code = cli.main(["train", *TINY, "--runs-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.rglob("tmp-*")), "no partial checkpoint"


def test_config_is_written_atomically(tmp_path, monkeypatch):
    config = build_config({"model": "mlp"})
    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OSError):
        config.save(tmp_path / "config.yaml")
    assert list(tmp_path.iterdir()) == [] or not (tmp_path / "config.yaml").exists()


def test_bad_model_options_leave_no_run_folder(tmp_path, capsys):
    code = cli.main(["train", *TINY, "--runs-root", str(tmp_path / "runs"),
                     "--model-options", "{widht: 3}"])  # fmt: skip
    assert (
        code == 2 and "model_options {'widht': 3} do not fit model 'mlp'" in capsys.readouterr().err
    )
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert cli.main(["train", *TINY, "--runs-root", str(root)]) == 0
    (run_path,) = [p for p in root.rglob("run.json")]
    return RunDir.open(run_path.parent)


def test_an_export_taken_meanwhile_moves_to_the_next_version(finished_run, tmp_path, monkeypatch):
    """Two exports of one model at once: the one that finds its version taken takes the next."""
    repo = tmp_path / "repo"
    (repo / "m" / "1").mkdir(parents=True)
    (repo / "m" / "1" / "saved_model.pb").write_bytes(b"another export's")
    stale_views = iter([[]])  # the first look misses the version the other export just made

    def versions(model_dir):
        return next(stale_views, None) or existing_versions(model_dir)

    monkeypatch.setattr(export, "existing_versions", versions)
    assert export.export_run(finished_run.path, name="m", repo=repo).name == "2"
    assert (repo / "m" / "1" / "saved_model.pb").read_bytes() == b"another export's"
    assert sorted(p.name for p in (repo / "m").iterdir()) == ["1", "2"]


def test_killed_exports_leftovers_are_removed_by_the_next_export(finished_run, tmp_path):
    model_dir = tmp_path / "repo" / "m"
    old, recent = model_dir / ".tmp-export-killed", model_dir / ".tmp-export-running"
    for folder in (old, recent):
        folder.mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(b"half")
    hours_ago = time.time() - 2 * 3600
    os.utime(old, (hours_ago, hours_ago))
    export.export_run(finished_run.path, name="m", repo=tmp_path / "repo")
    assert not old.exists(), "an hour-old staging folder is a killed export's"
    assert recent.exists(), "a fresh one may belong to an export still running"


def test_export_to_a_file_or_a_full_disk_is_one_line(finished_run, tmp_path, monkeypatch, capsys):
    afile = tmp_path / "repo"
    afile.write_text("not a folder")
    argv = ["export", str(finished_run.path), "--name", "m"]
    assert cli.main([*argv, "--repo", str(afile)]) == 2
    assert "is a file" in capsys.readouterr().err

    class FullDisk:
        write_out = staticmethod(no_space)

    monkeypatch.setattr(export, "build_archive", lambda *args: FullDisk())
    assert cli.main([*argv, "--repo", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "nothing was published" in err
    assert list((tmp_path / "r2" / "m").iterdir()) == []


def test_a_killed_final_saves_leftover_is_removed(finished_run):
    leftover = finished_run.path / "tmp-12345-model.keras"
    leftover.write_bytes(b"half a zip")
    model = keras.saving.load_model(finished_run.model_path)
    finished_run.save_final_model(model)
    assert not leftover.exists()


def test_resume_skips_an_unreadable_checkpoint_for_the_one_before(tmp_path, capsys):
    assert cli.main(["train", *TINY, "--epochs", "2", "--runs-root", str(tmp_path)]) == 0
    (state,) = tmp_path.rglob("run.json")
    run = RunDir.open(state.parent)
    newest, older = (path for _, path in run.checkpoints_newest_first())
    with open(newest, "r+b") as damaged:  # a copy cut short
        damaged.truncate(1000)

    def interrupted():  # as a run killed before its end says it is
        run.write_state(**{**run.read_state(), "status": "running"})

    interrupted()
    assert cli.main(["train", "--resume", str(run.path), "--quiet"]) == 0
    assert f"Warning: {newest} does not load" in capsys.readouterr().err
    state = run.read_state()
    assert state["status"] == "completed" and state["resumes"] == [1]

    for path in (newest, older):
        path.write_bytes(b"not a zip")
    interrupted()
    state = run.read_state()
    assert cli.main(["train", "--resume", str(run.path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert (
        f"No checkpoint of {str(run.path)!r} loads ({newest} does not load: not a complete "
        f".keras archive, 9 bytes; {older} does not load: not a complete" in err
    )
    assert f"zoo train --config {run.config_path}" in err
    assert run.read_state() == state, "a failed resume changes nothing"


def test_exporting_a_damaged_final_model_is_one_line_and_writes_nothing(
    finished_run, tmp_path, capsys
):
    damaged = tmp_path / "run"
    shutil.copytree(finished_run.path, damaged)
    with open(damaged / "model.keras", "r+b") as model:
        model.truncate(500)
    repo = tmp_path / "repo"
    assert cli.main(["export", str(damaged), "--repo", str(repo), "--name", "m"]) == 2
    err = capsys.readouterr().err
    assert f"{damaged / 'model.keras'} does not load: not a complete .keras archive" in err
    assert "Traceback" not in err and not repo.exists()


def test_a_torn_last_history_line_is_left_out_and_a_damaged_one_named(tmp_path, capsys):
    run = RunDir.create(tmp_path, "run")
    run.history_path.write_text('{"epoch": 0, "loss": 1.0}\n{"epoch": 1, "lo')
    assert run.read_history() == [{"epoch": 0, "loss": 1.0}]
    assert "ends in a torn line; it is left out" in capsys.readouterr().err
    run.history_path.write_text('{"epoch": 0, "loss": 1.0}\n[1, 2]\n{"epoch": 2, "loss": 0.5}\n')
    with pytest.raises(RunDirError, match=r"history.jsonl line 2 is not an epoch's metrics"):
        run.read_history()
