"""``zoo bench train``: the keras-io reference recipe and the zoo's best configs, side by side in
one run on this machine, every target a ratio against the reference measured here.

Every training runs as its own process, the command a user would type (``zoo train --config
...``; ``python -m bench.reference`` for the reference), and its wall time counts from process
start to the final test accuracy: imports, data loading, the precision probe, the per-epoch test
evaluation and the final report included. Each epoch's point carries both clocks: ``seconds`` of
training alone and ``wall_seconds`` since the process started.

Targets (issue 9), on wall time. MNIST: the quick config (``mnist_fastnet_quick``) reaches 99.2 %
in <= 1/4 of the reference's time to 99.2 %, and the main one (``mnist_fastnet``) >= 99.5 % (median
of 3 seeds) within 1/3 of the reference's 15-epoch time; the keras-io architecture trained through
the zoo's pipeline runs at >= 1.5x the reference's examples/s; in steady state the zoo's training
keeps the cores busy (>= 90 % of each core's time over an epoch: 180 % on 2 cores).
Fashion-MNIST: >= 93.5 % within the reference's 15-epoch time.

Each reference runs twice, before and after the zoo's runs (so does the keras-io architecture
through the zoo's pipeline, inside them), and the median of its two runs is the denominator: this
host's phases moved one and the same reference between 296 and 376 s, so a single run could decide
a target by when it happened to run.
"""

import contextlib
import json
import os
import statistics
import tempfile
from pathlib import Path
from unittest import mock

from bench.reference import accuracy_points
from bench.report import as_runs, time_to, write_result
from bench.timing import ROOT, timed_process, with_wall_seconds
from training.run_dir import RunDir

CONFIGS = ROOT / "configs"
MNIST_TARGETS = (0.990, 0.992, 0.994)
CLOCK = "wall seconds from process start to the final test accuracy, evaluation included"


def reference_run(
    dataset: str, epochs: int, data_dir: str | None = None, limit: int | None = None
) -> dict:
    """The keras-io recipe as its own process: points on both clocks, examples/s, wall time
    (``limit``: the first images of each split only, for smoke tests)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "reference.json"
        argv = ["-m", "bench.reference", "--dataset", dataset, "--epochs", str(epochs)]
        argv += ["--out", str(out)]
        argv += ["--data-dir", data_dir] if data_dir else []
        argv += ["--limit", str(limit)] if limit else []
        started, wall = timed_process(argv)
        result = json.loads(out.read_text())
    return {**result, "points": with_wall_seconds(result["points"], started), "wall_seconds": wall}


def zoo_run(config_name: str, seed: int, runs_root: str, **overrides) -> dict:
    """``zoo train --config configs/CONFIG_NAME.yaml`` as its own process, validating on the test
    split after every epoch (``validation_split 0``): its points, examples/s and wall time."""
    Path(runs_root).mkdir(parents=True, exist_ok=True)
    root = tempfile.mkdtemp(prefix=f"{config_name}-seed{seed}-", dir=runs_root)
    flags = {
        "name": config_name,  # as the shipped checkpoints' recipes: zoo bench cards takes the run
        "seed": seed,
        "runs_root": root,
        "histogram_freq": 0,
        "sample_images": 0,
        "validation_split": 0.0,
        **overrides,
    }
    argv = ["-m", "zoo", "train", "--config", str(CONFIGS / f"{config_name}.yaml"), "--quiet"]
    for key, value in flags.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    started, wall = timed_process(argv)
    (run_path,) = Path(root).glob("*/*")
    run = RunDir.open(run_path)
    history = run.read_history()
    points = with_wall_seconds(accuracy_points(history), started)
    examples = sum(row["examples_per_second"] * row["train_seconds"] for row in history)
    return {
        "last_epoch_examples_per_second": history[-1]["examples_per_second"],
        "config": config_name,
        "seed": seed,
        "points": points,
        "examples_per_second": examples / points[-1]["seconds"],
        "wall_seconds": wall,
        "cpu_kernels": json.loads(run.metrics_path.read_text())["cpu_kernels"],
        "metrics_path": str(run.metrics_path),
    }


def summarize(run: dict, targets=MNIST_TARGETS) -> dict:
    """Seconds to each accuracy on both clocks, final accuracy, training and wall seconds, the
    steady CPU use and the CPU kernels TensorFlow ran."""
    return {
        **{f"seconds_to_{t:.3f}": time_to(run["points"], t) for t in targets},
        **{f"wall_seconds_to_{t:.3f}": time_to(run["points"], t, "wall_seconds") for t in targets},
        "final_accuracy": run["points"][-1]["test_accuracy"],
        "train_seconds": run["points"][-1]["seconds"],
        "wall_seconds": run["wall_seconds"],
        "examples_per_second": run["examples_per_second"],
        "cpu_percent": steady_cpu_percent(run["points"]),
        "cpu_kernels": run["cpu_kernels"],
    }


def steady_cpu_percent(points: list[dict]) -> float:
    """The process's CPU use over an epoch's training, median over the epochs after the first
    (which traces the model)."""
    steady = points[1:] or points
    return statistics.median(p["cpu_percent"] for p in steady)


def _median_time_to(runs: list[dict], target: float, clock: str) -> float:
    return statistics.median(time_to(r["points"], target, clock) or float("inf") for r in runs)


def _reference_time_to(references: list[dict], target: float, clock: str) -> float:
    """The references' median time to ``target``; a run that never got there counts with its
    whole time (issue 9: "or of its 15-epoch time where it never gets there")."""
    return statistics.median(
        time_to(r["points"], target, clock) or r["points"][-1][clock] for r in references
    )


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _median_train_seconds(runs: list[dict]) -> float:
    """The runs' median training seconds to their last epoch (evaluation excluded)."""
    return statistics.median(r["points"][-1]["seconds"] for r in runs)


