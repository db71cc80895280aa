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


def test_serve_flags_build_the_settings(tmp_path, monkeypatch):
    from zoo.commands import serve

    monkeypatch.chdir(tmp_path)
    (tmp_path / "model_repo").mkdir()
    args = cli.build_parser().parse_args(
        ["serve", "--port", "9000", "--no-batching", "--max-batch-size", "8",
         "--grace-seconds", "2"]
    )  # fmt: skip
    settings = serve.settings_from_args(args)
    assert settings.port == 9000 and settings.grace_seconds == 2.0
    assert settings.batching.enabled is False and settings.batching.max_batch_size == 8
    assert settings.model_repo == "model_repo" and settings.metrics_port == 8502
    assert settings.metrics_host == "127.0.0.1", "metrics stay on this machine by default"
    defaults = serve.settings_from_args(cli.build_parser().parse_args(["serve"]))
    assert defaults.batching.enabled is True and defaults.port == 8500
    # ZOO_ environment variables fill what no flag gives; flags win.
    monkeypatch.setenv("ZOO_PORT", "9100")
    monkeypatch.setenv("ZOO_POLL_SECONDS", "2.5")
    from_env = serve.settings_from_args(cli.build_parser().parse_args(["serve", "--port", "1"]))
    assert from_env.port == 1 and from_env.poll_seconds == 2.5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--port", "70000"],
            "Invalid setting port=70000: Input should be less than or equal to 65535",
        ),
        (
            ["--poll-seconds", "0"],
            "poll_seconds=0.0: Input should be greater than or equal to 0.05",
        ),
        (["--poll-seconds", "-1"], "poll_seconds=-1.0"),
        (["--poll-seconds", "inf"], "poll_seconds=inf: Input should be a finite number"),
        (["--max-queue-seconds", "nan"], "max_queue_seconds=nan: Input should be a finite number"),
        (["--max-batch-size", "0"], "batching.max_batch_size=0: Input should be greater"),
        (["--tls-client-ca", "ca.pem"], "tls_client_ca (mutual TLS) needs tls_cert and tls_key"),
        (["--tls-cert", "c.pem"], "TLS needs both tls_cert and tls_key"),
        (["--tls-cert", "c.pem", "--tls-key", "k.pem"], "tls_cert 'c.pem' is not a readable file"),
        (["--model-repo", "nowhere"], "model_repo 'nowhere' does not exist"),
        (["--model-repo", "afile"], "model_repo 'afile' is a file"),
        (["--model-config", "nope.yaml"], "model_config 'nope.yaml' is not a file"),
    ],
)
def test_bad_serve_settings_exit_2_in_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model_repo").mkdir()
    (tmp_path / "afile").write_text("x")
    assert cli.main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("option", [["--peer-only"], ["--workers", "2"]])
def test_an_option_of_another_benchmark_is_refused(option, capsys):
    assert cli.main(["bench", "train", *option]) == 2
    err = capsys.readouterr().err
    assert f"{option[0]} is for zoo bench serve, not train." in err and "Traceback" not in err


def test_train_flags_override_only_what_is_given():
    args = cli.build_parser().parse_args(["train", "--epochs", "3", "--no-deterministic"])
    from zoo.commands.help import given_values

    assert given_values(args, ["epochs", "deterministic", "lr"]) == {
        "epochs": 3,
        "deterministic": False,
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "--model", "m", "--dataset", "mnist", "--limit", "0"],
         "--limit: expected an integer >= 1, got '0'"),
        (["predict", "--model", "m", "--top-k", "0", "a.png"], "expected an integer >= 1, got '0'"),
        (["predict", "--model", "m", "--version", "-3", "a.png"],
         "--version: expected an integer >= 0, got '-3'"),
        (["predict", "--model", "m", "--threshold", "7", "a.png"],
         "--threshold: expected a number > 0 and < 1, got '7'"),
        (["predict", "--model", "m", "--threshold", "nan", "a.png"], "got 'nan'"),
        (["predict", "--model", "m", "--wait", "soon", "a.png"],
         "--wait: expected a number >= 0, got 'soon'"),
        (["bench", "serve", "--max-seconds", "0"], "expected a number > 0, got '0'"),
        (["bench", "train", "--seeds", "0"], "--seeds: expected an integer >= 1, got '0'"),
    ],
)  # fmt: skip
def test_numeric_flags_out_of_range_exit_2_naming_the_value(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("name", ["../../elsewhere", "/tmp/abs", "a/b", ".hidden", "x" * 101])
def test_a_run_name_stays_one_folder_inside_the_runs_root(name, capsys, tmp_path):
    code = cli.main(["train", "--name", name, "--runs-root", str(tmp_path / "runs")])
    assert code == 2 and "must be one folder name inside the runs root" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "elsewhere").exists()


def test_models_lists_the_shipped_checkpoints_with_their_cards_figures(capsys):
    import models

    assert cli.main(["models", "--pretrained", "--json"]) == 0
    rows = {row["checkpoint"]: row for row in json.loads(capsys.readouterr().out)}
    assert list(rows) == models.list_pretrained() and rows
    card = models.get_card("resnet20", "cifar10")
    row = rows["resnet20:cifar10"]
    assert row["value"] == card["headline"]["value"] and row["metric"] == "accuracy"
    assert row["ece"] == card["calibration"]["test"]["after"]["ece"]
    assert row["latency_ms_batch_1"] == card["speed"]["latency_ms_batch_1"]
    assert rows["airnet:cifar10_multilabel"]["metric"] == "mAP"
    assert cli.main(["models", "resnet*"]) == 0
    text = capsys.readouterr().out
    assert "resnet56" in text and "resnet20:cifar10" in text and "airnet:cifar10" not in text
