"""The ``zoo`` command line: one subcommand per module in ``zoo.commands``.

Each command module offers ``add_parser(subparsers)`` and ``run(args) -> int``; heavy imports
(TensorFlow) happen inside ``run`` so that ``zoo --help`` answers at once.
"""

import argparse
import os
import sys

from core import __version__
from core.errors import ZooError
from zoo.commands import COMMANDS

USAGE_ERROR = 2


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ start-up chatter unless the user asked for it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo",
        description="Keras 3 / TensorFlow model zoo: datasets, models, training, export, serving.",
        epilog="Run 'zoo COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"zoo {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except ZooError as error:
        print(f"zoo {args.command}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
