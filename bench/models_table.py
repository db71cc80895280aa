"""The README's table of trained checkpoints, rendered from their cards (``models/pretrained/``)
by ``python -m bench.readme_table``, between ``<!-- models:start -->`` and ``<!-- models:end -->``."""

import models

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
