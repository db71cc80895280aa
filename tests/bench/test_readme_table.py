"""The README's benchmark tables: the recipe each MNIST target was measured on, the reference's
runs and their median, when each Fashion-MNIST run reached its accuracy within the reference's
time, and the day of each result; for results with repeated sides and for earlier ones."""

import copy
import json

from bench import readme_table
from bench.readme_table import _dates, results_by_kind, training_section
from bench.train import fashion_targets, mnist_targets, summaries


def run(walls_and_accuracies, *, seed=None, start_up=8.0):
    """A training run's record as ``bench.train`` keeps it: one point per epoch."""
    points = [
        {"epoch": epoch, "seconds": wall - start_up, "wall_seconds": wall,
         "test_accuracy": accuracy, "cpu_percent": 184.0}
        for epoch, (wall, accuracy) in enumerate(walls_and_accuracies, 1)
    ]  # fmt: skip
    record = {"points": points, "wall_seconds": points[-1]["wall_seconds"] + 3.0,
              "examples_per_second": 2000.0, "cpu_kernels": "oneDNN",
              "last_epoch_examples_per_second": 4000.0}  # fmt: skip
    return record if seed is None else {**record, "seed": seed}


MNIST_REFERENCE = [(20.0 * epoch, 0.975 + 0.0013 * epoch) for epoch in range(1, 16)]
FASHION_REFERENCE = [(20.0 * epoch, 0.85 + 0.004 * epoch) for epoch in range(1, 16)]


def train_result(mnist_references=2, fashion_zoo=None, fashion_references=2) -> dict:
    """A ``zoo bench train`` result of repeated references, built by the bench's own functions."""
    references = [run(MNIST_REFERENCE) for _ in range(mnist_references)]
    zoo = [run([(35.0, 0.991), (70.0, 0.9945), (100.0, 0.995 + seed / 1e4)], seed=seed)
           for seed in range(3)]  # fmt: skip
    quick = [run([(30.0, 0.990), (40.0, 0.9925)], seed=seed) for seed in range(3)]
    cnns = [run([(20.0, 0.98)]), run([(20.0, 0.98)])]
    f_references = [run(FASHION_REFERENCE) for _ in range(fashion_references)]
    f_zoo = fashion_zoo or [run([(150.0, 0.90), (290.0, 0.925)], seed=0)]
    fashion_targets_ = (0.90, 0.92, 0.935)
    return {
        "clock": "wall seconds",
        "mnist": {
            "reference": summaries(references),
            "zoo": summaries(zoo),
            "zoo_quick": summaries(quick),
            "keras_io_architecture_through_zoo_pipeline": {
                "examples_per_second": 4000.0, "runs_examples_per_second": [3900.0, 4100.0],
                "ratio_to_reference": 2.0,
            },
            "targets": mnist_targets(references, zoo, quick, cnns),
        },
        "fashion_mnist": {
            "reference": summaries(f_references, fashion_targets_),
            "zoo": summaries(f_zoo, fashion_targets_),
            "targets": fashion_targets(f_references, f_zoo),
        },
    }  # fmt: skip


def single_runs(result: dict) -> dict:
    """The same result as results measured before the bench repeated its sides: one reference
    run (a dict) and one Fashion-MNIST run (a dict)."""
    result = copy.deepcopy(result)
    result["mnist"]["reference"] = result["mnist"]["reference"][0]
    for side in ("reference", "zoo"):
        result["fashion_mnist"][side] = result["fashion_mnist"][side][0]
    return result


def lines_starting(prefix: str, result: dict) -> list[str]:
    return [line for line in training_section(result, None) if line.startswith(prefix)]


def test_results_without_a_quick_recipe_judge_the_main_one():
    result = train_result()
    result["mnist"].pop("zoo_quick")  # as in results measured before it existed
    lines = training_section(result, pipeline=None)
    assert not any("mnist_fastnet_quick" in line for line in lines)
    (target,) = lines_starting("| MNIST 99.2 %", result)
    assert "(median of 3 seeds)" in target


def test_the_quick_recipe_has_its_rows_and_the_99_2_target():
    result = train_result()
    targets = result["mnist"]["targets"]
    lines = training_section(result, pipeline=None)
    assert sum("zoo `mnist_fastnet_quick`, seed" in line for line in lines) == 3
    (target,) = lines_starting("| MNIST 99.2 %", result)
    # Quick: 40 s against the reference's 20 x 14 = 280 s to 99.2 %; main: 70 s.
    assert targets["wall_time_to_99.2_ratio"] == 40.0 / 280.0
    assert "0.14 of it (`mnist_fastnet_quick`; `mnist_fastnet`: 0.25;" in target
    assert target.endswith("| yes |")


