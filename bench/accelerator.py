"""A training config on an accelerator through Keras' JAX backend: the GPU recipe's bench.

The device machine this project is lent now and then (one NVIDIA H200) has JAX and PyTorch for
CUDA 13 but no TensorFlow, whose GPU build wants CUDA 12 and is far larger than what can be
carried there. The zoo's models, configs and recipes import no TensorFlow (``training.recipe``),
so the same config trains there on Keras' JAX backend: same model, head and loss, label smoothing,
optimizer and one-cycle schedule. Only the input side is this module's own: whole uint8 arrays
augmented in numpy by host threads, one epoch ahead of the step (``shift``: each image moved by up
to 2 pixels, zero fill; ``flip_shift``: then mirrored with probability 1/2, as
``training.datasets.pipeline`` does in tf.data), and scaled to [0, 1] by the accelerator.

Each training runs as its own process on Keras' JAX backend (``.venv/jax-site`` on its path where
``scripts/setup.sh`` made it) and its wall time counts from process start to the final test
accuracy, as in ``bench.train``::

    python -m bench.accelerator --data-dir DIR    # DIR/cifar-10-batches-py
    python -m bench.accelerator --generated       # no CIFAR-10 on disk

``--generated`` trains on images of CIFAR-10's shapes drawn around ten class templates: the times
hold for CIFAR-10 (same shapes, same steps), the accuracy says only that the model learns.
Results go to ``bench/results/train_accelerator-KIND.json`` (KIND: the accelerator, e.g.
``nvidia-h200``).
"""

import argparse
import itertools
import json
import math
import os
import re
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.report import RESULTS, host_info, time_to
from bench.timing import ROOT, timed_process, with_wall_seconds

# Where scripts/setup.sh installs JAX, apart from TensorFlow's environment (requirements-jax.txt).
JAX_SITE = ROOT / ".venv" / "jax-site"
DEFAULT_CONFIG = "configs/cifar10_airnet.yaml"
TARGET = 0.94
EVAL_BATCH_SIZE = 1000
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "bfloat16", "float16")
# Settings that change the numbers, recorded with them where set.
TUNING_VARIABLES = ("XLA_FLAGS", "JAX_COMPILATION_CACHE_DIR", "KERAS_BACKEND")


def generated_cifar(count: int, seed: int, num_classes: int = 10):
    """``count`` uint8 images of 32x32x3 and their labels: each class a smooth random colour
    template, each image its class's template plus noise. Learnable, unlike noise alone."""
    rng = np.random.default_rng(seed)
    coarse = np.random.default_rng(1234).uniform(0, 255, (num_classes, 4, 4, 3)).astype(np.float32)
    templates = coarse.repeat(8, axis=1).repeat(8, axis=2)  # 32x32x3 blocks of colour
    labels = rng.integers(0, num_classes, count)
    images = rng.standard_normal((count, 32, 32, 3), dtype=np.float32)
    images *= 60.0
    images += templates[labels]
    images = np.clip(images, 0, 255, out=images).astype(np.uint8)
    return images, labels.astype(np.int64)


def augment(
    images: np.ndarray, kind: str, rng: np.random.Generator, max_shift: int = 2
) -> np.ndarray:
    """Whole-array augmentation of NHWC uint8 images: ``none``, ``shift`` or ``flip_shift``
    (shifts of up to ``max_shift`` pixels, zero fill).

    Images are grouped by their drawn offset and each group moved by one slice of the padded
    array: 25 block copies, where an index per pixel would gather 150 million of them.
    """
    if kind == "none":
        return images
    count, height, width = images.shape[:3]
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
    offsets = rng.integers(0, 2 * max_shift + 1, (count, 2))
    shifted = np.empty_like(images)
    for top, left in np.unique(offsets, axis=0):
        chosen = np.flatnonzero((offsets[:, 0] == top) & (offsets[:, 1] == left))
        shifted[chosen] = padded[chosen, top : top + height, left : left + width]
    if kind == "shift":
        return shifted
    flipped = np.flatnonzero(rng.random(count) < 0.5)
    shifted[flipped] = shifted[flipped, :, ::-1]
    return shifted


def augment_in_parallel(
    images, kind: str, rng: np.random.Generator, pool, parts: int, max_shift: int = 2
):
    """:func:`augment` on ``pool``'s threads, ``parts`` contiguous slices each with its own
    generator spawned from ``rng`` (numpy's block copies release the GIL: they run together)."""
    if kind == "none":
        return images
    bounds = np.linspace(0, len(images), parts + 1).astype(int)
    slices = [images[start:stop] for start, stop in itertools.pairwise(bounds)]
    rngs = rng.spawn(len(slices))
    shifts = [max_shift] * len(slices)
    return np.concatenate(list(pool.map(augment, slices, [kind] * len(slices), rngs, shifts)))


def accelerator_kind(device) -> str:
    """A short label of a JAX device, e.g. ``nvidia-h200``; ``cpu`` for the host."""
    if device.platform == "cpu":
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", device.device_kind.lower()).strip("-")


