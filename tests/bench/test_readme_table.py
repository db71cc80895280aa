"""The README's training table names the recipe each MNIST target was measured on."""

import copy
import json

from bench.readme_table import training_section
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
