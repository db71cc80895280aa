"""``zoo models``: the registered architectures with parameter counts and the datasets they suit,
and the trained checkpoints the zoo ships with their cards' figures (as timm's results tables)."""

import json

from zoo.commands.help import add_command

REQUIRES = ("models",)  # packages this command runs on

EXAMPLES = """
  zoo models                 # every architecture
  zoo models 'resnet*'       # those matching a pattern
  zoo models --json
  zoo models --pretrained    # only the shipped checkpoints: accuracy, ECE, speed
"""


def add_parser(subparsers):
    """The command's entry in ``zoo --help``."""
    return add_command(subparsers, "models", "List the model architectures.", EXAMPLES, run)


def add_arguments(parser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--pretrained", action="store_true", help="only the trained checkpoints the zoo ships"
    )


def pretrained_rows(pattern: str) -> list[dict]:
    """One row per shipped checkpoint of the models matching ``pattern``, from its card."""
    from core.package_init import without_package_init

    with without_package_init("models"):  # the cards are JSON: no Keras needed
        from models.pretrained import get_card, list_pretrained

    rows = []
    for key in list_pretrained(pattern):
        card = get_card(*key.split(":"))
        calibration = card["calibration"]
        rows.append(
            {
                "checkpoint": key,
                "head": card["head"],
                "metric": card["headline"]["metric"],
                "value": card["headline"]["value"],
                "ece": calibration["test"]["after"]["ece"] if calibration else None,
                "parameters": card["parameters"],
                "multiply_adds": card["multiply_adds"],
                "latency_ms_batch_1": card["speed"]["latency_ms_batch_1"],
                "images_per_second_batch_32": card["speed"]["images_per_second_batch_32"],
                "cpu_kind": card["speed"]["cpu_kind"],
                "card": f"models/pretrained/{key.replace(':', '-')}.md",
            }
        )
    return rows


def print_pretrained(rows: list[dict]) -> None:
    print(f"{'checkpoint':<32} {'test':>13} {'ECE':>6} {'params':>7} {'MACs':>7} "
          f"{'ms b=1':>7} {'img/s b=32':>10}  CPU")  # fmt: skip
    for row in rows:
        figure = f"{row['metric'] if row['metric'] != 'accuracy' else ''} {row['value'] * 100:.2f}%"
        ece = "–" if row["ece"] is None else f"{row['ece'] * 100:.2f}%"
        print(
            f"{row['checkpoint']:<32} {figure.strip():>13} {ece:>6} "
            f"{row['parameters'] / 1e6:>6.2f}M {row['multiply_adds'] / 1e6:>6.1f}M "
            f"{row['latency_ms_batch_1']:>7.2f} {row['images_per_second_batch_32']:>10,}  "
            f"{row['cpu_kind']}"
        )
    print("test: top-1 accuracy (mAP for multilabel), calibrated; ECE after calibration. "
          "Serve one: zoo export --pretrained CHECKPOINT --repo model_repo/")  # fmt: skip


def run(args) -> int:
    from core.errors import ZooError
    from core.package_init import without_package_init

    if args.pretrained:
        rows = pretrained_rows(args.pattern)
        if not rows:
            raise ZooError(
                f"No shipped checkpoint matches {args.pattern!r}; "
                "`zoo models --pretrained` lists them all."
            )
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print_pretrained(rows)
        return 0
    with without_package_init("models"):  # listed from the catalogue: no Keras needed
        from models.catalogue import architectures

    rows = architectures(args.pattern)
    if not rows:
        raise ZooError(f"No architecture matches {args.pattern!r}; `zoo models` lists them all.")
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<16} {'params (10 cls)':>15}  {'input':<9} suits")
    for row in rows:
        shape = "x".join(str(d) for d in row["default_input"])
        print(f"{row['name']:<16} {row['parameters']:>15,}  {shape:<9} {', '.join(row['suits'])}")
        print(f"    {row['description']}")
    print(f"heads: {', '.join(rows[0]['heads'])} (see docs/losses.md)")
    checkpoints = pretrained_rows(args.pattern)
    if checkpoints:
        print("\ntrained checkpoints (models/pretrained/, cards beside the weights):")
        print_pretrained(checkpoints)
    return 0
