"""Short runs of every shipped config, their TensorBoard logs, reproducibility and bad input."""

import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import event_tags

from training import datasets
from training.config import HYPERPARAMETERS, ConfigError, build_config, load_yaml
from training.loop import train
from training.run_dir import RunDir
from zoo import cli

CONFIGS = sorted(Path(__file__).resolve().parents[2].glob("configs/*.yaml"))
TINY = {"epochs": 1, "train_limit": 64, "test_limit": 32, "batch_size": 32}


def tiny_config(path, tmp_path, data_dir, **extra):
    return build_config(
        load_yaml(path),
        {**TINY, "runs_root": str(tmp_path / "runs"), "data_dir": str(data_dir), **extra},
    )


@pytest.mark.parametrize("config_path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_short_run_writes_everything(config_path, tmp_path, tiny_data_dir):
    config = tiny_config(config_path, tmp_path, tiny_data_dir)
    run = train(config, verbose=0)
    for path in (run.config_path, run.model_path, run.metrics_path, run.history_path):
        assert path.is_file(), path
    assert run.read_state()["status"] == "completed"
    assert build_config(load_yaml(run.config_path)) == config, "resolved config saved"
    metrics = json.loads(run.metrics_path.read_text())
    assert len(metrics["history"]) == 1
    tags = event_tags(run.logs)
    train_tags = {tag for tag, _ in tags["train"]}
    validation = tags["validation"]
    assert {"epoch_loss", "epoch_learning_rate", "epoch_examples_per_second",
            "epoch_cpu_percent"} <= train_tags  # fmt: skip
    assert metrics["history"][0]["cpu_percent"] > 0
    assert any(tag.endswith("/histogram") for tag in train_tags), "weight histograms"
    assert ("epoch_loss", "scalars") in validation
    assert ("samples", "images") in validation
    root = {tag for tag, plugin in tags["."]}
    assert "_hparams_/session_start_info" in root
    # Every shipped config holds out a validation split and calibrates on it.
    assert config.validation_split > 0 and "temperature" in metrics["calibration"]
    assert ("calibration/reliability_diagram", "images") in tags["."]
    assert {"final/calibration/ece_before", "final/calibration/ece_after"} <= root
    final = tags["test"]  # the whole test split, decided as the export serves
    assert ("final/most_confident_mistakes", "images") in final
    if metrics["dataset"]["task"] == "multiclass":
        assert ("confusion_matrix", "images") in validation
        assert ("final/confusion_matrix", "images") in final
        assert "final/accuracy" in root and 0.0 <= metrics["test"]["accuracy"] <= 1.0
    else:
        pr_curves = {tag for tag, plugin in validation if plugin == "pr_curves"}
        assert len(pr_curves) == 10, "one PR curve per class"
        assert len({tag for tag, plugin in final if plugin == "pr_curves"}) == 10
        assert {"final/exact_match", "final/micro_f1", "final/macro_f1", "final/mAP"} <= root
    assert graph_nodes(run.logs) > 10, "the Graphs tab has the model"
    assert hparams_keys(run.logs) == set(HYPERPARAMETERS), "the recipe, not paths or plumbing"


def root_events(log_dir: Path):
    for path in log_dir.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            yield tf.compat.v1.Event.FromString(record.numpy())


def graph_nodes(log_dir: Path) -> int:
    graphs = [tf.compat.v1.GraphDef.FromString(e.graph_def) for e in root_events(log_dir)
              if e.graph_def]  # fmt: skip
    return max((len(graph.node) for graph in graphs), default=0)


def hparams_keys(log_dir: Path) -> set[str]:
    from tensorboard.plugins.hparams import plugin_data_pb2

    for event in root_events(log_dir):
        for value in event.summary.value:
            if value.tag == "_hparams_/session_start_info":
                content = value.metadata.plugin_data.content
                data = plugin_data_pb2.HParamsPluginData.FromString(content)
                return set(data.session_start_info.hparams)
    return set()


def test_same_seed_reproduces_metrics(tmp_path):
    kwargs = {
        "model": "mnist_cnn",
        "epochs": 2,
        "train_limit": 256,
        "test_limit": 64,
        "batch_size": 32,
        "augmentation": "shift",
        "runs_root": str(tmp_path),
    }
    first = json.loads(train(build_config(kwargs), verbose=0).metrics_path.read_text())
    second = json.loads(train(build_config(kwargs), verbose=0).metrics_path.read_text())
    assert first["test"]["accuracy"] == second["test"]["accuracy"]
    assert [row["loss"] for row in first["history"]] == [row["loss"] for row in second["history"]]


def run_cli(*argv, capsys):
    try:
        code = cli.main(list(argv))
    except SystemExit as exit:  # argparse refuses unknown flags and choices itself
        code = exit.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "vgg"], "Unknown model 'vgg'. Valid choices: airnet"),
        (["--dataset", "imagenet"], "Unknown dataset 'imagenet'. Valid choices: mnist"),
        (["--head", "tanh"], "Unknown head 'tanh'. Valid choices: softmax, logits"),
        (["--dataset", "mnist_multilabel", "--head", "softmax"], "Valid heads for multilabel"),
        (["--dataset", "mnist", "--head", "sigmoid"], "allow_sigmoid_for_multiclass"),
        (["--config", "nope.yaml"], "Config file 'nope.yaml' does not exist"),
        (["--resume", "/nonexistent/run"], "Run directory '/nonexistent/run' does not exist"),
        (["--epochs", "0"], "Invalid setting epochs=0: Input should be greater than or equal to 1"),
        (["--lr", "nan"], "Invalid setting lr=nan: Input should be a finite number"),
        (
            ["--focal", "--focal-gamma", "-1"],
            "focal_gamma=-1.0: Input should be greater than or equal to 0",
        ),
        (
            ["--threshold", "0"],
            "threshold=0.0: Input should be greater than 0",
        ),
        (["--threshold", "1.5"], "threshold=1.5: Input should be less than 1"),
        (
            ["--dataset", "mnist_multilabel", "--head", "sigmoid", "--pos-weight", "lots"],
            "pos_weight='lots': must be 'none', 'auto' or a positive number",
        ),
        (["--pos-weight", "auto"], "pos_weight applies to multilabel datasets"),
        (["--train-limit", "-5"], "train_limit=-5: Input should be greater than or equal to 0"),
        (["--port", "1"], "unrecognized arguments"),
        (
            ["--model-options", "{width: 3}"],
            "model_options {'width': 3} do not fit model 'mnist_cnn'",
        ),
        (["--data-dir", "/nonexistent/data"], "Data folder '/nonexistent/data'"),
        (["--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
        (["--model-options", "{dropout: ["], "argument --model-options: not YAML"),
        (["--weight-decay", "0.01"], "would do nothing: weight_decay applies to adamw and sgd"),
        (["--focal-gamma", "1"], "would do nothing: focal_gamma applies with focal: true"),
        (["--warmup-fraction", "0.1"], "warmup_fraction applies to the onecycle and cosine"),
        (["--threshold", "0.3"], "threshold applies to multilabel decisions; 'mnist' is"),
    ],
)
def test_bad_train_input_exits_2_with_the_choices(argv, message, tmp_path, capsys):
    code, err = run_cli("train", "--runs-root", str(tmp_path / "runs"), *argv, capsys=capsys)
    assert code == 2 and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists(), "nothing half-written"


def test_a_config_file_that_is_not_text_exits_2(tmp_path, capsys):
    config = tmp_path / "binary.yaml"
    config.write_bytes(b"\x89PNG\r\n\x1a\n\xc6\xff")
    code, err = run_cli(
        "train", "--config", str(config), "--runs-root", str(tmp_path / "runs"), capsys=capsys
    )
    assert code == 2 and f"Config file {str(config)!r} is not valid YAML" in err
    assert "Traceback" not in err


def test_unknown_config_key_in_yaml(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("model: mlp\nlearning_rate: 0.1\n")
    code, err = run_cli("train", "--config", str(config), capsys=capsys)
    assert code == 2 and "Unknown config key 'learning_rate'. Valid keys: name, model" in err


def test_foreign_directory_is_not_a_run(tmp_path, capsys):
    (tmp_path / "stuff.txt").write_text("x")
    code, err = run_cli("train", "--resume", str(tmp_path), capsys=capsys)
    assert code == 2 and "is not a zoo run directory" in err
    code, err = run_cli(
        "export", str(tmp_path), "--name", "m", "--repo", str(tmp_path / "repo"), capsys=capsys
    )
    assert code == 2 and "is not a zoo run directory" in err
    assert not (tmp_path / "repo").exists()


def test_dataset_that_cannot_load_leaves_no_run_directory(tmp_path, monkeypatch):
    from training.datasets import sources

    monkeypatch.setattr(sources, "is_online", lambda host, timeout=0: False)
    config = build_config(
        {
            "model": "resnet20",
            "dataset": "cifar10",
            "head": "logits",
            "runs_root": str(tmp_path / "runs"),
            "data_dir": str(tmp_path),
        }
    )
    with pytest.raises(Exception, match="does not hold .cifar10."):
        train(config, verbose=0)
    assert not (tmp_path / "runs").exists()


def test_config_values_are_type_checked():
    with pytest.raises(ConfigError, match="Invalid setting epochs='3': Input should be a valid"):
        build_config({"epochs": "3"})
    assert build_config({"lr": 1}).lr == 1.0


def test_run_dir_open_requires_markers(tmp_path):
    with pytest.raises(Exception, match="not a zoo run directory"):
        RunDir.open(tmp_path)


def test_mirrored_strategy_trains_a_batch_norm_model_with_fit(tmp_path):
    config = build_config({"model": "mnist_fastnet", "strategy": "mirrored", "epochs": 1,
                           "train_limit": 128, "test_limit": 32, "batch_size": 32,
                           "histogram_freq": 0, "runs_root": str(tmp_path)})  # fmt: skip
    run = train(config, verbose=0)
    assert run.read_state()["status"] == "completed"
    assert json.loads(run.metrics_path.read_text())["history"][0]["loss"] > 0


def test_epochs_are_exact_passes_and_every_dataset_runs_without_autotuning(
    tmp_path, tiny_data_dir, monkeypatch
):
    """Every epoch trains on each example once and validates on each once, also when the batches
    per epoch are no multiple of steps_per_execution; and every dataset that fit and predict
    iterate (TensorBoard's per-epoch predictions, calibration, the final report) runs without
    tf.data's autotuning, whose iterators at times took 30 s and more to be destroyed."""
    import keras
    import tensorflow as tf

    fitted, predicted, fit, predict = [], [], keras.Model.fit, keras.Model.predict

    def recording_fit(model, x, **kwargs):
        history = fit(model, x, **kwargs)
        fitted.append((model, x, kwargs, int(model.optimizer.iterations)))
        return history

    def recording_predict(model, x, **kwargs):
        predicted.append(x)
        return predict(model, x, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    monkeypatch.setattr(keras.Model, "predict", recording_predict)
    # float32: on a CPU with avx512_bf16, `auto` would fit probe models first.
    config = tiny_config(CONFIGS[0], tmp_path, tiny_data_dir, epochs=2, batch_size=24,
                         steps_per_execution=8, mixed_precision="off")  # fmt: skip
    run = train(config, verbose=0)
    ((model, train_data, kwargs, iterations),) = fitted
    train_examples = TINY["train_limit"] - math.ceil(TINY["train_limit"] * config.validation_split)
    steps = math.ceil(train_examples / 24)
    assert steps % 8 != 0, "the case where whole executions would overrun the epoch"
    assert iterations == 2 * steps
    last = run.read_history()[-1]
    evaluated = model.evaluate(kwargs["validation_data"], return_dict=True, verbose=0)
    assert last["val_accuracy"] == pytest.approx(evaluated["accuracy"], abs=1e-6)
    assert last["val_loss"] == pytest.approx(evaluated["loss"], rel=1e-5)
    # Two epochs of TensorBoard predictions, then the validation split and the test split.
    assert len(predicted) == 4
    for dataset in [train_data, kwargs["validation_data"], *predicted]:
        assert isinstance(dataset, tf.data.Dataset)
        assert dataset.options().autotune.enabled is False
    assert [row["epoch"] for row in run.read_history()] == [0, 1]


def test_the_whitening_stem_is_fitted_to_the_training_images(tmp_path, tiny_data_dir):
    options = {"stem": "whitening", "widths": [8, 8, 8]}
    config = build_config({"model": "airnet", "dataset": "cifar10", "model_options": options,
                           **TINY, "runs_root": str(tmp_path), "data_dir": str(tiny_data_dir)})  # fmt: skip
    run = train(config, verbose=0)
    stem = keras.saving.load_model(run.model_path).get_layer("whitening")
    images, _ = datasets.load_arrays("cifar10", "train", data_dir=str(tiny_data_dir), limit=64,
                                     seed=config.seed)  # fmt: skip
    outputs = keras.ops.convert_to_numpy(stem(images.astype("float32") / 255))[..., :12]
    outputs = outputs.reshape(-1, 12)
    np.testing.assert_allclose(outputs.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(np.cov(outputs, rowvar=False), np.eye(12), atol=0.05)
