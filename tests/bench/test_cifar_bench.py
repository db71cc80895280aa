"""The CIFAR-10 bench: the Keras ResNet-20 example stopped at its budget, the zoo's recipe runs
with their calibration, and the targets computed from both."""

import pytest
from helpers import write_image_folder

from bench import cifar
from bench.reference_cifar import build_reference_model, learning_rate
from training.datasets.catalog import CIFAR10_CLASSES


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_image_folder(root / "cifar10", classes=CIFAR10_CLASSES[:4], size=(32, 32),
                       counts={"train": 40, "test": 10}, suffix=".jpg")  # fmt: skip
    return root


def test_reference_is_resnet20_v1_with_the_examples_schedule():
    model = build_reference_model()
    assert model.count_params() == 274_442  # the Keras example's ResNet20v1 summary
    assert [learning_rate(e) for e in (0, 80, 81, 121, 161, 181)] == pytest.approx(
        [1e-3, 1e-3, 1e-4, 1e-5, 1e-6, 5e-7]
    )


def test_reference_stops_at_its_budget_mid_epoch(cifar_dir):
    run = cifar.reference_run(str(cifar_dir), seconds=1)
    (point,) = run["points"]
    assert 0 < point["epoch"] <= 1 and 0 <= point["test_accuracy"] <= 1
    assert 0 < point["wall_seconds"] < run["wall_seconds"]


def test_recipe_run_reports_test_accuracy_and_calibration(cifar_dir, tmp_path):
    run = cifar.recipe_run("cifar10_airnet_quick", 0, str(cifar_dir), str(tmp_path), epochs=2,
                           batch_size=32, model_options="{widths: [8, 8, 8]}")  # fmt: skip
    assert len(run["points"]) == 2 and 0 <= run["test_accuracy"] <= 1
    assert run["temperature"] > 0 and 0 <= run["test_ece_after"] <= 1


def test_quick_targets_from_runs_and_reference():
    reference = {"points": [{"test_accuracy": 0.70, "wall_seconds": 900.0}]}

    def run(accuracy, wall, ece, points):
        return {"test_accuracy": accuracy, "wall_seconds": wall, "test_ece_before": 0.1,
                "test_ece_after": ece,
                "points": [{"test_accuracy": a, "wall_seconds": s} for a, s in points]}  # fmt: skip

    runs = [run(0.91, 800, 0.01, [(0.6, 100), (0.75, 200)]),
            run(0.90, 820, 0.02, [(0.72, 150)]),
            run(0.89, 790, 0.012, [(0.5, 100), (0.69, 300)])]  # fmt: skip
    targets = cifar.quick_targets(runs, reference)
    assert targets["median_test_accuracy"] == 0.90 and targets["accuracy_met"]
    assert targets["median_wall_seconds_to_reference_accuracy"] == 200
    assert targets["share_of_reference_time"] == pytest.approx(200 / 900)
    assert targets["reference_met"] and targets["ece_met"]