def bench_mnist(seeds: int, runs_root: str, quick: bool) -> dict:
    """The keras-io reference and the keras-io architecture trained through the zoo's pipeline,
    before and after the zoo's two MNIST configs (99.5 % and 99.2 % fast, taking turns over
    ``seeds`` seeds) in A B ... B A order; the targets as ratios."""
    epochs = 2 if quick else 15
    overrides = {"epochs": 2} if quick else {}

    def cnn_run() -> dict:
        # Three epochs, the last one timed: the first pays for tracing, which the reference
        # spreads over 15 epochs.
        return zoo_run("mnist_cnn", 0, runs_root, epochs=3, mixed_precision="auto")

    references, cnns = [reference_run("mnist", epochs)], [cnn_run()]
    zoo, zoo_quick = [], []
    for seed in range(seeds):
        zoo.append(zoo_run("mnist_fastnet", seed, runs_root, **overrides))
        zoo_quick.append(zoo_run("mnist_fastnet_quick", seed, runs_root, **overrides))
    cnns.append(cnn_run())
    references.append(reference_run("mnist", epochs))
    targets = mnist_targets(references, zoo, zoo_quick, cnns)
    return {
        "reference": summaries(references),
        "zoo": summaries(zoo),
        "zoo_quick": summaries(zoo_quick),
        "keras_io_architecture_through_zoo_pipeline": {
            "examples_per_second": _median(cnns, "last_epoch_examples_per_second"),
            "runs_examples_per_second": [r["last_epoch_examples_per_second"] for r in cnns],
            "ratio_to_reference": targets["pipeline_speed_ratio"],
        },
        "targets": targets,
    }


