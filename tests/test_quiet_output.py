"""What a user's terminal shows: no framework start-up lines or Python warnings from `zoo train`,
which ends with its results."""

import os
import re
import subprocess
import sys

from PIL import Image

NOISE = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|cuInit|Warning|warn\(", re.MULTILINE)


def zoo_env() -> dict:
    """The environment of a user who set nothing: no TF_CPP_MIN_LOG_LEVEL, no ZOO_VERBOSE."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "ZOO_VERBOSE")}
    return {**env, "PYTHONUNBUFFERED": "1"}


def test_zoo_train_prints_one_line_per_stage_and_its_results(tmp_path):
    argv = [sys.executable, "-m", "zoo", "train", "--model", "mlp", "--epochs", "2",
            "--train-limit", "600", "--test-limit", "200", "--validation-split", "0.2",
            "--runs-root", str(tmp_path / "runs")]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, env=zoo_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert not NOISE.search(output), output
    lines = output.splitlines()
    assert lines[0].startswith("Precision: ")
    epochs = [line for line in lines if line.startswith("Epoch ")]
    assert len(epochs) == 2 and re.match(r"Epoch 2/2 - \d+s - accuracy 0\.\d{4} - ", epochs[1])
    assert re.search(r" - [\d,]+ examples/s - CPU \d+% - lr 0.001$", epochs[1]), epochs[1]
    assert re.search(r"^Test accuracy: \d+\.\d\d% \(top-\d \d+\.\d\d%\), 200 images$", output, re.M)
    assert re.search(r"^Calibration: +temperature \d+\.\d{3} on 120 validation examples; "
                     r"test ECE \d+\.\d\d% -> \d+\.\d\d%", output, re.M)  # fmt: skip
    assert lines[-2].startswith("Run directory: ") and lines[-1].startswith("TensorBoard: ")
    assert len(lines) == 7, output


def test_a_multilabel_run_prints_no_tensorflow_notice(tmp_path):
    """TensorFlow logged an error-level oneDNN notice at the first int32 op of a multilabel run."""
    argv = [sys.executable, "-m", "zoo", "train", "--dataset", "mnist_multilabel", "--model",
            "mnist_fastnet", "--head", "sigmoid", "--epochs", "1", "--train-limit", "300",
            "--test-limit", "100", "--runs-root", str(tmp_path / "runs")]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, env=zoo_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert not NOISE.search(output), output
    assert re.search(r"^Test: mAP \d\.\d{4}", output, re.M), output


def test_zoo_predict_and_zoo_models_start_without_tensorflow_or_keras(tmp_path):
    """They need protos and JSON cards only: seconds of TensorFlow and Keras start-up saved."""
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28)).save(image)
    script = f"""
import sys
from zoo import cli
assert cli.main(["models"]) == 0 and cli.main(["models", "--pretrained"]) == 0
assert cli.main(["predict", "--server", "localhost:1", "--model", "m", {str(image)!r}]) == 2
loaded = sorted(m for m in ("tensorflow.python", "keras", "models.registry") if m in sys.modules)
print("heavy modules:", loaded)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=zoo_env(), timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "heavy modules: []" in done.stdout, done.stdout
    assert "resnet20" in done.stdout and "UNAVAILABLE" in done.stderr


def test_a_client_without_tensorflow_shares_its_protos_with_tensorflow_imported_later():
    script = """
import sys
import numpy as np
from serving.client import predict_request
assert "tensorflow.python" not in sys.modules
import tensorflow as tf
request = predict_request("m", np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
request.inputs["other"].CopyFrom(tf.make_tensor_proto([1.5]))
print(tf.make_ndarray(request.inputs["images"]).tolist(), tf.make_ndarray(request.inputs["other"]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=zoo_env(), timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "[[[0, 1, 2], [3, 4, 5]]] [1.5]" in done.stdout
