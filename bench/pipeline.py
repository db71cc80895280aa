"""The input pipeline alone against the reference convnet's training speed, in one run.

Target (issue 2): the pipeline delivers MNIST batches at >= 10x the examples/s at which the
keras-io reference convnet trains on the same machine.
"""

import time

from bench.reference import reference_throughput
from bench.report import write_result
from training import datasets
from training.datasets.pipeline import make_pipeline


def pipeline_throughput(x, y, *, epochs: int = 3, batch_size: int = 128) -> float:
    """examples/s of the training pipeline (shuffle, gather, scale, shift augmentation)."""
    dataset = make_pipeline(x, y, batch_size=batch_size, shuffle=True, augmentation="shift")
    for _ in dataset.take(20):  # warm-up: tracing and the first prefetch
        pass
    start = time.perf_counter()
    for _ in range(epochs):
        for _ in dataset:
            pass
    return epochs * len(x) / (time.perf_counter() - start)


def run() -> dict:
    x, y = datasets.load_arrays("mnist", "train")
    reference = reference_throughput(x, y)
    pipeline = pipeline_throughput(x, y)
    result = {
        "reference_training_examples_per_second": reference,
        "pipeline_examples_per_second": pipeline,
        "ratio": pipeline / reference,
        "target_ratio": 10.0,
        "met": pipeline / reference >= 10.0,
    }
    path = write_result("pipeline", result)
    print(f"reference convnet training: {reference:,.0f} examples/s")
    print(
        f"input pipeline alone:       {pipeline:,.0f} examples/s  ({result['ratio']:.1f}x, target 10x)"
    )
    print(f"written to {path}")
    return result
