"""Explore ExponentialLR, lr_n = lr * gamma**n (n: epochs completed), with sliders."""

from __future__ import annotations

import math
from dataclasses import dataclass

from course_utils import plotting, schedulers
from course_utils._checks import check_whole

LR_FORMAT = ".3g"     # how the lr slider's readout and the plot's title write the starting lr


@dataclass(frozen=True)
class ExponentialView:
    """What the explorer shows for one setting of the sliders."""

    lr: float
    gamma: float                      # the per-epoch multiplier
    epochs: int
    per_batch: bool
    steps_per_epoch: int              # scheduler steps per epoch: 1 unless per_batch
    step_gamma: float                 # the gamma the scheduler is built with
    n: list[float]                    # epochs completed at each point: k / steps_per_epoch
    lrs: list[float]                  # the lr after n epochs, one per point
    epoch_lrs: list[float]            # the lr of per-epoch stepping after n = 0, 1, ..., epochs
    half_life: float                  # epochs until the lr halves (math.inf when gamma == 1)
    half_life_shown: bool             # whether the half-life falls inside the plotted epochs
    table: list[tuple[int, float]]    # (n, lr after n epochs) for a few n


def exponential_view(lr: float, gamma: float, epochs: int, *, per_batch: bool = False,
                     steps_per_epoch: int = 100) -> ExponentialView:
    """What the explorer draws for ExponentialLR(gamma) from lr over `epochs` epochs, stepped per
    epoch or per batch (gamma**(1/steps_per_epoch)). ValueError: lr <= 0, gamma <= 0 or > 1."""
    try:
        lr, gamma = float(lr), float(gamma)
    except (TypeError, ValueError):
        raise ValueError(f"lr and gamma must be numbers, got lr={lr!r}, gamma={gamma!r}.") from None
    if not 0 < lr < math.inf:
        raise ValueError(f"lr={lr!r}: the starting learning rate must be a positive number such as "
                         "0.05. A zero lr never moves the weights; a negative one climbs the loss.")
    # The closed forms check gamma: half_life raises for gamma <= 0 and for a growing gamma > 1.
    half_life = schedulers.half_life(gamma)
    epochs = check_whole(epochs, "epochs", minimum=1)
    steps_per_epoch = check_whole(steps_per_epoch, "steps_per_epoch", minimum=1)

    steps = steps_per_epoch if per_batch else 1
    # Per batch, gamma**(1/steps) meets the per-epoch curve at every epoch; per epoch it is gamma.
    step_gamma = schedulers.per_batch_gamma(gamma, steps)
    # Point k is the lr after k scheduler steps, i.e. after k / steps epochs.
    n = [k / steps for k in range(epochs * steps + 1)]
    lrs = schedulers.exponential_lr(lr, step_gamma, range(epochs * steps + 1))
    epoch_lrs = schedulers.exponential_lr(lr, gamma, range(epochs + 1))
    # Six evenly spaced epochs (fewer when epochs < 5), always the first and the last.
    rows = sorted({round(i * epochs / 5) for i in range(6)})
    table = [(row, lrs[row * steps]) for row in rows]
    return ExponentialView(lr, gamma, epochs, bool(per_batch), steps, step_gamma, n, lrs,
                           epoch_lrs, half_life, half_life <= epochs, table)


def format_table(view: ExponentialView) -> str:
    """The view's table as fixed-width text: epochs completed, lr, and lr / starting lr."""
    lines = [f"{'epochs done n':>13}  {'lr':>10}  {'lr / start':>10}"]
    # .4g: 0.1216, and a ratio under 1e-4 in scientific notation (1.216e-05), never 0.0000.
    lines += [f"{n:>13d}  {value:>10.3e}  {value / view.lr:>10.4g}" for n, value in view.table]
    lines.append(f"half-life ln(0.5)/ln(gamma) = {view.half_life:.2f} epochs"
                 if math.isfinite(view.half_life) else
                 "gamma = 1: the lr never changes, so it never halves.")
    return "\n".join(lines)


def draw_exponential(view: ExponentialView, ax):
    """Draw `view` into a matplotlib Axes: the lr curve (log axis) and the half-life marker."""
    if view.per_batch:
        ax.plot(view.n, view.lrs, label=f"per batch, gamma**(1/{view.steps_per_epoch}) "
                f"= {view.step_gamma:.5f}", **plotting.style(1))
    ax.step(range(view.epochs + 1), view.epoch_lrs, where="post", marker="o",
            markersize=3 if view.epochs <= 40 else 0,
            label=f"per epoch, gamma = {view.gamma:.3f}", **plotting.style(0))
    if view.half_life_shown:
        marker_style = {"color": plotting.PALETTE[3], "linestyle": ":", "linewidth": 1}
        ax.axhline(view.lr / 2, **marker_style)
        ax.axvline(view.half_life, label=f"half-life: {view.half_life:.2f} epochs", **marker_style)
    ax.set(yscale="log", xlabel="epochs completed, n", ylabel="learning rate (log scale)",
           xlim=(0, view.epochs))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    if math.isinf(view.half_life):
        what = "gamma = 1: a constant lr"
    elif view.half_life_shown:
        what = f"the lr halves every {view.half_life:.2f} epochs"
    else:
        what = f"half-life {view.half_life:.1f} epochs: beyond the plot"
    ax.set_title(f"lr_n = {view.lr:{LR_FORMAT}} · {view.gamma:.3f}^n: {what}", fontsize=10)
    return ax


def exponential_explorer(lr: float = 0.05, gamma: float = 0.9, epochs: int = 30,
                         steps_per_epoch: int = 100):
    """Sliders for the starting lr (1, 2, 5 per decade), gamma, epochs and per-batch stepping,
    redrawing the curve and the table. Returns an ipywidgets `interactive` (`.result`: the view)."""
    import ipywidgets as widgets

    exponential_view(lr, gamma, epochs, steps_per_epoch=steps_per_epoch)   # check the defaults
    lrs = sorted({float(f"{m}e{e}") for e in range(-5, 1) for m in (1, 2, 5)} - {2.0, 5.0}
                 | {float(lr)})
    style = {"description_width": "initial"}
    controls = {
        # 1, 2, 5 per decade, each labelled as the title writes it: the readout, the title and
        # the lr used are one number (a log slider used 10**-1.3 = 0.0501 and read "5.0e-2").
        "lr": widgets.SelectionSlider(options=[(f"{value:{LR_FORMAT}}", value) for value in lrs],
                                      value=float(lr), description="starting lr", style=style),
        "gamma": widgets.FloatSlider(value=gamma, min=0.5, max=1.0, step=0.005,
                                     readout_format=".3f", description="gamma", style=style),
        "epochs": widgets.IntSlider(value=epochs, min=1, max=100, description="epochs",
                                    style=style),
        "per_batch": widgets.Checkbox(value=False, description="step after every batch"),
        "steps_per_epoch": widgets.IntSlider(value=steps_per_epoch, min=1, max=500, disabled=True,
                                             description="batches per epoch", style=style),
    }

    # The batches-per-epoch slider is live only while stepping per batch.
    widgets.dlink((controls["per_batch"], "value"), (controls["steps_per_epoch"], "disabled"),
                  lambda per_batch: not per_batch)

    def update(lr, gamma, epochs, per_batch, steps_per_epoch):
        view = plotting.show_once(draw_exponential, exponential_view(
            lr, gamma, epochs, per_batch=per_batch, steps_per_epoch=steps_per_epoch))
        print(format_table(view))
        return view

    return widgets.interactive(update, **controls)
