"""The ``zoo`` command line: one subcommand per module in ``zoo.commands``.

Each command module offers ``add_parser(subparsers)`` (its line in ``zoo --help``),
``add_arguments(parser)`` and ``run(args) -> int``. Only the invoked command's arguments are
built, and heavy imports happen inside ``run``: ``zoo --help`` answers at once, and ``zoo serve``
loads the server's settings but not the training config (nor Keras). Errors a user can fix
(``core.errors.ZooError``) and those of the environment (``OSError``: a full disk, a missing
permission) end every command the same way: one line on stderr, exit code 2.
"""

import argparse
import os
import sys

from core import __version__
from core.errors import ZooError
from core.quiet import verbose
from zoo.commands import COMMANDS

USAGE_ERROR = 2


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ log lines unless the user asked for them (``ZOO_VERBOSE=1``): at run
    time it logs notices at error level (oneDNN falling back to Eigen for int32 ops); its real
    errors reach the zoo as exceptions, said in one line."""
    if not verbose():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the command it names gets its arguments (all otherwise)."""
    parser = argparse.ArgumentParser(
        prog="zoo",
        description="Keras 3 / TensorFlow model zoo: datasets, models, training, export, serving.",
        epilog="Run 'zoo COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"zoo {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    invoked = next((word for word in argv if not word.startswith("-")), None) if argv else None
    for command in COMMANDS:
        command_parser = command.add_parser(subparsers)
        if argv is None or command_parser.prog.split()[-1] == invoked:
            command.add_arguments(command_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_tensorflow()
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return args.run(args) or 0
    except ZooError as error:
        print(f"zoo {args.command}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except OSError as error:  # a full disk, a folder without write permission...
        print(f"zoo {args.command}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
