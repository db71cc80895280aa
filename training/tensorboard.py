"""TensorBoard beyond Keras' scalars and histograms: the model's graph; each epoch, labelled
sample images and a confusion matrix (multiclass) or per-class PR curves (multilabel) on a slice
of the monitored split; at the end, the same on the whole test split with a gallery of the most
confident mistakes; the hparams session of the run and the reliability diagram of its
calibration.

Images are drawn with matplotlib's object-oriented API (no pyplot, no global backend state) and
logged as image summaries.
"""

import io

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from tensorboard.plugins.hparams import api as hparams_api
from tensorboard.plugins.pr_curve import summary as pr_curve_summary

from core.outputs import MULTICLASS, MULTILABEL, confusion_matrix, decide
from training.datasets.pipeline import image_batches

PR_CURVE_THRESHOLDS = 101
MISTAKES_SHOWN = 24


def figure_to_image(figure) -> tf.Tensor:
    """A matplotlib figure as a [1, H, W, 4] uint8 tensor."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return tf.expand_dims(tf.image.decode_png(buffer.getvalue(), channels=4), 0)


def _label_text(row, class_names, task) -> str:
    if task == MULTICLASS:
        return class_names[int(row)]
    return ",".join(class_names[i] for i in np.flatnonzero(row)) or "-"


def sample_grid(images, truth, predicted, class_names, task):
    """A grid of images titled "pred / true", green when right and red when wrong."""
    columns = min(len(images), 8)
    rows = int(np.ceil(len(images) / columns))
    figure = Figure(figsize=(1.6 * columns, 1.9 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, true_row, pred_row in zip(axes.ravel(), images, truth, predicted, strict=False):
        ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None)
        right = np.array_equal(true_row, pred_row)
        pred_text = _label_text(pred_row, class_names, task)
        true_text = _label_text(true_row, class_names, task)
        ax.set_title(
            f"pred {pred_text}\ntrue {true_text}", fontsize=7, color="green" if right else "red"
        )
    return figure


def confusion_figure(confusion: np.ndarray, class_names):
    """The confusion matrix (rows: truth, columns: prediction) with counts in the cells."""
    size = max(4, 0.45 * len(class_names))
    figure = Figure(figsize=(size, size))
    ax = figure.subplots()
    ax.imshow(confusion, cmap="Blues")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=90, fontsize=7)
    ax.set_yticks(ticks, class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(class_names) <= 20:
        limit = confusion.max() / 2 if confusion.size else 0
        for (i, j), count in np.ndenumerate(confusion):
            ax.text(
                j,
                i,
                count,
                ha="center",
                va="center",
                fontsize=6,
                color="white" if count > limit else "black",
            )
    return figure


def reliability_figure(reliability: dict, temperature):
    """The reliability diagram of the test split before and after temperature scaling: accuracy
    against confidence per bin (the diagonal is perfect calibration), bin sizes below."""
    figure = Figure(figsize=(5, 5.6))
    top, bottom = figure.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], color="gray", linestyle=":", label="perfectly calibrated")
    shown = "T = " + (f"{temperature:.3f}" if np.isscalar(temperature) else "one per class")
    for name, style in (("before", "o-"), ("after", "s-")):
        points = reliability[name]
        filled = np.asarray(points["count"]) > 0
        confidence = np.asarray(points["confidence"])[filled]
        accuracy = np.asarray(points["accuracy"])[filled]
        label = "raw" if name == "before" else f"calibrated ({shown})"
        top.plot(confidence, accuracy, style, markersize=4, label=label)
    top.set_ylabel("accuracy (fraction right)")
    top.set_title("Reliability on the test split")
    top.legend(fontsize=7)
    bins = len(reliability["after"]["count"])
    centres = (np.arange(bins) + 0.5) / bins
    bottom.bar(centres, reliability["after"]["count"], width=1 / bins, color="tab:orange")
    bottom.set_yscale("log")
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("examples")
    return figure


def write_raw_summary(summary_pb, step: int) -> None:
    tf.summary.experimental.write_raw_pb(summary_pb.SerializeToString(), step=step)


class TensorBoardExtras(keras.callbacks.Callback):
    """Logs, after every epoch, predictions on a fixed slice of the test split.

    Args:
        log_dir: the run's TensorBoard folder; writes into ``validation/``.
        images: uint8 test images (a few hundred are enough).
        labels: their labels (class ids or multi-hot rows).
        head: the model's head (turns outputs into probabilities).
        class_names: names in label order.
        task: ``multiclass`` or ``multilabel``.
        threshold: multilabel decision threshold.
        sample_images: how many labelled images to show.
    """

    def __init__(self, log_dir, images, labels, head, class_names, task, threshold, sample_images):
        super().__init__()
        self.writer = tf.summary.create_file_writer(str(log_dir / "validation"))
        self.images, self.labels = images, labels
        self.batches = image_batches(images, 256)  # the same images every epoch: built once
        self.head, self.class_names, self.task = head, list(class_names), task
        self.threshold, self.sample_images = threshold, sample_images

    def on_epoch_end(self, epoch, logs=None):
        outputs = self.model.predict(self.batches, verbose=0)
        probabilities = self.head.probabilities(tf.constant(outputs, tf.float32)).numpy()
        with self.writer.as_default(step=epoch):
            if self.task == MULTICLASS:
                self._log_multiclass(probabilities)
            else:
                self._log_multilabel(probabilities)
        self.writer.flush()

    def _log_samples(self, predicted):
        n = self.sample_images
        if n:
            figure = sample_grid(
                self.images[:n], self.labels[:n], predicted[:n], self.class_names, self.task
            )
            tf.summary.image("samples", figure_to_image(figure))

    def _log_multiclass(self, probabilities):
        predicted = decide(probabilities, MULTICLASS)
        self._log_samples(predicted)
        confusion = confusion_matrix(self.labels, predicted, len(self.class_names))
        tf.summary.image(
            "confusion_matrix", figure_to_image(confusion_figure(confusion, self.class_names))
        )

    def _log_multilabel(self, probabilities):
        self._log_samples(decide(probabilities, MULTILABEL, self.threshold))
        for index, name in enumerate(self.class_names):
            summary = pr_curve_summary.pb(
                f"pr_curve/{name}",
                labels=self.labels[:, index].astype(bool),
                predictions=probabilities[:, index],
                num_thresholds=PR_CURVE_THRESHOLDS,
            )
            write_raw_summary(summary, self.writer_step)

    @property
    def writer_step(self) -> int:
        return int(tf.summary.experimental.get_step())


def write_hparams(log_dir, hparams: dict, run_name: str) -> None:
    """Starts the hparams session of this run in ``log_dir`` (the HParams dashboard's table)."""
    values = {
        k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in hparams.items()
    }
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        hparams_api.hparams(values, trial_id=run_name)


def write_final_metrics(log_dir, metrics: dict, step: int, calibration: dict | None = None) -> None:
    """Final test metrics as ``final/NAME`` scalars beside the hparams session, so the HParams
    table shows them in one row per run; with a calibration report, the test split's NLL, Brier
    score and ECE before and after (``final/calibration/...``) and the reliability diagram."""
    with tf.summary.create_file_writer(str(log_dir)).as_default(step=step):
        for name, value in metrics.items():
            if isinstance(value, (int, float)):
                tf.summary.scalar(f"final/{name}", value)
        if calibration is not None:
            for when in ("before", "after"):
                for name, value in calibration["test"][when].items():
                    tf.summary.scalar(f"final/calibration/{name}_{when}", value)
            figure = reliability_figure(calibration["reliability"], calibration["temperature"])
            tf.summary.image("calibration/reliability_diagram", figure_to_image(figure))


def write_graph(log_dir, model: keras.Model) -> None:
    """The inference graph of ``model`` (one image batch in, its outputs) for the Graphs tab."""
    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
    graph = tf.function(lambda images: model(images, training=False)).get_concrete_function(spec)
    with tf.summary.create_file_writer(str(log_dir)).as_default():
        tf.summary.graph(graph.graph)


def most_confident_mistakes(labels, probabilities, task, threshold) -> np.ndarray:
    """Indices of wrongly decided test images, most confident first (multiclass: the wrong class'
    probability; multilabel: the largest distance of a wrong label's probability from its truth)."""
    predicted = decide(probabilities, task, threshold)
    labels = np.asarray(labels)
    if task == MULTICLASS:
        wrong = np.flatnonzero(predicted != labels)
        confidence = probabilities[wrong, predicted[wrong]]
    else:
        wrong = np.flatnonzero((predicted != labels).any(axis=1))
        confidence = np.abs(probabilities[wrong] - labels[wrong]).max(axis=1)
    return wrong[np.argsort(-confidence, kind="stable")]


def write_final_images(log_dir, images, labels, probabilities, info, threshold, step: int) -> None:
    """The final model on the whole test split, as the export serves it: its confusion matrix
    (multiclass) or PR curves (multilabel) and its most confident mistakes (``final/...``)."""
    task, class_names = info.task, list(info.class_names)
    predicted = decide(probabilities, task, threshold)
    with tf.summary.create_file_writer(str(log_dir / "test")).as_default(step=step):
        if task == MULTICLASS:
            confusion = confusion_matrix(labels, predicted, len(class_names))
            figure = confusion_figure(confusion, class_names)
            tf.summary.image("final/confusion_matrix", figure_to_image(figure))
        else:
            for index, name in enumerate(class_names):
                summary = pr_curve_summary.pb(
                    f"final/pr_curve/{name}", labels=np.asarray(labels)[:, index].astype(bool),
                    predictions=probabilities[:, index], num_thresholds=PR_CURVE_THRESHOLDS,
                )  # fmt: skip
                write_raw_summary(summary, step)
        shown = most_confident_mistakes(labels, probabilities, task, threshold)[:MISTAKES_SHOWN]
        if len(shown):
            figure = sample_grid(images[shown], np.asarray(labels)[shown], predicted[shown],
                                 class_names, task)  # fmt: skip
            tf.summary.image("final/most_confident_mistakes", figure_to_image(figure))
