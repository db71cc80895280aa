"""The README's table of trained checkpoints, rendered from their cards (``models/pretrained/``)
by ``python -m bench.readme_table``, between ``<!-- models:start -->`` and ``<!-- models:end -->``;
and the architectures' catalogue that ``zoo models`` reads (``models/catalogue.json``)."""

import json

import models
from models.catalogue import CATALOGUE

MODELS_START, MODELS_END = "<!-- models:start -->", "<!-- models:end -->"
DATASET_LABELS = {
    "mnist": "MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10 (JPEG q75 copy)",
    "mnist_multilabel": "MNIST multilabel",
    "cifar10_multilabel": "CIFAR-10 multilabel (JPEG q75 copy)",
}


def _row(card: dict) -> str:
    key = f"{card['model']}:{card['dataset']}"
    figure = card["headline"]
    metric = "" if figure["metric"] == "accuracy" else f" {figure['metric']}"
    calibration = card["calibration"]
    ece = "–" if not calibration else f"{calibration['test']['after']['ece'] * 100:.2f} %"
    speed = card["speed"]
    cells = [
        f"[`{key}`](models/pretrained/{card['model']}-{card['dataset']}.md)",
        DATASET_LABELS.get(card["dataset"], card["dataset"]),
        f"{figure['value'] * 100:.2f} %{metric}",
        ece,
        f"{card['parameters'] / 1e6:.2f} M",
        f"{card['multiply_adds'] / 1e6:.1f} M",
        f"{speed['latency_ms_batch_1']:.2f} ms",
        f"{speed['images_per_second_batch_32']:,}",
    ]
    return "| " + " | ".join(cells) + " |"


def render_models_table() -> str:
    """One row per shipped checkpoint, and the CPU kinds its speeds were measured on."""
    cards = [models.get_card(*key.split(":")) for key in models.list_pretrained()]
    if not cards:
        return "No trained checkpoints are shipped yet."
    kinds = sorted({card["speed"]["cpu_kind"] for card in cards})
    return "\n".join(
        [
            "| checkpoint | data | test (calibrated) | ECE | params | multiply-adds | "
            "batch 1 | images/s, batch 32 |",
            "|---|---|---|---|---|---|---|---|",
            *map(_row, cards),
            "",
            f"Speed: float32 inference on {', '.join(kinds)} (see each card for its CPU); test "
            "accuracy is top-1 (mAP for multilabel), with the mirror average where the card says "
            "so; ECE after temperature scaling.",
        ]
    )


def catalogue_rows() -> list[dict]:
    """What ``models/catalogue.json`` holds, built from the registry: one row per architecture,
    its parameters counted on a model with 10 classes."""
    rows = []
    for name in models.list_models():
        entry = models.get_entry(name)
        rows.append(
            {
                "name": name,
                "parameters": models.create_model(name, num_classes=10).count_params(),
                "default_input": list(entry.default_input_shape),
                "suits": list(entry.suits),
                "heads": list(models.HEADS),
                "description": entry.description,
            }
        )
    return rows


def write_catalogue() -> None:
    CATALOGUE.write_text(json.dumps(catalogue_rows(), indent=2) + "\n")
