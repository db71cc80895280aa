"""The servers the serving benchmark measures, each a process it starts, waits for and stops:
``zoo serve``, the naive and no-op servers, and the Triton peer in its own environment; the model
they serve, and the turns they take when measured side by side."""

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

import models
from training import datasets
from training.export import build_archive

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / ".venv-peer" / "bin" / "python"
START_SECONDS = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A server process under test: ``argv`` run by ``python`` from the project root, answering
    the ``protocol`` the benchmark speaks to it ("tfserving" or "v2") on ``port``."""

    name: str
    argv: list[str]
    port: int
    protocol: str
    python: Path = Path(sys.executable)
    root: Path = ROOT  # the checkout it runs from
    env: dict = field(default_factory=dict)  # added to this process' environment
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Server":
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(self.root), **self.env}
        self.process = subprocess.Popen(
            [str(self.python), *self.argv],
            cwd=self.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Until the model answers: the port alone opens before Triton has loaded it."""
        deadline = time.monotonic() + START_SECONDS
        with grpc.insecure_channel(self.target) as channel:
            grpc.channel_ready_future(channel).result(timeout=START_SECONDS)
            if self.protocol != "v2":
                return
            ready = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelReady
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    if ready(service_pb2.ModelReadyRequest(name="mnist"), timeout=5).ready:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not get ready within {START_SECONDS:.0f} s")

    def version(self) -> str:
        """The server's name and version, as its Open Inference Protocol metadata says."""
        with grpc.insecure_channel(self.target) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            metadata = stub.ServerMetadata(service_pb2.ServerMetadataRequest(), timeout=10)
        return f"{metadata.name} {metadata.version}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def zoo_server(
    name: str, repo: Path, *, protocol: str, workers: int, extra=(), root: Path = ROOT, env=None
) -> Server:
    """``zoo serve`` from the checkout ``root`` (this one unless told), on loopback."""
    port = free_port()
    argv = ["-m", "zoo", "serve", "--model-repo", str(repo), "--workers", str(workers)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--rest-port", "-1"]
    argv += ["--metrics-port", "-1", *extra]
    return Server(name, argv, port, protocol, root=root, env=env or {})


def naive_server(keras_path: Path) -> Server:
    port = free_port()
    argv = ["-m", "bench.naive_server", "--model", str(keras_path), "--port", str(port)]
    return Server("naive", argv, port, "tfserving")


def noop_server() -> Server:
    port = free_port()
    return Server(
        "gRPC ceiling (no-op)", ["-m", "bench.noop_server", "--port", str(port)], port, "tfserving"
    )


def peer_available() -> bool:
    """Whether ``scripts/setup-peer.sh`` has made the peer's environment."""
    return PEER_PYTHON.exists()


def triton_peer(name: str, version_dir: Path, *, instances: int) -> Server:
    port = free_port()
    argv = ["bench/triton_peer.py", "--model-dir", str(version_dir), "--port", str(port)]
    argv += ["--instances", str(instances)]
    return Server(name, argv, port, "v2", python=PEER_PYTHON)


def prepare_model(folder: Path) -> tuple[Path, Path]:
    """The keras-io convnet (weights as initialised: speed does not depend on them), saved as
    ``.keras`` for the naive server and exported as ``repo/mnist/1`` for ``zoo serve`` and the
    peer."""
    model = models.create_model("mnist_cnn", head="softmax")
    keras_path = folder / "mnist_cnn.keras"
    model.save(keras_path)
    repo = folder / "repo"
    info = datasets.get_info("mnist")
    build_archive(model, models.get_head("softmax"), info, 0.5).write_out(
        str(repo / "mnist" / "1"), verbose=False
    )
    return keras_path, repo


def take_turns(pair: list, levels, rounds: int, measure_level) -> dict:
    """``measure_level(server, level)`` for every server, level and round, who goes first
    rotating between levels and rounds: ``{server name: {level: [result per round]}}``."""
    turns = {server.name: {str(level): [] for level in levels} for server in pair}
    for round_index in range(rounds):
        for level_index, level in enumerate(levels):
            shift = (round_index + level_index) % len(pair)
            for server in pair[shift:] + pair[:shift]:
                turns[server.name][str(level)].append(measure_level(server, level))
    return turns
