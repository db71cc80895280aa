"""Learning-rate schedules, serializable so a checkpoint restores them with the optimizer."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``peak_lr * initial_fraction`` to ``peak_lr``, then cosine decay to
    ``peak_lr * final_fraction``.

    With a warm-up of about a quarter of training and a decay to near zero this is the one-cycle
    policy (Smith, 2018) that lets batch-normalised networks train at a high peak rate; with a
    short warm-up it is cosine annealing with warm-up.

    Args:
        peak_lr: the highest learning rate.
        total_steps: steps of the whole run.
        warmup_steps: steps of the linear warm-up.
        initial_fraction: start of the warm-up as a fraction of ``peak_lr``. Defaults to 0.04.
        final_fraction: end of the decay as a fraction of ``peak_lr``. Defaults to 1e-3.
    """

    def __init__(
        self, peak_lr, total_steps, warmup_steps, initial_fraction=0.04, final_fraction=1e-3
    ):
        self.peak_lr = float(peak_lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.initial_fraction = float(initial_fraction)
        self.final_fraction = float(final_fraction)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = max(self.warmup_steps, 1)
        start = self.peak_lr * self.initial_fraction
        warm_lr = start + (self.peak_lr - start) * step / warmup
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        end = self.peak_lr * self.final_fraction
        cosine_lr = end + 0.5 * (self.peak_lr - end) * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warm_lr, cosine_lr)

    def get_config(self):
        return {
            "peak_lr": self.peak_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "initial_fraction": self.initial_fraction,
            "final_fraction": self.final_fraction,
        }


def build_schedule(kind: str, peak_lr: float, total_steps: int, warmup_fraction: float):
    """``constant`` -> the float itself; ``onecycle`` and ``cosine`` -> a :class:`WarmupCosine`.

    ``cosine`` warms up over at most 5 % of the steps; ``onecycle`` over ``warmup_fraction``.
    """
    if kind == "constant":
        return peak_lr
    fraction = warmup_fraction if kind == "onecycle" else min(warmup_fraction, 0.05)
    return WarmupCosine(peak_lr, total_steps, int(total_steps * fraction))
