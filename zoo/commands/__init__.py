"""The ``zoo`` subcommands, in the order ``zoo --help`` lists them.

A command is offered when the packages it runs on are installed: the server's container holds
``core``, ``serving`` and ``zoo`` only, so there ``zoo`` offers ``serve`` and ``predict``.
"""

import importlib.util

from zoo.commands import bench, datasets, export, models, predict, serve, train

ALL_COMMANDS = [datasets, models, train, export, serve, predict, bench]


def _installed(module) -> bool:
    return all(importlib.util.find_spec(package) for package in module.REQUIRES)


COMMANDS = [command for command in ALL_COMMANDS if _installed(command)]
