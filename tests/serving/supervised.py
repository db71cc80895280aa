"""``zoo serve --workers 2`` as a child process, for the tests that need real workers: its log
read as it comes, its worker processes, and clients on connections of their own."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from serving.client import PredictionClient

ROOT = Path(__file__).resolve().parents[2]


def fresh_client(port: int) -> PredictionClient:
    """A client on its own connection, as a separate client process would have."""
    return PredictionClient(f"127.0.0.1:{port}", timeout=30, own_connection=True)


class Supervisor:
    """``zoo serve --workers 2`` as a process, its log read line by line as it comes."""

    def __init__(self, repo: Path, port: int, rest_port: int, metrics_port: int):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "zoo", "serve", "--workers", "2", "--model-repo", str(repo),
             "--host", "127.0.0.1", "--port", str(port), "--rest-port", str(rest_port),
             "--metrics-port", str(metrics_port), "--poll-seconds", "0.2",
             "--grace-seconds", "5"],
            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, count: int = 1, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while sum(text in line for line in self.lines) < count:
            assert time.monotonic() < deadline and self.process.poll() is None, "".join(self.lines)
            time.sleep(0.05)

    def terminate(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """``signum`` (SIGTERM); the exit code and the whole log."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        return code, "".join(self.lines)


def worker_processes(supervisor: Supervisor) -> list[psutil.Process]:
    children = psutil.Process(supervisor.process.pid).children()
    return [w for w in children if "spawn_main" in " ".join(w.cmdline())]
