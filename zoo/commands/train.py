"""``zoo train``: see ``training.train``."""

from training import train as train_script
from zoo.commands.help import add_command


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "train",
        "Train a model from a YAML config and flags.",
        train_script.EXAMPLES,
        train_script.run,
    )
    train_script.add_arguments(parser)