def test_each_reference_run_has_its_row_and_the_target_names_their_median():
    result = train_result()
    references = lines_starting("| keras-io reference", result)
    assert [row.split(" (")[0] for row in references] == [
        "| keras-io reference, 15 epochs, run 1",
        "| keras-io reference, 15 epochs, run 2",
    ]
    (target,) = lines_starting("| … within 1/3", result)
    assert "(median of its 2 runs, before and after the zoo's: 303 s)" in target
    assert "| 0.34 of it | **no** |" in target  # 103 s of the zoo's against 303 s
    (target,) = lines_starting("| Fashion-MNIST", result)
    assert "(median of its 2 runs, before and after the zoo's: 303 s; " in target
    assert "the reference ends at 91.00 / 91.00 %)" in target
    (target,) = lines_starting("| keras-io architecture", result)
    assert "| 2.00× (4,000 examples/s, median of 2 runs) | yes |" in target


def _fashion_target(result: dict) -> str:
    (target,) = lines_starting("| Fashion-MNIST", result)
    return target


def test_fashion_target_says_when_the_best_epoch_within_the_reference_ended():
    zoo = [run([(150.0, 0.90), (280.0, 0.915), (330.0, 0.925)], seed=0)]
    result = single_runs(train_result(fashion_zoo=zoo))
    target = _fashion_target(result)
    assert "| 91.50 % (after 280 s; its 3 epochs end at 92.50 % after 333 s) | **no** |" in target


def test_fashion_target_of_a_run_that_ended_within_the_reference():
    zoo = [run([(150.0, 0.90), (290.0, 0.936)], seed=0)]
    result = single_runs(train_result(fashion_zoo=zoo))
    assert _fashion_target(result).endswith("| 93.60 % (after 290 s) | yes |")


def test_fashion_target_where_no_epoch_ended_within_the_reference():
    zoo = [run([(310.0, 0.90)], seed=0)]
    result = single_runs(train_result(fashion_zoo=zoo))
    assert _fashion_target(result).endswith("| no epoch ended within it | **no** |")


def test_fashion_target_over_seeds_gives_their_median_and_each_seed():
    zoo = [
        run([(150.0, 0.90), (280.0, 0.921), (330.0, 0.925)], seed=0),
        run([(150.0, 0.90), (290.0, 0.925)], seed=1),
    ]
    target = _fashion_target(train_result(fashion_zoo=zoo))
    assert target.endswith(
        "| 92.30 %, median of 2 seeds; seed 0: 92.10 % (after 280 s; its 3 epochs end at "
        "92.50 % after 333 s); seed 1: 92.50 % (after 290 s) | **no** |"
    )


def test_fashion_target_over_seeds_where_one_had_no_epoch_within():
    zoo = [run([(150.0, 0.90), (290.0, 0.94)], seed=0), run([(320.0, 0.94)], seed=1)]
    target = _fashion_target(train_result(fashion_zoo=zoo))
    assert target.endswith(
        "| –, median of 2 seeds; seed 0: 94.00 % (after 290 s); "
        "seed 1: no epoch ended within it | **no** |"
    )


def test_dates_name_each_benchmark_where_they_differ():
    def dated(day):
        return {"machine": {"date": f"{day} 10:00:00 UTC"}}

    same = {"train": dated("2026-11-30"), "serve": dated("2026-11-30")}
    assert _dates(same) == "2026-11-30"
    mixed = {
        "train": dated("2026-11-30"),
        "serve": dated("2026-11-29"),
        "pipeline": dated("2026-11-29"),
    }
    assert _dates(mixed) == "2026-11-29 (`pipeline`, `serve`), 2026-11-30 (`train`)"


def test_smoke_runs_stay_out_of_the_readme(tmp_path, monkeypatch):
    for name in ("train-amd-avx2", "train_quick-amd-avx2", "serve"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"name": name}))
    monkeypatch.setattr(readme_table, "RESULTS", tmp_path)
    assert results_by_kind() == {
        "amd-avx2": {"train": {"name": "train-amd-avx2"}},
        "intel-amx": {"serve": {"name": "serve"}},
    }