def machine_info() -> dict:
    """The accelerator, the host CPU and the versions that shape the numbers."""
    import jax
    import keras

    device = jax.devices()[0]
    return {
        **host_info(),
        "accelerator": device.device_kind,
        "kind": accelerator_kind(device),
        "platform": device.platform,
        "keras_backend": keras.backend.backend(),
        "jax": jax.__version__,
        "keras": keras.__version__,
        "environment": {name: os.environ[name] for name in TUNING_VARIABLES if name in os.environ},
    }


def load_splits(config, *, generated: bool, limit: int | None):
    """``(x_train, y_train, x_test, y_test)`` of the config's dataset, or generated ones."""
    from training import datasets

    info = datasets.get_info(config.dataset)
    if generated:
        sizes = {split: min(limit or n, n) for split, n in info.split_sizes.items()}
        x_train, y_train = generated_cifar(sizes["train"], seed=1, num_classes=info.num_classes)
        x_test, y_test = generated_cifar(sizes["test"], seed=2, num_classes=info.num_classes)
        return x_train, y_train, x_test, y_test
    splits = [
        datasets.load_arrays(config.dataset, split, data_dir=config.data_dir or None, limit=limit)
        for split in ("train", "test")
    ]
    return (*splits[0], *splits[1])


def compiled_model(config, precision: str, examples: int):
    """The config's model behind a uint8 input scaled on the accelerator, compiled with its loss
    and its optimizer scheduled over ``examples`` an epoch; the labels' one-hot width, or None
    where the loss takes class ids."""
    import keras

    from models import get_head
    from training import datasets
    from training.recipe import build_model, build_optimizer, label_format_for

    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(precision)
    info = datasets.get_info(config.dataset)
    head = get_head(config.head)
    steps = math.ceil(examples / config.batch_size)
    pixels = keras.Input(info.input_shape, dtype="uint8")
    classifier = build_model(config, info)
    model = keras.Model(pixels, classifier(keras.layers.Rescaling(1 / 255)(pixels)))
    model.compile(
        optimizer=build_optimizer(config, steps * config.epochs),
        loss=head.loss(label_smoothing=config.label_smoothing),
        steps_per_execution=config.steps_per_execution,
    )
    one_hot = label_format_for(info.task, head, config) == "one_hot"
    return model, info.num_classes if one_hot else None


def train(config, arrays, *, precision: str) -> dict:
    """Trains the config on ``arrays``, testing after every epoch; the points on the training
    clock (wall clock: the parent adds it), final accuracy and steady examples/s."""
    x_train, y_train, x_test, y_test = arrays
    model, one_hot = compiled_model(config, precision, len(x_train))
    if one_hot:
        y_train = np.eye(one_hot, dtype=np.float32)[y_train]
    epoch_rngs = iter(np.random.default_rng(config.seed).spawn(config.epochs))
    points, seconds = [], 0.0
    workers = max(1, min(8, (os.cpu_count() or 1) - 1))
    with ThreadPoolExecutor(workers) as pool, ThreadPoolExecutor(1) as prefetch:

        def next_images():
            """The next epoch's augmented images, made while this epoch trains."""
            return prefetch.submit(
                augment_in_parallel, x_train, config.augmentation, next(epoch_rngs), pool, workers,
                config.max_shift,
            )  # fmt: skip

        pending = next_images()
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            images = pending.result()
            waited = time.perf_counter() - started
            if epoch < config.epochs:
                pending = next_images()
            model.fit(images, y_train, batch_size=config.batch_size, epochs=1, verbose=0)
            fitted = time.perf_counter()
            seconds += fitted - started
            outputs = model.predict(x_test, batch_size=EVAL_BATCH_SIZE, verbose=0)
            points.append(
                {
                    "epoch": epoch,
                    "seconds": seconds,
                    "test_accuracy": round(float(np.mean(outputs.argmax(-1) == y_test)), 6),
                    "finished_at": time.time(),
                    "epoch_seconds": fitted - started,
                    "input_wait_seconds": waited,
                    "evaluate_seconds": time.perf_counter() - fitted,
                }
            )
    epoch_seconds = [p["epoch_seconds"] for p in points]
    steady = statistics.median(epoch_seconds[1:] or epoch_seconds)
    return {
        "points": points,
        "final_accuracy": points[-1]["test_accuracy"],
        "train_seconds": seconds,
        "steady_examples_per_second": len(x_train) / steady,
    }


def child(args) -> None:
    """One training, written as JSON to ``args.out``: what the parent times as a process."""
    config = config_from(args)
    started = time.perf_counter()
    arrays = load_splits(config, generated=args.generated, limit=args.limit)
    data_seconds = time.perf_counter() - started
    result = train(config, arrays, precision=args.precision)
    result.update(
        precision=args.precision,
        steps_per_execution=config.steps_per_execution,
        examples=len(arrays[0]),
        data_seconds=data_seconds,
        machine=machine_info(),
    )
    Path(args.out).write_text(json.dumps(result))


