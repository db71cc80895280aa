"""Temperature scaling: the fit recovers a known temperature, improves calibration, and a
calibrated run exports and serves calibrated probabilities with their logarithm."""

import json

import numpy as np
import pytest
import tensorflow as tf
from helpers import event_tags

from core.artifact import read_metadata
from training import calibration, datasets
from training.config import build_config
from training.export import export_run
from training.loop import train

RNG = np.random.default_rng(3)


def sampled_multiclass(n=4000, k=10, temperature=2.5):
    """Logits and labels drawn from softmax(z / temperature): the right temperature is known."""
    z = RNG.normal(size=(n, k)) * 3
    p = calibration.probabilities(z / temperature, "multiclass")
    labels = (p.cumsum(axis=1) > RNG.random((n, 1))).argmax(axis=1)
    return z, labels


def test_fit_recovers_a_known_temperature_and_lowers_nll_and_ece():
    z, labels = sampled_multiclass(temperature=2.5)
    temperature = calibration.fit_temperature(z, labels, "multiclass")
    assert temperature == pytest.approx(2.5, rel=0.08)
    before = calibration.calibration_metrics(z, labels, "multiclass")
    after = calibration.calibration_metrics(z / temperature, labels, "multiclass")
    assert after["nll"] < before["nll"] and after["ece"] < before["ece"] / 3
    assert after["brier"] < before["brier"]


def test_fitted_temperature_minimises_the_nll():
    z, labels = sampled_multiclass(temperature=0.7)
    best = calibration.fit_temperature(z, labels, "multiclass")
    nll = lambda t: calibration.multiclass_nll(z / t, labels)  # noqa: E731
    assert nll(best) <= min(nll(best * 0.98), nll(best * 1.02))


def test_multilabel_gets_one_temperature_per_class():
    temperatures = np.array([0.5, 1.0, 3.0])
    z = RNG.normal(size=(6000, 3)) * 4
    targets = (RNG.random(z.shape) < calibration.probabilities(z / temperatures, "x")).astype(float)
    fitted = calibration.fit_temperature(z, targets, "multilabel")
    np.testing.assert_allclose(fitted, temperatures, rtol=0.12)


def test_metrics_of_a_perfectly_calibrated_and_a_confident_wrong_model():
    labels = np.array([0, 1, 0, 1])
    confident_wrong = np.array([[-20.0, 20.0], [20.0, -20.0]] * 2)
    report = calibration.calibration_metrics(confident_wrong, labels, "multiclass")
    assert report["ece"] == pytest.approx(1.0) and report["brier"] == pytest.approx(2.0)
    assert report["nll"] == pytest.approx(40.0, rel=1e-6)
    uninformed = np.zeros((4, 2))  # 50 % confidence, 50 % right (ties go to class 0)
    assert calibration.calibration_metrics(uninformed, labels, "multiclass")["ece"] == 0.0


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrated")
    config = build_config(
        {"model": "mlp", "head": "logits", "epochs": 1, "train_limit": 400, "test_limit": 64,
         "batch_size": 64, "validation_split": 0.25, "runs_root": str(root / "runs"),
         "histogram_freq": 0, "sample_images": 0}
    )  # fmt: skip
    return train(config, verbose=0), root


def test_calibrated_run_reports_before_and_after(calibrated_run):
    run, _ = calibrated_run
    report = json.loads(run.metrics_path.read_text())["calibration"]
    assert report["method"] == "temperature scaling" and report["temperature"] > 0
    assert report["validation"]["examples"] == 100
    assert report["test"]["examples"] == 64
    for split in ("validation", "test"):
        assert (
            set(report[split]["before"]) == set(report[split]["after"]) == {"nll", "brier", "ece"}
        )
    # Fitted on the validation split, the NLL there can only go down.
    assert report["validation"]["after"]["nll"] <= report["validation"]["before"]["nll"] + 1e-12
    assert sum(report["reliability"]["after"]["count"]) == 64
    assert ("calibration/reliability_diagram", "images") in event_tags(run.logs)["."]


def test_export_serves_calibrated_probabilities_and_log_probabilities(calibrated_run):
    run, root = calibrated_run
    temperature = json.loads(run.metrics_path.read_text())["calibration"]["temperature"]
    path = export_run(run.path, name="mnist", repo=root / "repo")
    metadata = read_metadata(path)
    assert metadata.format_version == 2
    assert metadata.calibration.temperature == temperature
    assert "log_probabilities" in metadata.signatures["serving_default"].outputs
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    images, _ = datasets.load_arrays("mnist", "test", limit=16)
    result = serving(images=tf.constant(images))
    logits = result["logits"].numpy().astype(np.float64)
    expected = calibration.probabilities(logits / temperature, "multiclass")
    np.testing.assert_allclose(result["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        result["log_probabilities"].numpy(), np.log(np.maximum(expected, 1e-300)), rtol=1e-5,
        atol=1e-5,
    )  # fmt: skip


def test_log_probabilities_stay_finite_where_probabilities_underflow(tmp_path):
    import models
    from training.export import build_archive

    model = models.create_model("mlp", input_shape=(28, 28, 1), head="logits")
    kernel, bias = model.get_layer("logits").get_weights()
    model.get_layer("logits").set_weights([kernel * 1e4, bias])  # logits in the thousands
    info = datasets.get_info("mnist")
    build_archive(model, models.get_head("logits"), info, 0.5, 1.3).write_out(
        str(tmp_path / "m"), verbose=False
    )
    serving = tf.saved_model.load(str(tmp_path / "m")).signatures["serving_default"]
    images, _ = datasets.load_arrays("mnist", "test", limit=8)
    result = serving(images=tf.constant(images))
    probabilities = result["probabilities"].numpy()
    log_probabilities = result["log_probabilities"].numpy()
    assert (probabilities == 0).any(), "float32 probabilities underflow here"
    assert np.all(np.isfinite(log_probabilities))
    z = result["logits"].numpy().astype(np.float64) / 1.3
    expected = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
    np.testing.assert_allclose(log_probabilities, expected, rtol=1e-5)


def test_ece_uses_15_equal_bins_floored_and_the_top_bin_closed():
    # 0.85, 0.88 and 0.97 fall in bins 12, 13 and 14 of 15 (floor). With 10 bins 0.85 and 0.88
    # would share one, with ceil (the top index clipped) 0.88 and 0.97 would: their gaps would
    # pool (1.46 / 4 and 1.70 / 4) instead of adding up.
    confidence = np.array([0.85, 0.88, 0.97, 0.30])
    correct = np.array([1.0, 0.0, 1.0, 1.0])
    expected = (0.15 + 0.88 + 0.03 + 0.70) / 4
    assert calibration.expected_calibration_error(confidence, correct) == pytest.approx(expected)


def test_multilabel_ece_bins_each_probability_against_its_label():
    # p = 0.2 (label 0), 0.8 (label 1), 0.8 (label 0): bins of p give (0.2 * 1 + 0.3 * 2) / 3;
    # binning max(p, 1 - p) against "decided right" would give 0.8 vs 2/3 right: 0.133.
    logits = np.log(np.array([[0.2 / 0.8, 0.8 / 0.2, 0.8 / 0.2]]))
    labels = np.array([[0.0, 1.0, 0.0]])
    ece = calibration.calibration_metrics(logits, labels, "multilabel")["ece"]
    assert ece == pytest.approx((0.2 + 0.3 * 2) / 3)
