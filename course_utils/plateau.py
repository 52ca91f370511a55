"""ReduceLROnPlateau, replayed by hand.

`replay_plateau` runs the algorithm of `torch.optim.lr_scheduler.ReduceLROnPlateau` (its `step()`
and `_reduce_lr`, torch 2.14.1) on a list of metric values, with no model and no optimizer, and
records the scheduler's state after every epoch. It is plain Python meant to be read next to
notebook 03; `tests/test_plateau.py` checks that it matches torch exactly: the same float
operations in the same order, so the same floats.

    steps = replay_plateau([1.0, 0.8, 0.8, 0.8, 0.8], lr=0.1, patience=2)
    steps[-1].lr_after  # 0.1 * 0.1: the third bad epoch in a row reduced the lr
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import SupportsFloat

__all__ = ["PlateauStep", "improvement_bound", "is_improvement", "replay_plateau"]


@dataclass(frozen=True)
class PlateauStep:
    """The scheduler's state after `scheduler.step(metric)` at the end of one epoch."""

    epoch: int  # 1-based: the epoch whose metric was passed to step()
    metric: float
    best: float  # best metric so far, after this step
    improved: bool  # the metric beat the previous best by more than the threshold
    num_bad_epochs: int  # after this step (torch's attribute of the same name)
    cooldown_counter: int  # after this step
    lr_before: float  # lr used during this epoch (first param group)
    lr_after: float  # lr after the step, used in the next epoch (first param group)
    reduced: bool  # lr_after < lr_before
    lrs_before: tuple[float, ...]  # all param groups
    lrs_after: tuple[float, ...]


def improvement_bound(best: float, *, mode: str = "min", threshold: float = 1e-4,
                      threshold_mode: str = "rel") -> float:
    """The value a metric must beat to count as an improvement over `best`.

    mode="min": the metric must be strictly below it; mode="max": strictly above it.
    In "rel" mode with a negative `best` the bound lies on the *worse* side of `best`
    (e.g. min: -1.0 * (1 - 0.1) = -0.9), so a slightly worse metric still counts.
    """
    _check_modes(mode, threshold_mode)
    # Written exactly as torch's `_is_better` computes it, so the floats are identical.
    if mode == "min":
        return best * (1.0 - threshold) if threshold_mode == "rel" else best - threshold
    return best * (threshold + 1.0) if threshold_mode == "rel" else best + threshold


def is_improvement(metric: SupportsFloat, best: float, *, mode: str = "min",
                   threshold: float = 1e-4, threshold_mode: str = "rel") -> bool:
    """True if `metric` counts as better than `best` (torch's `_is_better`).

    Strict comparison: a tie is not an improvement (except in the negative-metric "rel" trap,
    see `improvement_bound`), and NaN never is, since every comparison with NaN is False.
    """
    bound = improvement_bound(best, mode=mode, threshold=threshold, threshold_mode=threshold_mode)
    return float(metric) < bound if mode == "min" else float(metric) > bound


