"""The ``zoo`` subcommands, in the order ``zoo --help`` lists them."""

from zoo.commands import datasets, models

COMMANDS = [datasets, models]
