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

    import yaml

    value = yaml.safe_load(text)
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

    prefer_onednn_kernels()  # before TensorFlow's import below
    from training.config import TrainConfig, build_config, load_yaml
    from training.loop import train
    from training.run_dir import RunDir

    overrides = given_values(args, list(TrainConfig.model_fields))
    if args.resume:
        run_dir = RunDir.open(args.resume)
        config = build_config(load_yaml(run_dir.config_path))
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
        print(f"Run directory: {run_dir.path}")
        print(f"TensorBoard:   tensorboard --logdir {run_dir.logs}")
    return 0
