"""ReduceLROnPlateau replayed by hand, and the table, sentence and figure that explain a replay."""
# `replay_plateau` runs torch's rule (`step()` and `_reduce_lr`, torch 2.14.1) on a list of metrics,
# with no model or optimizer, recording the state after every epoch and why. It is the one place
# the rule is written; `tests/test_plateau_replay.py` checks that it matches torch exactly.
#
#     steps = replay_plateau([1.0, 0.8, 0.8, 0.8, 0.8], lr=0.1, patience=2)
#     steps[-1].lr_after  # 0.1 * 0.1: the third bad epoch in a row reduced the lr
#     print(format_steps(steps)); print(describe(steps)); draw_plateau(steps)

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from course_utils._checks import check_whole
from course_utils.plotting import PALETTE, style


@dataclass(frozen=True)
class PlateauStep:
    """The scheduler's state after `scheduler.step(metric)` at the end of one epoch, and why."""

    epoch: int  # 1-based: the epoch whose metric was passed to step()
    metric: float
    # The value the metric had to beat; NaN while there is no finite best yet (epoch 1).
    # compare=False: NaN != NaN would make two equal replays unequal (Python >= 3.13).
    bound: float = field(compare=False)
    improved: bool  # the metric beat the bound: it is the new best
    best: float  # best metric so far, after this step
    counted: int  # bad epochs in a row, as compared with patience (before any reset)
    in_cooldown: bool  # cooldown was running: this epoch's bad epoch was not counted
    triggered: bool  # counted > patience: a reduction was due (maybe skipped: eps, min_lr)
    num_bad_epochs: int  # after this step (torch's attribute of the same name)
    cooldown_counter: int  # after this step
    lr_before: float  # lr used during this epoch (first param group)
    lr_after: float  # lr after the step, used in the next epoch (first param group)
    reduced: bool  # lr_after < lr_before
    lrs_before: tuple[float, ...]  # all param groups
    lrs_after: tuple[float, ...]


def replay_plateau(metrics: Iterable[float], *, lr: float | Sequence[float] = 0.1,
                   mode: str = "min", factor: float = 0.1, patience: int = 10,
                   threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                   min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8) -> PlateauReplay:
    """ReduceLROnPlateau on `metrics` (numbers or 0-dim tensors), one PlateauStep per epoch. `lr`,
    `min_lr`: a number or one per param group; the rest as in torch, but checked more strictly."""
    params = dict(lr=lr, mode=mode, factor=factor, patience=patience, threshold=threshold,
                  threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr, eps=eps)
    lrs, min_lrs = _check_arguments(lr, min_lr, mode, factor, patience, threshold_mode, cooldown)
    rule = dict(mode=mode, threshold=threshold, threshold_mode=threshold_mode)

    # Start from the worst possible value, so the first metric always sets the baseline.
    best = math.inf if mode == "min" else -math.inf
    num_bad_epochs = cooldown_counter = 0
    steps = PlateauReplay()
    steps.params = params
    for epoch, metric in enumerate(_as_floats(metrics), start=1):
        lrs_before = tuple(lrs)
        # torch's `_is_better`, also while best is still infinite; NaN is never better.
        bound = improvement_bound(best, **rule)
        improved = metric < bound if mode == "min" else metric > bound
        bound = bound if math.isfinite(best) else math.nan   # no finite best to beat yet
        best = metric if improved else best
        num_bad_epochs = 0 if improved else num_bad_epochs + 1
        in_cooldown = cooldown_counter > 0
        if in_cooldown:
            cooldown_counter -= 1
            num_bad_epochs = 0  # bad epochs during cooldown are not counted
        counted = num_bad_epochs
        # Strictly greater: with patience p, the reduction comes on the (p+1)-th bad epoch in a row.
        triggered = num_bad_epochs > patience
        if triggered:
            for i, old_lr in enumerate(lrs):
                new_lr = max(old_lr * factor, min_lrs[i])
                # eps: a reduction smaller than eps is skipped (so is one "up" to a min_lr above
                # the lr), but the counters below still reset, as in torch.
                if old_lr - new_lr > eps:
                    lrs[i] = new_lr
            cooldown_counter, num_bad_epochs = cooldown, 0
        steps.append(PlateauStep(
            epoch=epoch, metric=metric, bound=bound, improved=improved, best=best,
            counted=counted, in_cooldown=in_cooldown, triggered=triggered,
            num_bad_epochs=num_bad_epochs, cooldown_counter=cooldown_counter,
            lr_before=lrs_before[0], lr_after=lrs[0], reduced=lrs[0] < lrs_before[0],
            lrs_before=lrs_before, lrs_after=tuple(lrs)))
    return steps


