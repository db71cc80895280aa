"""``zoo datasets``: the datasets with sizes, shapes, class names and where each loads from."""

import json

from zoo.commands.help import add_command

REQUIRES = ("training",)  # packages this command runs on

EXAMPLES = """
  zoo datasets                          # table of all datasets
  zoo datasets --data-dir ~/data        # where each would load from with local copies
  zoo datasets --json                   # machine-readable
"""


def add_parser(subparsers):
    """The command's entry in ``zoo --help``."""
    return add_command(
        subparsers, "datasets", "List the datasets and their sources.", EXAMPLES, run
    )


def add_arguments(parser) -> None:
    parser.add_argument("--data-dir", help="folder with local copies (default: $ZOO_DATA_DIR)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    from training.datasets import CATALOG, sources

    rows = []
    for info in CATALOG.values():
        source = sources.describe(info.base or info.name, args.data_dir)
        if info.base:
            source = f"generated from {info.base} ({source})"
        rows.append({**info.to_json(), "description": info.description, "source": source})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        sizes = " / ".join(f"{n} {split}" for split, n in row["split_sizes"].items())
        shape = "x".join(str(d) for d in row["input_shape"])
        names = ", ".join(row["class_names"][:10]) + (
            ", ..." if len(row["class_names"]) > 10 else ""
        )
        print(f"{row['name']:<20} {row['task']:<11} {shape:<9} {sizes}")
        print(f"    {row['description']}")
        print(f"    classes ({len(row['class_names'])}): {names}")
        print(f"    source: {row['source']}")
    return 0
