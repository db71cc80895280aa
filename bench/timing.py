"""Trainings timed as a user waits for them: each its own process, from start to exit.

Light on purpose (no Keras, no TensorFlow): the parent that times a run must not load what the
run itself chooses, such as Keras' backend.
"""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_process(argv: list[str]) -> tuple[float, float]:
    """Runs ``python ARGV`` from the project root, as a user would; returns the Unix time it
    started and its wall seconds from start to exit. A failure raises with the output's tail."""
    started = time.time()
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True)
    seconds = time.time() - started
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}:\n{tail}")
    return started, seconds


def with_wall_seconds(points: list[dict], started: float) -> list[dict]:
    """Each point (``finished_at``: Unix time) with its ``wall_seconds`` since the process
    ``started``."""
    return [{**point, "wall_seconds": point["finished_at"] - started} for point in points]