def replay_plateau(metrics: Iterable[SupportsFloat], *, lr: float | Sequence[float] = 0.1,
                   mode: str = "min", factor: float = 0.1, patience: int = 10,
                   threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                   min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8) -> list[PlateauStep]:
    """Replay ReduceLROnPlateau on `metrics` (one value per epoch) and return one PlateauStep each.

    `lr` is the starting lr, or a list/tuple with one lr per param group; `min_lr` is one floor for
    every group, or a list/tuple with one per group. The other arguments mean what they mean in
    torch and default to torch's values. Metrics may be floats, numpy floats or 0-dim tensors.

    Stricter than torch: a negative `patience`, `cooldown` or `factor` raises ValueError. Torch
    does not check them: with patience=-1 it reduces the lr on every step, even after an
    improvement; a negative cooldown acts like 0; a negative factor sets the lr to min_lr.
    """
    lrs = [float(x) for x in lr] if isinstance(lr, (list, tuple)) else [float(lr)]
    # Checked in the order torch checks them (optimizer first), so the first error is the same.
    if not lrs or min(lrs) < 0:
        raise ValueError(f"lr is empty or negative ({lr!r}): give one lr >= 0 (lr=0.1) or one "
                         "per param group (lr=[0.1, 0.01]).")
    if factor >= 1.0:
        raise ValueError(f"factor must be < 1.0, got {factor!r}: the new lr is lr * factor, so "
                         "factor=0.5 halves the lr and factor=0.1 divides it by 10.")
    if isinstance(min_lr, (list, tuple)):
        if len(min_lr) != len(lrs):
            raise ValueError(f"min_lr needs one entry per param group: got {len(min_lr)} "
                             f"entries for {len(lrs)} group(s) (one per lr). Give one min_lr per "
                             "group, or a single number for all of them.")
        min_lrs = [float(x) for x in min_lr]
    else:
        min_lrs = [float(min_lr)] * len(lrs)
    _check_modes(mode, threshold_mode)
    for name, value, meaning in [
        ("factor", factor, "what the lr is multiplied by (0.1 divides it by 10)"),
        ("patience", patience, "how many bad epochs in a row are tolerated before reducing"),
        ("cooldown", cooldown, "how many epochs after a reduction bad epochs are not counted"),
    ]:
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}: it is {meaning}. "
                             "(torch does not check this one and silently misbehaves.)")
    values = [float(m) for m in metrics]  # like torch's step(): accepts 0-dim tensors

    # Start from the worst possible value, so the first metric always sets the baseline.
    best = math.inf if mode == "min" else -math.inf
    num_bad_epochs = cooldown_counter = 0
    steps = []
    for epoch, metric in enumerate(values, start=1):
        lrs_before = tuple(lrs)
        improved = is_improvement(metric, best, mode=mode, threshold=threshold,
                                  threshold_mode=threshold_mode)
        if improved:
            best, num_bad_epochs = metric, 0
        else:
            num_bad_epochs += 1  # NaN lands here too: it is never better
        if cooldown_counter > 0:
            cooldown_counter -= 1
            num_bad_epochs = 0  # bad epochs during cooldown are not counted
        # Strictly greater: with patience p, the reduction comes on the (p+1)-th bad epoch in a row.
        if num_bad_epochs > patience:
            for i, old_lr in enumerate(lrs):
                new_lr = max(old_lr * factor, min_lrs[i])
                # eps: a reduction smaller than eps is skipped (so is one "up" to a min_lr above
                # the lr), but the counters below still reset, as in torch.
                if old_lr - new_lr > eps:
                    lrs[i] = new_lr
            cooldown_counter = cooldown
            num_bad_epochs = 0
        steps.append(PlateauStep(
            epoch=epoch, metric=metric, best=best, improved=improved,
            num_bad_epochs=num_bad_epochs, cooldown_counter=cooldown_counter,
            lr_before=lrs_before[0], lr_after=lrs[0], reduced=lrs[0] < lrs_before[0],
            lrs_before=lrs_before, lrs_after=tuple(lrs)))
    return steps


def _check_modes(mode: str, threshold_mode: str) -> None:
    """Reject an unknown mode / threshold_mode with torch's exception type."""
    for name, value, choices, hint in [
        ("mode", mode, ("min", "max"), 'use "min" for a loss and "max" for an accuracy'),
        ("threshold_mode", threshold_mode, ("rel", "abs"),
         '"rel" compares with best * (1 - threshold) (for "min"), "abs" with best - threshold; '
         'use "abs" if the metric can be negative'),
    ]:
        if value not in choices:
            # torch raises ValueError for an unknown string and (by accident) TypeError otherwise.
            error = ValueError if isinstance(value, str) else TypeError
            raise error(f"{name} must be {choices[0]!r} or {choices[1]!r}, got {value!r}: {hint}.")