def test_the_gpu_recipe_has_its_own_part_with_a_row_per_run(tmp_path, monkeypatch):
    def gpu_run(precision, first, later):
        epochs = [first, later, later]
        points = [{"epoch": n, "epoch_seconds": s} for n, s in enumerate(epochs, 1)]
        return {"precision": precision, "seed": 0, "points": points, "examples": 50000,
                "steady_examples_per_second": 50000 / later, "train_seconds": sum(epochs),
                "wall_seconds": sum(epochs) + 9.0, "final_accuracy": 0.9412}  # fmt: skip

    result = {
        "machine": {
            "kind": "nvidia-h200",
            "accelerator": "NVIDIA H200",
            "cpu": "Intel Xeon",
            "cores": 16,
            "date": "2026-11-30 17:40:00 UTC",
            "keras": "3.15.1",
            "jax": "0.11.2",
        },
        "config": "configs/cifar10_airnet.yaml",
        "data": "cifar10",
        "clock": "wall seconds from process start",
        "runs": [gpu_run("mixed_bfloat16", 25.0, 0.25), gpu_run("float32", 10.0, 0.5)],
    }
    (tmp_path / "train_accelerator-nvidia-h200.json").write_text(json.dumps(result))
    monkeypatch.setattr(readme_table, "RESULTS", tmp_path)
    text = readme_table.render()
    assert text.startswith("### nvidia-h200: NVIDIA H200, host Intel Xeon, 16 cores")
    assert "3 epochs of 50,000 images), Keras 3.15.1 on JAX 0.11.2; data: cifar10" in text
    assert "| mixed_bfloat16 | 0 | 25.0 s | 0.25 s | 200,000 | 25.5 s | 34.5 s | 94.12% |" in text
    assert "| float32 | 0 | 10.0 s | 0.50 s | 100,000 | 11.0 s | 20.0 s | 94.12% |" in text
    assert "TensorFlow" not in text  # no CPU part for a kind that ran only the GPU recipe


def cifar_result() -> dict:
    def quick(seed, accuracy, wall):
        return {"config": "cifar10_airnet_quick", "seed": seed, "test_accuracy": accuracy,
                "wall_seconds": wall, "test_ece_before": 0.15, "test_ece_after": 0.012}  # fmt: skip

    return {
        "machine": {
            "cpu": "Intel Xeon",
            "cores": 2,
            "date": "2026-12-05 10:00:00 UTC",
            "tensorflow": "2.21.0",
        },
        "data": "CIFAR-10 (JPEG q75 copy)",
        "reference": {
            "seconds": 900,
            "wall_seconds": 905.0,
            "points": [{"test_accuracy": 0.78, "wall_seconds": 905.0}],
        },
        "quick": {
            "runs": [quick(0, 0.905, 800.0), quick(1, 0.899, 810.0), quick(2, 0.902, 790.0)],
            "targets": {
                "median_test_accuracy": 0.902,
                "median_wall_seconds": 800.0,
                "accuracy_met": True,
                "reference_accuracy_at_budget": 0.78,
                "share_of_reference_time": 0.21,
                "reference_met": True,
                "median_test_ece_before": 0.15,
                "median_test_ece_after": 0.012,
                "ece_met": True,
            },
        },
    }


def test_cifar_results_render_their_runs_and_the_headline(tmp_path, monkeypatch):
    (tmp_path / "cifar-intel-amx.json").write_text(json.dumps(cifar_result()))
    monkeypatch.setattr(readme_table, "RESULTS", tmp_path)
    text = readme_table.render()
    assert "| Keras ResNet-20 v1 example, stopped at 15 min | 78.00% | 905 | – |" in text
    assert "| zoo `cifar10_airnet_quick`, seed 1 | 89.90% | 810 | 15.00% → 1.20% |" in text
    assert "quick recipe ≥ 90.0 % in ≤ 15 min (median of 3) | 90.20% in 800 s | yes |" in text
    headline = readme_table.render_headline()
    assert headline.startswith("**intel-amx** (Intel Xeon, 2 cores):")
    assert "(78.00%) in ≤ 1/4 of its time | 0.21 of it | yes |" in headline
    assert "CIFAR-10 (JPEG q75 copy)" in headline, "every CIFAR figure carries the JPEG label"


def test_main_writes_the_full_tables_and_the_headline_between_their_markers(tmp_path, monkeypatch):
    (tmp_path / "cifar-intel-amx.json").write_text(json.dumps(cifar_result()))
    readme, results_readme = tmp_path / "README.md", tmp_path / "results.md"
    readme.write_text("intro\n<!-- headline:start -->\nold\n<!-- headline:end -->\nrest\n"
                      "<!-- models:start -->\nold\n<!-- models:end -->\n")  # fmt: skip
    results_readme.write_text("top\n<!-- bench:start -->\nold\n<!-- bench:end -->\nend\n")
    monkeypatch.setattr(readme_table, "RESULTS", tmp_path)
    monkeypatch.setattr(readme_table, "README", readme)
    monkeypatch.setattr(readme_table, "RESULTS_README", results_readme)
    readme_table.main()
    assert "old" not in readme.read_text() and "rest" in readme.read_text()
    assert "| target | measured | met |" in readme.read_text()
    assert "| checkpoint | data | test (calibrated) |" in readme.read_text()  # from the cards
    assert "### intel-amx" in results_readme.read_text() and "end" in results_readme.read_text()


def test_the_readmes_models_table_is_the_one_the_cards_render():
    from bench.models_table import MODELS_END, MODELS_START, render_models_table

    readme = readme_table.README.read_text()
    shown = readme[readme.index(MODELS_START) + len(MODELS_START) : readme.index(MODELS_END)]
    assert shown.strip() == render_models_table().strip(), "run: python -m bench.readme_table"
    assert "CIFAR-10 (JPEG q75 copy)" in shown
