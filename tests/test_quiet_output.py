"""What a user's terminal shows: no framework start-up lines or Python warnings from `zoo train`,
which ends with its results."""

import os
import re
import subprocess
import sys

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
