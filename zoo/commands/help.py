"""Shared argparse helpers for the subcommands."""

import argparse


def add_command(subparsers, name: str, summary: str, examples: str, run) -> argparse.ArgumentParser:
    """A subcommand parser whose ``--help`` ends with usage examples."""
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=summary,
        epilog="examples:\n" + examples.strip("\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run)
    return parser