def timed_child(args, precision: str, seed: int) -> dict:
    """One training as its own process, as a user would start it; points on both clocks."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run.json"
        argv = ["-m", "bench.accelerator", "--child", "--out", str(out), "--config", args.config]
        argv += ["--precision", precision, "--seed", str(seed)]
        argv += ["--generated"] if args.generated else ["--data-dir", args.data_dir]
        argv += [f"--{name.replace('_', '-')}={value}"
                 for name in ("epochs", "limit", "steps_per_execution")
                 if (value := getattr(args, name)) is not None]  # fmt: skip
        started, wall = timed_process(argv)
        result = json.loads(out.read_text())
    points = with_wall_seconds(result["points"], started)
    return {
        **result,
        "seed": seed,
        "points": points,
        "wall_seconds": wall,
        f"seconds_to_{TARGET}": time_to(points, TARGET),
        f"wall_seconds_to_{TARGET}": time_to(points, TARGET, "wall_seconds"),
    }


def run(args) -> Path:
    """Every precision and seed asked for, one process each; the results file's path."""
    runs = [
        timed_child(args, precision, seed)
        for precision in args.precisions.split(",")
        for seed in range(args.seeds)
    ]
    machine = runs[0].pop("machine")
    for other in runs[1:]:
        other.pop("machine")
    result = {
        "machine": machine,
        "config": args.config,
        "data": "generated, CIFAR-10's shapes" if args.generated else "cifar10",
        "target_accuracy": TARGET,
        "clock": "wall seconds from process start to the final test accuracy, evaluation included",
        "runs": runs,
    }
    default = RESULTS / f"train_accelerator-{machine['kind']}.json"
    path = Path(args.results) if args.results else default
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    for one in runs:
        print(
            f"{one['precision']:>15} seed {one['seed']}: {one['final_accuracy']:.2%} in "
            f"{one['wall_seconds']:.1f} s wall ({one['train_seconds']:.1f} s training, "
            f"{one['steady_examples_per_second']:,.0f} examples/s, "
            f"steps per execution {one['steps_per_execution']})"
        )
    print(f"results: {path}")
    return path


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1, or an error naming the value."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def config_from(args):
    """The training config the runs use: the file's, with the flags' overrides."""
    from training.config import build_config, load_yaml

    overrides = {
        "epochs": args.epochs,
        "seed": args.seed,
        "data_dir": args.data_dir,
        "steps_per_execution": args.steps_per_execution,
    }
    return build_config(load_yaml(args.config), overrides)


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuses, before any run starts, what would fail in every run: an unknown precision, a
    missing data folder, a config that does not load or does not fit generated data."""
    from core.errors import ConfigError
    from training import datasets

    unknown = [p for p in args.precisions.split(",") if p not in PRECISIONS]
    if unknown:
        parser.error(
            f"unknown precision {unknown[0]!r} in --precisions {args.precisions!r}; "
            f"expected a comma-separated list of {', '.join(PRECISIONS)}"
        )
    if args.data_dir and not Path(args.data_dir).is_dir():
        parser.error(f"--data-dir {args.data_dir!r} is not a folder")
    try:
        config = config_from(args)
    except ConfigError as error:
        parser.error(str(error))
    info = datasets.get_info(config.dataset)
    if args.generated and (info.input_shape, info.task) != ((32, 32, 3), datasets.MULTICLASS):
        parser.error(
            f"--generated makes one-label 32x32x3 images; {args.config!r} trains on "
            f"{config.dataset!r} ({info.task}, {'x'.join(map(str, info.input_shape))})"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--data-dir", help="folder with cifar-10-batches-py/")
    data.add_argument("--generated", action="store_true", help="images of CIFAR-10's shapes")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="a training config")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16",
                        help="comma-separated Keras dtype policies, one run each")  # fmt: skip
    parser.add_argument("--seeds", type=positive_int, default=1, help="runs per precision")
    parser.add_argument("--epochs", type=positive_int, help="override the config's epochs")
    parser.add_argument(
        "--limit", type=positive_int, help="only the first LIMIT images of each split"
    )
    parser.add_argument(
        "--steps-per-execution",
        type=positive_int,
        help="override the config's steps_per_execution",
    )
    parser.add_argument("--results", help="where the results JSON goes (default: bench/results/)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.child:
        check(parser, args)
    return args


def on_jax(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a process that trains on Keras' JAX backend: that backend (unless one is
    chosen) and, where scripts/setup.sh made it, the folder holding JAX first on the path."""
    env = {**env}
    env.setdefault("KERAS_BACKEND", "jax")
    if JAX_SITE.is_dir():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(JAX_SITE), env.get("PYTHONPATH")]))
    return env


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.update(on_jax(dict(os.environ)))  # the children's environment
    if args.child:
        child(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
