"""``zoo datasets``: the datasets with sizes, shapes, class names and where each loads from."""

import json

from zoo.commands.help import add_command

REQUIRES = ("training",)  # packages this command runs on

EXAMPLES = """
  zoo datasets                          # table of all datasets
  zoo datasets --data-dir ~/data        # where each would load from with local copies
  zoo datasets --json                   # machine-readable
  zoo datasets myimages/                # an image folder: classes, sizes, shape (decodes once)
"""
OWN_IMAGES = (
    "Your own images: zoo train --dataset PATH, PATH holding train/ and test/ (and optionally "
    "validation/)\nwith one subfolder of JPEG or PNG files per class; see docs/datasets.md."
)


def add_parser(subparsers):
    """The command's entry in ``zoo --help``."""
    return add_command(
        subparsers, "datasets", "List the datasets and their sources.", EXAMPLES, run
    )


def add_arguments(parser) -> None:
    parser.add_argument(
        "folder", nargs="?", metavar="PATH", help="describe this image folder instead"
    )
    parser.add_argument("--data-dir", help="folder with local copies (default: $ZOO_DATA_DIR)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _rows(args) -> list[dict]:
    from training.datasets import CATALOG, get_info, image_folder, sources

    if args.folder:
        info = get_info(args.folder)
        source = f"image folder (decoded once, cached in {image_folder.cache_dir()})"
        return [{**info.to_json(), "description": info.description, "source": source}]
    rows = []
    for info in CATALOG.values():
        source = sources.describe(info.base or info.name, args.data_dir)
        if info.base:
            source = f"generated from {info.base} ({source})"
        rows.append({**info.to_json(), "description": info.description, "source": source})
    return rows


def run(args) -> int:
    if args.folder and args.data_dir:
        from core.errors import ConfigError

        raise ConfigError("--data-dir finds catalog datasets; an image folder is read where it is.")
    rows = _rows(args)
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
    if not args.folder:
        print(f"\n{OWN_IMAGES}")
    return 0
