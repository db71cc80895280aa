"""``zoo train``: train a model from a YAML config and flags (``training.config.TrainConfig``)."""

from zoo.commands.help import add_command, add_settings_flags, given_values

REQUIRES = ("training", "models")  # packages this command runs on

EXAMPLES = """
  zoo train --config configs/mnist_fastnet.yaml                # a shipped config
  zoo train --model mnist_cnn --dataset fashion_mnist --epochs 3 --head logits
  zoo train --config configs/mnist_multilabel_sigmoid.yaml --batch-size 256 --lr 3e-3
  zoo train --resume runs/mnist-mnist_cnn-softmax/20261128-101500   # continue a killed run
  TF_CONFIG=... zoo train --config configs/mnist_cnn.yaml --strategy multiworker
"""


def _parse_mapping(text: str) -> dict:
    import argparse

    from core import yaml_text

    try:
        value = yaml_text.load(text)
    except yaml_text.YamlError as error:
        raise argparse.ArgumentTypeError(f"not YAML ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"expected a YAML mapping such as '{{dropout: 0.3}}', got {text!r}"
        )
    return value


def add_parser(subparsers):
    """The command's entry in ``zoo --help``."""
    return add_command(
        subparsers, "train", "Train a model from a YAML config and flags.", EXAMPLES, run
    )


def add_arguments(parser) -> None:
    """``--config``, ``--resume``, ``--quiet`` and one flag per config field."""
    from training.config import TrainConfig

    parser.add_argument("--config", help="YAML config file (flags override its keys)")
    parser.add_argument(
        "--resume", metavar="RUN_DIR", help="continue a run from its newest checkpoint"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output (for CI)")
    fields = parser.add_argument_group("config keys (also valid in the YAML file)")
    add_settings_flags(fields, TrainConfig, parsers={dict: _parse_mapping})


def run(args) -> int:
    import sys

    from core.cpu import prefer_onednn_kernels
    from zoo.startup import start_tensorflow

    prefer_onednn_kernels()  # before TensorFlow's import below
    start_tensorflow()
    from core.errors import ConfigError
    from training.config import TrainConfig, build_config, load_yaml
    from training.loop import train
    from training.run_dir import RunDir

    overrides = given_values(args, list(TrainConfig.model_fields))
    if args.resume:
        run_dir = RunDir.open(args.resume)
        config = build_config(load_yaml(run_dir.config_path))
        state = run_dir.read_state()
        if state.get("status") == "completed":
            raise ConfigError(
                f"Run {str(run_dir.path)!r} finished its {state.get('epochs_done')} epochs; there "
                "is nothing to resume, and its model and metrics stay as they are. To train "
                f"longer, start a new run: zoo train --config {run_dir.config_path} --epochs N"
            )
        if overrides or args.config:
            print(
                "zoo train: --resume continues with the run's own config.yaml; other flags are "
                "ignored.",
                file=sys.stderr,
            )
    else:
        run_dir = None
        config = build_config(load_yaml(args.config) if args.config else {}, overrides)
    verbose = 0 if args.quiet else (1 if sys.stdout.isatty() else 2)
    run_dir = train(config, resume=run_dir, verbose=verbose)
    if not args.quiet:
        import json

        from training.calibration import at_search_bound

        metrics = json.loads(run_dir.metrics_path.read_text())
        print(test_line(metrics))
        print(calibration_line(metrics, config, at_search_bound))
        print(f"Run directory: {run_dir.path}")
        print(f"TensorBoard:   tensorboard --logdir {run_dir.logs}")
    return 0


def test_line(metrics: dict) -> str:
    """The final test figures: accuracy (multiclass) or mAP, F1 and exact match (multilabel)."""
    test, examples = metrics["test"], metrics["test"]["examples"]
    if "accuracy" in test:
        top = next((f" (top-{k[3:-9]} {test[k]:.2%})" for k in test if k.endswith("_accuracy")), "")
        return f"Test accuracy: {test['accuracy']:.2%}{top}, {examples:,} images"
    return (f"Test: mAP {test['mAP']:.4f}, micro-F1 {test['micro_f1']:.4f}, exact match "
            f"{test['exact_match']:.2%}, {examples:,} images")  # fmt: skip


def calibration_line(metrics: dict, config, at_search_bound) -> str:
    """The temperature and the test ECE before and after it, or why there is none."""
    calibration = metrics.get("calibration")
    if not config.calibrate:
        return "Calibration:   off (calibrate: false); the export serves uncalibrated probabilities"
    if calibration is None:
        return ("Calibration:   none, no validation split to fit a temperature on (set "
                "validation_split, e.g. --validation-split 0.05); the export serves T = 1")  # fmt: skip
    temperature = calibration["temperature"]
    shown = f"{temperature:.3f}" if isinstance(temperature, float) else "one per class"
    before, after = calibration["test"]["before"], calibration["test"]["after"]
    line = (f"Calibration:   temperature {shown} on {calibration['validation']['examples']:,} "
            f"validation examples; test ECE {before['ece']:.2%} -> {after['ece']:.2%}, "
            f"NLL {before['nll']:.4f} -> {after['nll']:.4f}")  # fmt: skip
    if at_search_bound(temperature):
        line += ("\nWarning: the temperature reached its search bound: the validation logits "
                 "carry no usable confidence (constant, or every decision wrong).")  # fmt: skip
    return line
