"""``zoo models``: the registered architectures with parameter counts and the datasets they suit."""

import json

from zoo.commands.help import add_command

REQUIRES = ("models",)  # packages this command runs on

EXAMPLES = """
  zoo models                 # every architecture
  zoo models 'resnet*'       # those matching a pattern
  zoo models --json
"""


def add_parser(subparsers):
    """The command's entry in ``zoo --help``."""
    return add_command(subparsers, "models", "List the model architectures.", EXAMPLES, run)


def add_arguments(parser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    from zoo.startup import start_tensorflow

    start_tensorflow()
    import models

    rows = []
    for name in models.list_models(args.pattern):
        entry = models.get_entry(name)
        params = models.create_model(name, num_classes=10).count_params()
        rows.append(
            {
                "name": name,
                "parameters": params,
                "default_input": list(entry.default_input_shape),
                "suits": list(entry.suits),
                "heads": list(models.HEADS),
                "description": entry.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<16} {'params (10 cls)':>15}  {'input':<9} suits")
    for row in rows:
        shape = "x".join(str(d) for d in row["default_input"])
        print(f"{row['name']:<16} {row['parameters']:>15,}  {shape:<9} {', '.join(row['suits'])}")
        print(f"    {row['description']}")
    print(f"heads: {', '.join(models.HEADS)} (see docs/losses.md)")
    return 0
