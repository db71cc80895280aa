"""Shared argparse helpers: subcommands with examples, and one flag per settings field."""

import argparse
import typing


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


def add_settings_flags(parser, cls, *, skip=(), parsers=None) -> list[str]:
    """Adds a flag for every field of the pydantic model ``cls`` (``--field-name``, or the
    field's ``json_schema_extra["flag"]``), typed and described by its declaration (a Literal
    becomes ``choices``; ``parsers`` maps other types to argparse converters), with None as the
    parsed default, so that only the flags a user gives override a config file, the environment
    or the defaults. Returns the field names added."""
    added = []
    for name, field in cls.model_fields.items():
        if name in skip:
            continue
        extra = field.json_schema_extra or {}
        flag = extra.get("flag", "--" + name.replace("_", "-"))
        default = field.get_default(call_default_factory=True)
        text = f"{field.description or ''} (default: {default!r})".strip()
        if field.annotation is bool:
            parser.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        elif typing.get_origin(field.annotation) is typing.Literal:
            choices = typing.get_args(field.annotation)
            parser.add_argument(flag, dest=name, choices=choices, default=None, help=text)
        else:
            parse = (parsers or {}).get(field.annotation, field.annotation)
            parser.add_argument(flag, dest=name, type=parse, default=None, help=text)
        added.append(name)
    return added


def given_values(args: argparse.Namespace, names: list[str]) -> dict:
    """The flags among ``names`` the user actually gave."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def number_in(convert, low=None, high=None, *, open_interval: bool = False):
    """An argparse ``type``: ``convert`` (int or float), refusing values outside [low, high]
    (``open_interval``: outside (low, high)) with a message that names the value and the range."""
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if open_interval else '>='} {low}")
    if high is not None:
        bounds.append(f"{'<' if open_interval else '<='} {high}")
    expected = f"{'an integer' if convert is int else 'a number'} {' and '.join(bounds)}"

    def inside(value) -> bool:
        if open_interval:
            return (low is None or value > low) and (high is None or value < high)
        return (low is None or value >= low) and (high is None or value <= high)

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or value != value or not inside(value):  # value != value: NaN
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse
