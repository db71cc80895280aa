"""Turns finished training runs into the zoo's shipped checkpoints: weights and a model card each.

    zoo bench cards RUN_DIR [RUN_DIR ...] --data-dir DIR

For each run: the weights are moved into a freshly built registry model (so the checkpoint is
what ``create_model(name, pretrained=DATASET)`` rebuilds), saved as float16, loaded back, and
everything on the card is measured on those shipped weights: test metrics and calibration (the
temperature refitted on the run's validation split, as the run did), the first 1,000 test
images' figure the tests check, latency at batch 1 and throughput at batch 32 on this CPU kind,
parameters and multiply-adds. The run must have been started from ``configs/NAME.yaml`` with
``--name NAME``: the card records that command for rerunning it.
"""

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

import models
from bench.report import machine_kind
from core.checksums import sha256_of
from core.cpu import cpu_model
from core.errors import ConfigError
from core.outputs import labels_present
from models.complexity import multiply_adds
from models.pretrained import PRETRAINED_DIR, checkpoint_stem, save_float16_weights
from training import datasets
from training.config import load_yaml, parse_config
from training.export import build_archive, run_dataset_info
from training.loop import evaluate, load_data, predict_outputs
from training.metrics import multiclass_report, multilabel_report
from training.portable import FORMATS, export_portable, portable_probabilities
from training.recipe import label_format_for
from training.run_dir import RunDir

REPO_ROOT = Path(__file__).resolve().parents[1]
QUICK_CHECK_EXAMPLES = 1000
CIFAR_JPEG = (
    "CIFAR-10 (Krizhevsky, 2009) from the JPEG q75 copy (cifar10_jpeg.tar.gz, image-folder "
    "layout): real CIFAR-10 content re-encoded as JPEG at quality 75, not the original pixels; "
    "figures are labelled CIFAR-10 (JPEG q75 copy) and may differ on the original images."
)
PROVENANCE = {
    "mnist": "MNIST (LeCun et al., 1998) in Keras' mnist.npz layout, checked by SHA-256.",
    "fashion_mnist": "Fashion-MNIST (Xiao et al., 2017, Zalando) in Keras' npz layout.",
    "cifar10": CIFAR_JPEG,
    "mnist_multilabel": "Generated from MNIST: 1-3 digits on a 56x56 canvas, a deterministic "
    "function of (split, seed, index); the labels are the digits present.",
    "cifar10_multilabel": "Generated from the CIFAR-10 JPEG q75 copy: 2x2 mosaics of 1-4 "
    "images, a deterministic function of (split, seed, index); the labels are the classes "
    "present. " + CIFAR_JPEG,
}
INTENDED_USE = {
    "multiclass": "Classifying images like the dataset's own ({size}, one object or article "
    "centred): a baseline to compare against, a server to try clients on, a starting point for "
    "fine-tuning.",
    "multilabel": "Telling which of the dataset's classes appear in a composed image "
    "({size}): a demonstration of sigmoid heads, per-class thresholds and mAP.",
}
LIMITS = (
    "Trained on {dataset} only: images from elsewhere (other sizes, photographs, other "
    "backgrounds) are outside its training distribution and its probabilities are not calibrated "
    "for them. Calibrated on the run's held-out validation split; the temperature does not carry "
    "over to shifted data."
)


def tolerance_points(dataset: str) -> float:
    """How far (percentage points) a rerun of the recipe may land from the card's headline: runs
    are deterministic on one CPU kind, but precision (bf16 or float32) follows the CPU."""
    return 1.0 if "cifar" in dataset else 0.5


def headline(report: dict, task: str) -> dict:
    """The card's one figure: top-1 accuracy, or mAP for multilabel tasks."""
    if task == datasets.MULTICLASS:
        return {"metric": "accuracy", "value": report["accuracy"]}
    return {"metric": "mAP", "value": report["mAP"]}


def quick_check(model, head, info, config, images, labels) -> dict:
    """The headline figure on the first 1,000 test images, uncalibrated (the temperature changes
    no decision and no ranking): what the tests recompute on a fresh clone in seconds."""
    images, labels = images[:QUICK_CHECK_EXAMPLES], labels[:QUICK_CHECK_EXAMPLES]
    outputs = predict_outputs(model, head, images, config.test_time_flip)
    if info.task == datasets.MULTICLASS:
        report = multiclass_report(outputs["probabilities"], np.asarray(labels))
    else:
        report = multilabel_report(
            outputs["probabilities"], labels, config.threshold, outputs["logits"]
        )
    return {"examples": len(images), **headline(report, info.task)}


def _figure(probabilities: np.ndarray, labels, info, threshold: float) -> float:
    """The headline figure of probabilities (mAP ranks by their log-odds)."""
    if info.task == datasets.MULTICLASS:
        return float((probabilities.argmax(-1) == np.asarray(labels)).mean())
    clipped = np.clip(probabilities.astype(np.float64), 1e-12, 1 - 1e-12)
    return multilabel_report(probabilities, labels, threshold, np.log(clipped / (1 - clipped)))[
        "mAP"
    ]


def _decisions(probabilities: np.ndarray, info, threshold: float) -> np.ndarray:
    if info.task == datasets.MULTICLASS:
        return probabilities.argmax(-1)[:, None]
    return np.asarray(labels_present(probabilities, threshold))


def format_checks(model, head, info, config, temperature, data) -> dict:
    """Each portable export (``training.portable``) against the SavedModel on the whole test
    set: size, largest difference of probabilities, share of images with the same decisions,
    and the headline figure (with its drop, which int8 quantization may cost)."""
    threshold = config.threshold
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        archive = build_archive(model, head, info, threshold, temperature, config.test_time_flip)
        archive.write_out(str(folder / "savedmodel"), verbose=False)
        serving = tf.saved_model.load(str(folder / "savedmodel")).signatures["serving_default"]
        reference = np.concatenate(
            [
                serving(images=tf.constant(data.x_test[start : start + 500]))["probabilities"]
                for start in range(0, len(data.x_test), 500)
            ]
        )
        base = _figure(reference, data.y_test, info, threshold)
        checks = {"savedmodel": {"value": base}}
        for fmt, suffix in FORMATS.items():
            path = export_portable(
                model, head, temperature=temperature, flip=config.test_time_flip, fmt=fmt,
                path=folder / f"model-{fmt}{suffix}", representative_images=data.x_train[:512],
            )  # fmt: skip
            probabilities = portable_probabilities(path, data.x_test)
            same = _decisions(probabilities, info, threshold) == _decisions(
                reference, info, threshold
            )
            value = _figure(probabilities, data.y_test, info, threshold)
            checks[fmt] = {
                "bytes": path.stat().st_size,
                "max_probability_difference": float(np.abs(probabilities - reference).max()),
                "decision_agreement": float(same.all(axis=-1).mean()),
                "value": value,
                "drop_points": round((base - value) * 100, 3),
            }
    return checks


def speed(model, head, info, flip: bool) -> dict:
    """Median latency of one image and throughput at batch 32 of the inference graph (with the
    mirror pass when the checkpoint serves test-time flips), float32, on this CPU."""
    inference = head.inference_outputs(model, flip_average=flip)
    call = tf.function(lambda images: inference(images, training=False))

    def seconds_per_call(batch: int, calls: int) -> float:
        images = tf.constant(
            np.random.default_rng(0).random((batch, *info.input_shape), np.float32)
        )
        for _ in range(5):
            call(images)
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            call(images)["logits"].numpy()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return {
        "latency_ms_batch_1": round(seconds_per_call(1, 200) * 1000, 3),
        "images_per_second_batch_32": round(32 / seconds_per_call(32, 50)),
        "cpu_kind": machine_kind(),
        "cpu": cpu_model(),
        "threads": tf.config.threading.get_intra_op_parallelism_threads() or "all cores",
    }


def pack(run_path: str, data_dir: str) -> Path:
    """Writes ``models/pretrained/MODEL-DATASET.{weights.h5,json,md}`` from a finished run."""
    run = RunDir.open(run_path)
    config = parse_config(load_yaml(run.config_path))
    config_file = REPO_ROOT / "configs" / f"{config.name}.yaml"
    if not config.name or not config_file.is_file():
        raise ConfigError(
            f"Run {run_path} was not named after a config (train it with --config "
            f"configs/NAME.yaml --name NAME); its name: {config.name!r}."
        )
    config = config.model_copy(update={"data_dir": data_dir})
    metrics = json.loads(run.metrics_path.read_text())
    info = run_dataset_info(config, metrics)
    head = models.get_head(config.head)

    def build():
        return models.create_model(
            config.model, input_shape=info.input_shape, num_classes=info.num_classes,
            head=config.head, **config.model_options,
        )  # fmt: skip

    registry_model = build()
    registry_model.set_weights(run.load_model(run.model_path, compile=False).get_weights())
    stem = checkpoint_stem(config.model, config.dataset)
    weights = PRETRAINED_DIR / f"{stem}.weights.h5"
    PRETRAINED_DIR.mkdir(exist_ok=True)
    save_float16_weights(registry_model, weights)
    shipped = build()
    shipped.load_weights(weights)

    data = load_data(config, info, label_format_for(info.task, head, config))
    report, calibration, _ = evaluate(shipped, head, info, config, data)
    report.pop("confusion_matrix", None)
    temperature = calibration["temperature"] if calibration else 1.0
    flops = multiply_adds(shipped) * (2 if config.test_time_flip else 1)
    card = {
        "model": config.model,
        "dataset": config.dataset,
        "head": config.head,
        "model_options": config.model_options,
        "input_shape": list(info.input_shape),
        "num_classes": info.num_classes,
        "task": info.task,
        "class_names": list(info.class_names),
        "threshold": config.threshold,
        "test_time_flip": config.test_time_flip,
        "weights": {
            "file": weights.name,
            "sha256": sha256_of(weights),
            "bytes": weights.stat().st_size,
            "stored_as": "float16",
        },
        "headline": headline(report, info.task),
        "test": report,
        "calibration": calibration,
        "formats": format_checks(shipped, head, info, config, temperature, data),
        "quick_check": quick_check(shipped, head, info, config, data.x_test, data.y_test),
        "parameters": shipped.count_params(),
        "multiply_adds": flops,
        "speed": speed(shipped, head, info, config.test_time_flip),
        "recipe": {
            "config": f"configs/{config_file.name}",
            "command": f"zoo train --config configs/{config_file.name} --name {config.name} "
            f"--seed {config.seed}"
            + ("" if (info.base or info.name) == "mnist" else " --data-dir DIR"),
            "seed": config.seed,
            "epochs": config.epochs,
            "tolerance_points": tolerance_points(config.dataset),
            "run_headline": headline(metrics["test"], info.task),
        },
        "training": {
            "seconds": round(metrics["train_seconds_this_session"], 1),
            "precision": metrics["precision"]["policy"],
            "cpu_kind": machine_kind(),
            "cores": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d", time.localtime(run.model_path.stat().st_mtime)),
        },
        "provenance": PROVENANCE[config.dataset],
        "intended_use": INTENDED_USE[info.task].format(size="x".join(map(str, info.input_shape))),
        "limits": LIMITS.format(dataset=config.dataset),
        "dataset_info": info.to_json(),
        "config": config.model_copy(update={"data_dir": ""}).to_dict(),
    }
    (PRETRAINED_DIR / f"{stem}.json").write_text(json.dumps(card, indent=1) + "\n")
    (PRETRAINED_DIR / f"{stem}.md").write_text(card_markdown(card))
    return weights


def _percent(value: float) -> str:
    return f"{value * 100:.2f} %"


def card_markdown(card: dict) -> str:
    """The card for people: what the JSON holds, as a page."""
    key = f"{card['model']}:{card['dataset']}"
    calibration, speed_, recipe = card["calibration"], card["speed"], card["recipe"]
    lines = [
        f"# `{key}`",
        "",
        f"`{card['model']}` with the `{card['head']}` head, trained on `{card['dataset']}`. "
        f'Load it with `models.create_model("{card["model"]}", pretrained="{card["dataset"]}")`, '
        f"or serve it with `zoo export --pretrained {key} --repo model_repo/`.",
        "",
        "| | |",
        "|---|---|",
        f"| test {card['headline']['metric']} | {_percent(card['headline']['value'])} "
        f"({card['test']['examples']:,} test images"
        + (", mirror-averaged" if card["test_time_flip"] else "")
        + ") |",
    ]
    if "top5_accuracy" in card["test"]:
        lines.append(f"| top-5 accuracy | {_percent(card['test']['top5_accuracy'])} |")
    for name in ("exact_match", "micro_f1", "macro_f1"):
        if name in card["test"]:
            lines.append(f"| {name.replace('_', ' ')} | {_percent(card['test'][name])} |")
    if calibration:
        before, after = calibration["test"]["before"], calibration["test"]["after"]
        lines += [
            f"| NLL before / after calibration | {before['nll']:.4f} / {after['nll']:.4f} |",
            f"| ECE before / after calibration | {_percent(before['ece'])} / "
            f"{_percent(after['ece'])} |",
            f"| temperature | {_temperature(calibration['temperature'])} (fitted on "
            f"{calibration['validation']['examples']:,} validation images) |",
        ]
    lines += [
        f"| parameters | {card['parameters']:,} |",
        f"| multiply-adds per image | {card['multiply_adds'] / 1e6:.1f} M |",
        f"| latency, batch 1 | {speed_['latency_ms_batch_1']:.2f} ms ({speed_['cpu_kind']}) |",
        f"| throughput, batch 32 | {speed_['images_per_second_batch_32']:,} images/s "
        f"({speed_['cpu_kind']}) |",
        f"| weights | `{card['weights']['file']}`, {card['weights']['bytes'] / 1e6:.2f} MB "
        f"({card['weights']['stored_as']}), SHA-256 `{card['weights']['sha256'][:16]}...` |",
        "",
        "## Other formats",
        "",
        f"`zoo export --pretrained {key} --format FORMAT --output FILE`, each checked against the "
        f"SavedModel on the {card['test']['examples']:,} test images:",
        "",
        f"| format | size | largest probability difference | same decisions | test "
        f"{card['headline']['metric']} |",
        "|---|---|---|---|---|",
        *[
            f"| {fmt} | {check['bytes'] / 1e6:.2f} MB | {check['max_probability_difference']:.1e} "
            f"| {_percent(check['decision_agreement'])} | {_percent(check['value'])} "
            f"({0.0 - check['drop_points']:+.2f} points) |"
            for fmt, check in card["formats"].items()
            if fmt != "savedmodel"
        ],
        "",
        "## Data",
        "",
        card["provenance"],
        "",
        "## Recipe",
        "",
        f"`{recipe['command']}` ({recipe['epochs']} epochs, seed {recipe['seed']}): "
        f"{card['training']['seconds']:.0f} s of training on {card['training']['cpu_kind']} "
        f"({card['training']['cores']} cores, {card['training']['precision']}), {card['training']['date']}. The run "
        f"reported {_percent(recipe['run_headline']['value'])}; a rerun lands within "
        f"{recipe['tolerance_points']} points of the figure above.",
        "",
        "## Intended use and limits",
        "",
        card["intended_use"],
        "",
        card["limits"],
        "",
    ]
    return "\n".join(lines)


def _temperature(value) -> str:
    if isinstance(value, list):
        return f"{min(value):.3f} to {max(value):.3f} (one per class)"
    return f"{value:.3f}"


def run(run_dirs: list[str], data_dir: str) -> None:
    tf.get_logger().setLevel("ERROR")  # predict's retracing notes, one per image shape
    for run_dir in run_dirs:
        weights = pack(run_dir, data_dir)
        print(f"Packed {weights.with_suffix('').with_suffix('')}.{{weights.h5,json,md}}")
