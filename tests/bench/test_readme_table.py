"""The README's benchmark tables: the recipe each MNIST target was measured on, when the
Fashion-MNIST run reached its accuracy within the reference's time, and the day of each result."""

import copy
import json

from bench.readme_table import _dates, training_section
from bench.report import RESULTS

RESULT = json.loads((RESULTS / "train-amd-avx2.json").read_text())


def test_results_without_a_quick_recipe_judge_the_main_one():
    result = copy.deepcopy(RESULT)
    result["mnist"].pop("zoo_quick", None)  # as in results measured before it existed
    lines = training_section(result, pipeline=None)
    assert not any("mnist_fastnet_quick" in line for line in lines)
    (target,) = [line for line in lines if line.startswith("| MNIST 99.2 %")]
    assert "(median of 3 seeds)" in target


def test_the_quick_recipe_has_its_rows_and_the_99_2_target():
    result = copy.deepcopy(RESULT)
    mnist = result["mnist"]
    mnist["zoo_quick"] = copy.deepcopy(mnist["zoo"])
    main_ratio = mnist["targets"]["wall_time_to_99.2_ratio"]
    mnist["targets"]["main_config_wall_time_to_99.2_ratio"] = main_ratio
    mnist["targets"]["wall_time_to_99.2_ratio"] = 0.2
    lines = training_section(result, pipeline=None)
    assert sum("zoo `mnist_fastnet_quick`, seed" in line for line in lines) == 3
    (target,) = [line for line in lines if line.startswith("| MNIST 99.2 %")]
    assert f"0.20 of it (`mnist_fastnet_quick`; `mnist_fastnet`: {main_ratio:.2f};" in target
    assert target.endswith("| yes |")


def _fashion_target(result: dict) -> str:
    (target,) = [
        line for line in training_section(result, pipeline=None) if "Fashion-MNIST" in line
    ]
    return target


def _fashion_points(accuracies_and_walls):
    return [
        {"epoch": i + 1, "test_accuracy": a, "wall_seconds": w, "seconds": w - 8}
        for i, (a, w) in enumerate(accuracies_and_walls)
    ]


def test_fashion_target_says_when_the_best_epoch_within_the_reference_ended():
    result = copy.deepcopy(RESULT)
    fashion = result["fashion_mnist"]
    fashion["reference"]["wall_seconds"] = 300.0
    fashion["zoo"].update(
        points=_fashion_points([(0.90, 150.0), (0.915, 280.0), (0.925, 330.0)]),
        final_accuracy=0.925,
        wall_seconds=333.0,
    )
    fashion["targets"]["zoo_accuracy_within_reference_wall"] = 0.915
    target = _fashion_target(result)
    assert "| 91.50 % (after 280 s; its 3 epochs end at 92.50 % after 333 s) | **no** |" in target


def test_fashion_target_of_a_run_that_ended_within_the_reference():
    result = copy.deepcopy(RESULT)
    fashion = result["fashion_mnist"]
    fashion["zoo"].update(points=_fashion_points([(0.90, 150.0), (0.936, 290.0)]))
    fashion["targets"]["zoo_accuracy_within_reference_wall"] = 0.936
    assert _fashion_target(result).endswith("| 93.60 % (after 290 s) | yes |")


def test_fashion_target_where_no_epoch_ended_within_the_reference():
    result = copy.deepcopy(RESULT)
    result["fashion_mnist"]["targets"]["zoo_accuracy_within_reference_wall"] = None
    assert _fashion_target(result).endswith("| no epoch ended within it | **no** |")


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
