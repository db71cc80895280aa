"""A shipped checkpoint's card is reproduced end to end: its recorded command, rerun, lands
within the card's tolerance (the cheapest recipe, ``mnist_fastnet`` on MNIST: 3 epochs)."""

import json
import shlex
from pathlib import Path

import models
from training.config import build_config, load_yaml
from training.loop import train

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_cards_command_reproduces_its_accuracy(tmp_path):
    card = models.get_card("mnist_fastnet", "mnist")
    recipe = card["recipe"]
    argv = shlex.split(recipe["command"])
    assert argv[:4] == ["zoo", "train", "--config", recipe["config"]]
    flags = dict(zip(argv[4::2], argv[5::2], strict=True))
    config = build_config(
        load_yaml(REPO_ROOT / recipe["config"]),
        {"name": flags["--name"], "seed": int(flags["--seed"]), "runs_root": str(tmp_path),
         "histogram_freq": 0, "sample_images": 0},
    )  # fmt: skip
    run = train(config, verbose=0)
    accuracy = json.loads(run.metrics_path.read_text())["test"]["accuracy"]
    tolerance = recipe["tolerance_points"] / 100
    assert abs(accuracy - card["headline"]["value"]) <= tolerance
    assert abs(accuracy - recipe["run_headline"]["value"]) <= tolerance
