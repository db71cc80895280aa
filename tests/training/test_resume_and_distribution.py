"""A run killed with SIGKILL resumes from its checkpoint; two workers train in lockstep."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np

import models  # noqa: F401 - registers the zoo's layers, so saved models load
from training.run_dir import RunDir

ROOT = Path(__file__).resolve().parents[2]


def train_command(*argv):
    return [sys.executable, "-m", "zoo", "train", "--quiet", *argv]


def environment(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **extra}


def test_sigkill_then_resume_continues_from_checkpoint(tmp_path):
    argv = [
        "--model",
        "mlp",
        "--epochs",
        "8",
        "--train-limit",
        "4096",
        "--test-limit",
        "64",
        "--batch-size",
        "32",
        "--runs-root",
        str(tmp_path),
        "--histogram-freq",
        "0",
    ]
    process = subprocess.Popen(train_command(*argv), cwd=ROOT, env=environment())
    deadline = time.monotonic() + 120
    checkpoint = None
    while time.monotonic() < deadline and process.poll() is None:
        found = list(tmp_path.glob("*/*/checkpoints/epoch-0002.keras"))
        if found:
            checkpoint = found[0]
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint is not None, "training never wrote its second checkpoint"
    run = RunDir(checkpoint.parent.parent)
    # The newest checkpoint, not the state file: the kill may land between the checkpoint's rename
    # and the state's update, and resuming goes by the checkpoints.
    killed_at, _ = run.checkpoints_newest_first()[0]
    assert run.read_state()["status"] == "running" and 2 <= killed_at < 8

    user_environment = environment()
    user_environment.pop("TF_ENABLE_ONEDNN_OPTS", None)  # zoo train chooses the kernels
    subprocess.run(
        train_command("--resume", str(run.path)),
        cwd=ROOT,
        env=user_environment,
        check=True,
        timeout=300,
    )
    state = run.read_state()
    assert state["status"] == "completed" and state["epochs_done"] == 8
    assert state["resumes"] and state["resumes"][0] >= 2, "resumed from a checkpoint, not scratch"
    metrics = json.loads(run.metrics_path.read_text())
    assert metrics["cpu_kernels"] == "oneDNN"
    history = metrics["history"]
    assert [row["epoch"] for row in history] == list(range(8))
    assert history[-1]["loss"] < history[0]["loss"]

    # Resuming the finished run is refused and touches nothing.
    stamps = {p: p.stat().st_mtime_ns for p in (run.model_path, run.metrics_path)}
    again = subprocess.run(train_command("--resume", str(run.path)), cwd=ROOT, env=user_environment,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 2
    assert "finished its 8 epochs; there is nothing to resume" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_end_with_identical_weights_and_falling_loss(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        argv = [
            "--model",
            "mnist_fastnet",
            "--strategy",
            "multiworker",
            "--epochs",
            "3",
            "--train-limit",
            "1024",
            "--test-limit",
            "64",
            "--batch-size",
            "64",
            "--lr",
            "0.002",
            "--runs-root",
            str(tmp_path / f"worker{index}"),
        ]
        env = environment(TF_CONFIG=json.dumps(tf_config))
        processes.append(subprocess.Popen(train_command(*argv), cwd=ROOT, env=env))
    for process in processes:
        assert process.wait(timeout=300) == 0
    runs = [RunDir(next((tmp_path / f"worker{i}").glob("*/*/"))) for i in range(2)]
    weights = [keras.saving.load_model(run.model_path).get_weights() for run in runs]
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
    for run in runs:
        losses = [row["loss"] for row in json.loads(run.metrics_path.read_text())["history"]]
        assert len(losses) == 3 and losses[-1] < losses[0]
    assert runs[1].path.parent.name.endswith("-worker1")