def mnist_targets(references: list[dict], zoo: list[dict], zoo_quick: list[dict], cnns: list[dict]):
    """Issue 9's MNIST targets, each zoo median against the references' median (``cnns``: the
    keras-io architecture's runs through the zoo's pipeline)."""

    def to_992(runs: list[dict], clock: str) -> float:
        return _median_time_to(runs, 0.992, clock) / _reference_time_to(references, 0.992, clock)

    reference_wall = _median(references, "wall_seconds")
    return {
        "reference_runs": len(references),
        "reference_wall_seconds": reference_wall,
        "wall_time_to_99.2_ratio": to_992(zoo_quick, "wall_seconds"),
        "time_to_99.2_ratio_target": 0.25,
        "main_config_wall_time_to_99.2_ratio": to_992(zoo, "wall_seconds"),
        "median_final_accuracy": statistics.median(r["points"][-1]["test_accuracy"] for r in zoo),
        "final_accuracy_target": 0.995,
        "median_wall_seconds_ratio": _median(zoo, "wall_seconds") / reference_wall,
        "wall_seconds_ratio_target": 1 / 3,
        "pipeline_speed_ratio": _median(cnns, "last_epoch_examples_per_second")
        / _median(references, "examples_per_second"),
        "pipeline_speed_ratio_target": 1.5,
        "median_cpu_percent": statistics.median(steady_cpu_percent(r["points"]) for r in zoo),
        "cpu_percent_target": 90.0 * len(os.sched_getaffinity(0)),
        # The same ratios on training seconds alone, as earlier results reported them.
        "time_to_99.2_ratio": to_992(zoo_quick, "seconds"),
        "median_train_seconds_ratio": _median_train_seconds(zoo)
        / _median_train_seconds(references),
    }


FASHION_TARGETS = (0.90, 0.92, 0.935)


def bench_fashion(seeds: int, runs_root: str, quick: bool, data_dir: str | None) -> dict:
    """The keras-io recipe on Fashion-MNIST before and after the zoo's Fashion-MNIST config over
    ``seeds`` seeds (A B B A: one slow phase of the host cannot decide the comparison)."""
    epochs = 2 if quick else 15
    overrides = {**({"data_dir": data_dir} if data_dir else {}), **({"epochs": 2} if quick else {})}
    references = [reference_run("fashion_mnist", epochs, data_dir)]
    zoo = [zoo_run("fashion_mnist_airnet", seed, runs_root, **overrides) for seed in range(seeds)]
    references.append(reference_run("fashion_mnist", epochs, data_dir))
    return {
        "reference": summaries(references, FASHION_TARGETS),
        "zoo": summaries(zoo, FASHION_TARGETS),
        "targets": fashion_targets(references, zoo),
    }


def fashion_targets(references: list[dict], zoo: list[dict]) -> dict:
    """Each zoo run's best accuracy among the epochs that ended within the references' median
    wall time, and the median of those: None where a run had no epoch end within it."""
    reference_wall = _median(references, "wall_seconds")
    within = [
        max((p["test_accuracy"] for p in r["points"] if p["wall_seconds"] <= reference_wall),
            default=None)
        for r in zoo
    ]  # fmt: skip
    return {
        "reference_runs": len(references),
        "reference_wall_seconds": reference_wall,
        "zoo_accuracy_within_reference_wall_per_seed": within,
        "zoo_accuracy_within_reference_wall": None if None in within else statistics.median(within),
        "accuracy_target": 0.935,
        "wall_seconds_ratio": _median(zoo, "wall_seconds") / reference_wall,
        "train_seconds_ratio": _median_train_seconds(zoo) / _median_train_seconds(references),
    }


def summaries(runs: list[dict], targets=MNIST_TARGETS) -> list[dict]:
    """Each run's summary with its seed (the references have none) and points."""
    return [
        {**summarize(r, targets), **({"seed": r["seed"]} if "seed" in r else {}),
         "points": r["points"]}
        for r in runs
    ]  # fmt: skip


