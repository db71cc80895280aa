"""The ``zoo`` subcommands, in the order ``zoo --help`` lists them."""

from zoo.commands import bench, datasets, export, models, predict, serve, train

COMMANDS = [datasets, models, train, export, serve, predict, bench]