def improvement_bound(best: float, *, mode: str = "min", threshold: float = 1e-4,
                      threshold_mode: str = "rel") -> float:
    """The value a metric must beat (be below for "min", above for "max") to improve on `best`.
    "rel" with a negative best puts it on the *worse* side (min: -1.0 * (1 - 0.1) = -0.9)."""
    # A tie is not an improvement; NaN never is (every comparison with it is False).
    _check_modes(mode, threshold_mode)
    # Written exactly as torch's `_is_better` computes it, so the floats are identical.
    if mode == "min":
        return best * (1.0 - threshold) if threshold_mode == "rel" else best - threshold
    return best * (threshold + 1.0) if threshold_mode == "rel" else best + threshold


class PlateauReplay(list[PlateauStep]):
    """What `replay_plateau` returns: its PlateauSteps, plus its arguments in `params`."""

    params: dict        # replay_plateau's arguments, by name

    @property
    def lr_used(self) -> list[float]:
        """The lr each epoch trained with (first param group)."""
        return [step.lr_before for step in self]

    @property
    def reductions(self) -> list[int]:
        """Epochs whose step() changed an lr (the smaller lr is used from the next epoch)."""
        return [step.epoch for step in self if step.lrs_after != step.lrs_before]

    @property
    def skipped(self) -> list[int]:
        """Epochs where a reduction was due but changed no lr (eps or min_lr stopped it)."""
        return [step.epoch for step in self if step.triggered and step.lrs_after == step.lrs_before]


# ---------------------------------------------------------------- a replay, explained


def describe(steps: PlateauReplay) -> str:
    """One sentence: how many reductions, when, and the lr before and after."""
    reductions, skipped = steps.reductions, steps.skipped
    start, end = _lr_text(steps[0].lr_before), _lr_text(steps[-1].lr_after)
    s = "s" if len(reductions) > 1 else ""
    text = (f"{len(reductions)} reduction{s}, at the end of epoch{s} "
            f"{', '.join(map(str, reductions))}: lr {start} -> {end}" if reductions
            else f"No reduction in {len(steps)} epochs; the lr stays {start}")
    if skipped:
        text += ("; reduction due but skipped (eps or min_lr) in epoch(s) "
                 + ", ".join(map(str, skipped)))
    return text + "."


def format_steps(steps: Sequence[PlateauStep]) -> str:
    """The replay as a table: one row per scheduler.step(metric), lrs of every param group."""
    rows = [f"{'epoch':>5} {'metric':>8} {'best':>8} {'better?':>7} {'bad':>4} "
            f"{'cooldown':>8}  {'lr used':<10} lr next"]
    for step in steps:
        lr_used, lr_next = _lr_text(*step.lrs_before), _lr_text(*step.lrs_after)
        changed = step.lrs_after != step.lrs_before
        note = ("<- reduced" if changed else "<- due, skipped") if step.triggered else ""
        rows.append(f"{step.epoch:>5} {step.metric:>8.4f} {step.best:>8.4f} "
                    f"{'yes' if step.improved else 'no':>7} {step.counted:>4} "
                    f"{step.cooldown_counter:>8}  {lr_used:<10} {lr_next:<10} {note}".rstrip())
    return "\n".join(rows)


def draw_plateau(steps: PlateauReplay, *, metric_label: str = "monitored metric",
                 title: str | None = None):
    """Draw a replay as a new figure: three panels sharing the epoch axis."""
    fig = plt.figure(figsize=(9, 7), constrained_layout=True)
    ax_metric, ax_count, ax_lr = fig.subplots(3, 1, sharex=True,
                                              gridspec_kw={"height_ratios": [3, 1.4, 1.8]})
    x, best = [step.epoch for step in steps], [step.best for step in steps]

    # 1. The metric, the best so far, and the band a value must get past to count as better.
    ax_metric.fill_between(x, [step.bound for step in steps], [math.nan] + best[:-1], step="mid",
                           color=PALETTE[2], alpha=0.25, label="threshold band (not better enough)")
    ax_metric.plot(x, best, drawstyle="steps-mid", label="best so far", **style(1))
    ax_metric.plot(x, [step.metric for step in steps], label=metric_label, **style(0))
    for improved, marker, colour, label in [(True, "o", PALETTE[2], "better: new best"),
                                            (False, "x", PALETTE[3], "not better: a bad epoch")]:
        chosen = [step for step in steps if step.improved == improved]
        ax_metric.plot([step.epoch for step in chosen], [step.metric for step in chosen], marker,
                       color=colour, label=label)
    ax_metric.set_ylabel(metric_label)
    ax_metric.ticklabel_format(axis="y", useOffset=False)   # 1.0, not "+1" and 0.0

    # 2. Bad epochs in a row, against patience; cooldown epochs shaded.
    counted, patience = [step.counted for step in steps], steps.params["patience"]
    ax_count.bar(x, counted, width=0.7,
                 color=[PALETTE[3] if step.triggered else PALETTE[5] for step in steps])
    ax_count.axhline(patience + 0.5, color="black", linestyle="--", linewidth=1,
                     label=f"reduce when the count passes patience = {patience}")
    cooling = [step.epoch for step in steps if step.in_cooldown]
    for epoch in cooling:
        ax_count.axvspan(epoch - 0.5, epoch + 0.5, color="grey", alpha=0.25, linewidth=0,
                         label="cooldown: bad epochs ignored" if epoch == cooling[0] else None)
    ax_count.set(ylabel="bad epochs\nin a row", ylim=(0, max(max(counted), patience + 1) + 0.8))

    # 3. The lr each epoch trains with (every param group); a reduction ends its epoch.
    groups = len(steps[0].lrs_before)
    for group in range(groups):
        ax_lr.plot(x, [step.lrs_before[group] for step in steps], drawstyle="steps-mid",
                   marker=".", label="lr used" if groups == 1 else f"lr used, group {group}",
                   **style(group))
    reductions, skipped = steps.reductions, steps.skipped
    for epoch in reductions:                 # a dotted line at the end of each reducing epoch
        for ax in (ax_metric, ax_count, ax_lr):
            ax.axvline(epoch + 0.5, color=PALETTE[3], linestyle=":", linewidth=1.2)

    def ends(epochs):   # markers at the end of each epoch, at the lr after its step
        return [epoch + 0.5 for epoch in epochs], [steps[epoch - 1].lr_after for epoch in epochs]
    ax_lr.plot(*ends(reductions), "v", color=PALETTE[3], label="reduction (end of epoch)")
    if skipped:
        ax_lr.plot(*ends(skipped), "x", color="black", label="reduction skipped (eps or min_lr)")
    ax_lr.set(yscale="log", ylabel="learning rate\n(log scale)", xlabel="epoch")
    ax_lr.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs are whole numbers
    for ax, where in [(ax_metric, "best"), (ax_count, "upper left"), (ax_lr, "best")]:
        ax.legend(fontsize=8, loc=where)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title if title is not None else describe(steps), fontsize=10)
    return fig


