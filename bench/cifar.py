"""``zoo bench cifar``: the zoo's CIFAR-10 recipes on this machine's CPU, side by side with the
Keras ResNet-20 v1 example (``bench.reference_cifar``) given the quick recipe's budget.

Data: the CIFAR-10 JPEG copy (quality 75) from ``--data-dir`` (``cifar10/{train,test}/CLASS/``,
the tarball extracted): every figure is labelled "CIFAR-10 (JPEG q75 copy)" and is not comparable
one to one with published CIFAR-10 results.

Each training is its own process timed from start to exit (``bench.timing``), like ``zoo bench
train``. The zoo's runs keep their configs' validation split (5 % of the training images, held out):
Keras validates on it after each epoch, which gives the accuracy-over-time points, and the
temperature is fitted on it; the final accuracy and calibration are on the 10,000 test images.

Targets (issue 30): the quick recipe reaches >= 90.0 % in <= 15 minutes (median of the seeds); it
reaches the reference's accuracy at the reference's 15 minutes in <= 1/4 of them; test ECE after
temperature scaling <= 1.5 %. With ``--full`` the full recipe: >= 93.0 % in <= 60 minutes.
"""

import json
import statistics
import tempfile
from pathlib import Path

from bench.report import time_to, write_result
from bench.timing import timed_process, with_wall_seconds
from bench.train import zoo_run

LABEL = "CIFAR-10 (JPEG q75 copy)"
QUICK = {"config": "cifar10_airnet_quick", "accuracy": 0.900, "seconds": 15 * 60}
FULL = {"config": "cifar10_airnet", "accuracy": 0.930, "seconds": 60 * 60}
REFERENCE_SHARE = 0.25
ECE_TARGET = 0.015


def reference_run(data_dir: str, seconds: float, limit: int | None = None) -> dict:
    """The Keras ResNet-20 v1 example as its own process, stopped ``seconds`` after its start."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "reference.json"
        argv = ["-m", "bench.reference_cifar", "--data-dir", data_dir, "--seconds", str(seconds)]
        argv += ["--out", str(out)] + (["--limit", str(limit)] if limit else [])
        started, wall = timed_process(argv)
        result = json.loads(out.read_text())
    return {**result, "points": with_wall_seconds(result["points"], started), "wall_seconds": wall}


def recipe_run(config: str, seed: int, data_dir: str, runs_root: str, **overrides) -> dict:
    """One zoo run: its validation points, then its test accuracy and calibration at exit."""
    run = zoo_run(config, seed, runs_root, validation_split=0.05, data_dir=data_dir, **overrides)
    metrics = json.loads(Path(run["metrics_path"]).read_text())
    calibration = metrics["calibration"]
    return {
        **run,
        "test_accuracy": metrics["test"]["accuracy"],
        "temperature": calibration["temperature"],
        "test_ece_before": calibration["test"]["before"]["ece"],
        "test_ece_after": calibration["test"]["after"]["ece"],
        "test_nll_before": calibration["test"]["before"]["nll"],
        "test_nll_after": calibration["test"]["after"]["nll"],
    }


def quick_targets(runs: list[dict], reference: dict) -> dict:
    """The quick recipe's targets from its runs and the reference's."""
    accuracy = statistics.median(r["test_accuracy"] for r in runs)
    wall = statistics.median(r["wall_seconds"] for r in runs)
    at_budget = reference["points"][-1]["test_accuracy"] if reference["points"] else 0.0
    to_reference = statistics.median(
        time_to(r["points"], at_budget, "wall_seconds") or float("inf") for r in runs
    )
    ece = statistics.median(r["test_ece_after"] for r in runs)
    share = to_reference / QUICK["seconds"]
    return {
        "median_test_accuracy": accuracy,
        "median_wall_seconds": wall,
        "accuracy_met": accuracy >= QUICK["accuracy"] and wall <= QUICK["seconds"],
        "reference_accuracy_at_budget": at_budget,
        "median_wall_seconds_to_reference_accuracy": to_reference,
        "share_of_reference_time": share,
        "reference_met": share <= REFERENCE_SHARE,
        "median_test_ece_before": statistics.median(r["test_ece_before"] for r in runs),
        "median_test_ece_after": ece,
        "ece_met": ece <= ECE_TARGET,
    }


def run(
    *, data_dir: str, seeds: int = 3, full: bool = False, runs_root: str = "runs/bench"
) -> dict:
    """The reference and the quick recipe over ``seeds``; with ``full``, the full recipe too.
    The result file is rewritten after each part, so a failure keeps what came before."""
    result = {"data": LABEL, "reference": reference_run(data_dir, QUICK["seconds"])}
    path = write_result("cifar", result)
    runs = [recipe_run(QUICK["config"], seed, data_dir, runs_root) for seed in range(seeds)]
    result["quick"] = {"runs": runs, "targets": quick_targets(runs, result["reference"])}
    path = write_result("cifar", result)
    if full:
        full_run = recipe_run(FULL["config"], 0, data_dir, runs_root)
        result["full"] = {
            "run": full_run,
            "met": full_run["test_accuracy"] >= FULL["accuracy"]
            and full_run["wall_seconds"] <= FULL["seconds"],
        }
        path = write_result("cifar", result)
    print_table(result)
    print(f"written to {path}")
    return result


def print_table(result: dict) -> None:
    """One line per run and the targets, on the terminal."""
    print(f"{LABEL}, wall seconds from process start; accuracy on the 10,000 test images")
    reference = result["reference"]
    print(f"{'reference (ResNet-20 v1 example)':<36} {reference['points'][-1]['test_accuracy']:>8.2%}"
          f" {reference['wall_seconds']:>8.0f} s")  # fmt: skip
    runs = result["quick"]["runs"] + ([result["full"]["run"]] if "full" in result else [])
    for run in runs:
        print(f"{run['config'] + ' seed ' + str(run['seed']):<36} {run['test_accuracy']:>8.2%} "
              f"{run['wall_seconds']:>8.0f} s  ECE {run['test_ece_before']:.2%} -> "
              f"{run['test_ece_after']:.2%} (T {run['temperature']:.3f})")  # fmt: skip
    for name, value in result["quick"]["targets"].items():
        print(f"  {name}: {value:.4g}" if isinstance(value, float) else f"  {name}: {value}")
