"""The server process imports no Keras, no model zoo and no training code (the import contract
checks our own imports; this checks what a running ``zoo serve`` really loaded, TensorFlow's own
eager import of Keras included)."""

import json
import subprocess
import sys

from helpers import free_port

WATCH = """
import json, sys, threading, time
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from zoo import cli

repo, port = sys.argv[1], sys.argv[2]
argv = ["serve", "--model-repo", repo, "--host", "127.0.0.1", "--port", port, "--metrics-port", "-1",
        "--rest-port", "-1", "--workers", "1"]
threading.Thread(target=cli.main, args=(argv,), daemon=True).start()
stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
deadline, serving = time.monotonic() + 120, False
while not serving and time.monotonic() < deadline:
    try:
        request = health_pb2.HealthCheckRequest(service="mnist")
        serving = stub.Check(request, timeout=1).status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        time.sleep(0.1)
print(json.dumps({"serving": serving, "modules": sorted(sys.modules)}))
"""


def test_serving_process_loads_no_keras_models_or_training(make_repo):
    result = subprocess.run(
        [sys.executable, "-c", WATCH, str(make_repo()), str(free_port())],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    report = json.loads(result.stdout.strip().splitlines()[-1])
    modules = report["modules"]
    assert report["serving"] and "tensorflow" in modules, "the server ran and served the model"
    loaded = [
        name for name in modules
        if name.split(".")[0] in ("keras", "models", "training", "tensorboard", "matplotlib")
    ]  # fmt: skip
    assert loaded == []