# ---------------------------------------------------------------- bookkeeping


def _lr_text(*lrs: float) -> str:   # one lr, or one per param group
    return " ".join(f"{lr:.6g}" for lr in lrs)    # 0.1 * 0.1 = 0.010000000000000002 prints 0.01


def _as_floats(metrics) -> list[float]:
    try:
        return [float(m) for m in metrics]   # like torch's step(): accepts 0-dim tensors
    except (TypeError, ValueError):
        raise ValueError("metrics must be a list of numbers, one per epoch (for example "
                         f"history.val_loss), got {metrics!r:.80}.") from None


# Returns the lrs and min_lrs, one per param group. Any threshold and eps pass, as in torch.
def _check_arguments(lr, min_lr, mode, factor, patience, threshold_mode, cooldown):
    lrs = [float(x) for x in lr] if isinstance(lr, (list, tuple)) else [float(lr)]
    # Checked in the order torch checks them (optimizer first), so the first error is the same.
    if not lrs or min(lrs) < 0:
        raise ValueError(f"lr is empty or negative ({lr!r}): give one lr >= 0 (lr=0.1) or one "
                         "per param group (lr=[0.1, 0.01]).")
    # Torch checks factor < 1 only; a negative factor would set the lr to min_lr.
    if not 0 <= factor < 1.0:
        raise ValueError(f"factor must be >= 0 and < 1.0, got {factor!r}: the new lr is "
                         "lr * factor, so factor=0.5 halves it and factor=0.1 divides it by 10.")
    min_lrs = ([float(x) for x in min_lr] if isinstance(min_lr, (list, tuple))
               else [float(min_lr)] * len(lrs))
    if len(min_lrs) != len(lrs):
        raise ValueError(f"min_lr needs one entry per param group: got {len(min_lrs)} entries for "
                         f"{len(lrs)} group(s). Give one min_lr per group, or one number for all.")
    _check_modes(mode, threshold_mode)
    # Torch does not check these: with patience=-1 it reduces the lr on every step, even after an
    # improvement; a negative cooldown acts like 0.
    check_whole(patience, "patience (how many bad epochs in a row are tolerated)", minimum=0)
    check_whole(cooldown, "cooldown (epochs after a reduction that ignore bad epochs)", minimum=0)
    return lrs, min_lrs


# Rejects an unknown mode or threshold_mode with torch's exception type.
def _check_modes(mode: str, threshold_mode: str) -> None:
    for name, value, choices, hint in [
        ("mode", mode, ("min", "max"), 'use "min" for a loss and "max" for an accuracy'),
        ("threshold_mode", threshold_mode, ("rel", "abs"),
         '"rel" compares with best * (1 - threshold) (for "min"), "abs" with best - threshold; '
         'use "abs" if the metric can be negative')]:
        if value not in choices:
            # torch raises ValueError for an unknown string and (by accident) TypeError otherwise.
            error = ValueError if isinstance(value, str) else TypeError
            raise error(f"{name} must be {choices[0]!r} or {choices[1]!r}, got {value!r}: {hint}.")
