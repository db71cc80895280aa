"""Shared argparse helpers: subcommands with examples, and one flag per settings field."""

import argparse
import dataclasses
import re
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


def field_docs(cls) -> dict[str, str]:
    """Each field's description, from the ``Args:`` section of a dataclass' docstring."""
    names = {f.name for f in dataclasses.fields(cls)}
    docs, current = {}, None
    for line in (cls.__doc__ or "").splitlines():
        match = re.match(r"^\s{8}(\w+): (.*)$", line)
        if match and match.group(1) in names:
            current = match.group(1)
            docs[current] = match.group(2)
        elif current and line.startswith(" " * 12):
            docs[current] += " " + line.strip()
    return docs


def add_dataclass_flags(parser, cls, *, skip=(), parsers=None) -> list[str]:
    """Adds ``--field-name`` for every field of ``cls`` (booleans get ``--no-field-name`` too),
    with the docstring's description and the field's default as help, and None as the parsed
    default, so only the flags a user gives override anything. Returns the field names added."""
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    added = []
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        text = f"{docs.get(field.name, '')} (default: {default!r})".strip()
        if kind is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            parse = (parsers or {}).get(kind, kind)
            parser.add_argument(flag, type=parse, default=None, help=text)
        added.append(field.name)
    return added


def add_settings_flags(parser, cls, *, skip=()) -> list[str]:
    """Adds a flag for every field of the pydantic model ``cls`` (``--field-name``, or the
    field's ``json_schema_extra["flag"]``), typed and described by its declaration, with None as
    the parsed default, so that only the flags a user gives override the environment or the
    defaults. Returns the field names added."""
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
        else:
            parser.add_argument(flag, dest=name, type=field.annotation, default=None, help=text)
        added.append(name)
    return added


def given_values(args: argparse.Namespace, names: list[str]) -> dict:
    """The flags among ``names`` the user actually gave."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}
