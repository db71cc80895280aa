"""The ``zoo`` command line: help with examples for every subcommand, and ``zoo datasets``."""

import json

import pytest

from zoo import cli
from zoo.commands import COMMANDS


@pytest.mark.parametrize("command", [c.__name__.rsplit(".", 1)[1] for c in COMMANDS])
def test_every_subcommand_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_datasets_lists_all_six(capsys):
    assert cli.main(["datasets", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {
        "mnist",
        "fashion_mnist",
        "cifar10",
        "cifar100",
        "mnist_multilabel",
        "cifar10_multilabel",
    }
    assert rows["mnist"]["source"].startswith("embedded")
    assert (
        rows["cifar100"]["input_shape"] == [32, 32, 3]
        and len(rows["cifar100"]["class_names"]) == 100
    )
    assert rows["mnist_multilabel"]["task"] == "multilabel"


def test_user_errors_exit_2_with_one_line(capsys, monkeypatch, tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"not a zip")
    from training import datasets

    datasets._base_arrays.cache_clear()
    with pytest.raises(Exception, match="mnist.npz"):
        datasets.load_arrays("mnist", "train", data_dir=tmp_path)


def test_models_lists_architectures_with_parameter_counts(capsys):
    assert cli.main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert len(rows) >= 5
    assert rows["mnist_cnn"]["parameters"] == 34_826
    assert "cifar10" in rows["resnet20"]["suits"]


def test_serve_flags_build_the_settings():
    from zoo.commands import serve

    args = cli.build_parser().parse_args(
        [
            "serve",
            "--port",
            "9000",
            "--no-batching",
            "--max-batch-size",
            "8",
            "--grace-seconds",
            "2",
        ]
    )
    settings = serve.settings_from_args(args)
    assert settings.port == 9000 and settings.grace_seconds == 2.0
    assert settings.batching.enabled is False and settings.batching.max_batch_size == 8
    assert settings.model_repo == "model_repo" and settings.metrics_port == 8502
    defaults = serve.settings_from_args(cli.build_parser().parse_args(["serve"]))
    assert defaults.batching.enabled is True and defaults.port == 8500


def test_train_flags_override_only_what_is_given():
    args = cli.build_parser().parse_args(["train", "--epochs", "3", "--no-deterministic"])
    from zoo.commands.help import given_values

    assert given_values(args, ["epochs", "deterministic", "lr"]) == {
        "epochs": 3,
        "deterministic": False,
    }
