"""``zoo export``: a finished run as a SavedModel version in a TensorFlow Serving repository."""

from zoo.commands.help import add_command

REQUIRES = ("training", "models")  # packages this command runs on

EXAMPLES = """
  zoo export runs/mnist-mnist_fastnet-softmax/20261128-101500 --name mnist --repo model_repo/
  zoo export RUN_DIR --name mnist --version 7          # an explicit version number
"""


def add_parser(subparsers):
    """The command's entry in ``zoo --help``."""
    return add_command(
        subparsers, "export", "Export a run as model_repo/NAME/VERSION (SavedModel).", EXAMPLES, run
    )


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory")
    parser.add_argument(
        "--name",
        help="model name in the repository (default: the dataset, or the image folder's name)",
    )
    parser.add_argument(
        "--repo", default="model_repo", help="repository root (default: model_repo)"
    )
    parser.add_argument("--version", type=int, help="version number (default: next integer)")


def run(args) -> int:
    from pathlib import Path

    from zoo.startup import start_tensorflow

    start_tensorflow()
    from training.config import load_yaml, parse_config
    from training.export import export_run
    from training.run_dir import RunDir

    dataset = parse_config(load_yaml(RunDir.open(args.run_dir).config_path)).dataset
    name = args.name or Path(dataset).name  # an image folder's own name
    path = export_run(args.run_dir, name=name, repo=args.repo, version=args.version)
    print(f"Exported {path}")
    return 0