@contextlib.contextmanager
def fresh_precision_cache():
    """Points the zoo's runs at an empty precision cache (``training.precision_probe``) while the
    bench runs: the first run of each config measures the policies, as a user's first run does,
    and its later seeds reuse the speeds, as a user's later runs do."""
    with (
        tempfile.TemporaryDirectory(prefix="zoo-cache-") as folder,
        mock.patch.dict(os.environ, {"ZOO_CACHE_DIR": folder}),
    ):
        yield


def run(*, seeds: int = 3, fashion_seeds: int = 2, runs_root: str = "runs/bench",
        quick: bool = False, data_dir: str | None = None) -> dict:  # fmt: skip
    """Both benchmarks; the result file is rewritten after each, so a failure keeps the first.

    Args:
        data_dir: where Fashion-MNIST is (``fashion_mnist.npz``); defaults to ``$ZOO_DATA_DIR``.
    """
    name = "train_quick" if quick else "train"
    with fresh_precision_cache():
        result = {"quick": quick, "clock": CLOCK, "mnist": bench_mnist(seeds, runs_root, quick)}
        path = write_result(name, result)
        result["fashion_mnist"] = bench_fashion(fashion_seeds, runs_root, quick, data_dir)
        path = write_result(name, result)
    plot(result, path.with_suffix(".png"))
    print_table(result)
    print(f"written to {path} and {path.with_suffix('.png')}")
    return result


def plot(result: dict, path: Path) -> None:
    """Test accuracy against wall seconds from process start, reference and zoo, both datasets."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4))
    ranges = {"mnist": (0.97, 1.0), "fashion_mnist": (0.85, 0.95)}
    for ax, (dataset, (low, high)) in zip(figure.subplots(1, 2), ranges.items(), strict=True):
        data = result[dataset]
        references = as_runs(data["reference"])
        styled = [
            ("o-", f"keras-io reference (run {number} of {len(references)})", run)
            for number, run in enumerate(references, 1)
        ]
        styled += [("s-", f"zoo (seed {run.get('seed', 0)})", run) for run in as_runs(data["zoo"])]
        styled += [
            ("^--", f"zoo quick (seed {run['seed']})", run) for run in data.get("zoo_quick", [])
        ]
        for style, label, run in styled:
            ax.plot(
                [p["wall_seconds"] for p in run["points"]],
                [p["test_accuracy"] for p in run["points"]],
                style,
                label=label,
            )
        ax.set_ylim(low, high)
        ax.set_xlabel(f"seconds from process start ({os.cpu_count()} CPU cores)")
        ax.set_ylabel("test accuracy")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def print_table(result: dict) -> None:
    mnist = result["mnist"]
    print(f"MNIST, {CLOCK}; training seconds alone in the last column but one")
    print(
        f"{'':<28} {'to 99.0':>8} {'to 99.2':>8} {'to 99.4':>8} {'final':>7} {'wall':>8} "
        f"{'train':>8} {'ex/s':>7}"
    )

    def row(name, s):
        cells = [s.get(f"wall_seconds_to_{t:.3f}") for t in MNIST_TARGETS]
        text = " ".join(f"{c:8.1f}" if c is not None else f"{'-':>8}" for c in cells)
        print(
            f"{name:<28} {text} {s['final_accuracy']:7.4f} {s['wall_seconds']:8.1f} "
            f"{s['train_seconds']:8.1f} {s['examples_per_second']:7.0f}"
        )

    for number, run in enumerate(mnist["reference"], 1):
        row(f"keras-io reference, run {number}", run)
    for run in mnist["zoo"]:
        row(f"zoo mnist_fastnet seed {run['seed']}", run)
    for run in mnist["zoo_quick"]:
        row(f"zoo mnist_fastnet_quick seed {run['seed']}", run)
    print(json_line("targets", mnist["targets"]))
    print(json_line("fashion_mnist targets", result["fashion_mnist"]["targets"]))


def json_line(name, data) -> str:
    return f"{name}: " + ", ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in data.items()
    )
