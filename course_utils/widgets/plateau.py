"""A ReduceLROnPlateau simulator: what the scheduler sees, counts and decides, epoch by epoch.

- `plateau_trace(metrics, patience=3, ...)` replays the scheduler on one metric value per epoch
  (with `course_utils.plateau.replay_plateau`, which matches torch exactly) and adds what a plot
  needs: the bound each value had to beat, the bad epochs counted, cooldown, the reductions.
- `draw_plateau(trace)` draws it: metric, running best and threshold band; bad-epoch counts and
  cooldown; the lr on a log axis with a marker at every reduction. `format_steps(trace)` prints it.
- `plateau_explorer(curves)` wires sliders and dropdowns for every parameter to those two.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from course_utils.plateau import PlateauStep, improvement_bound, replay_plateau
from course_utils.plotting import PALETTE, style

# Built-in synthetic curves: name -> (shape, the mode that fits it).
SYNTHETIC = {
    "synthetic: loss that levels off": ("levels_off", "min"),
    "synthetic: loss that turns up (overfitting)": ("overfits", "min"),
    "synthetic: accuracy that levels off": ("accuracy", "max"),
}


def synthetic_curve(shape: str = "levels_off", *, epochs: int = 40, noise: float = 0.02,
                    seed: int = 0) -> list[float]:
    """An invented validation curve, one value per epoch, plus Gaussian noise of std `noise`.

    shape: "levels_off" (a loss falling to 0.35), "overfits" (a loss that falls, then rises
    after epoch 12) or "accuracy" (rising to 0.90). The same seed gives the same curve.
    """
    shapes = {shape_name for shape_name, _ in SYNTHETIC.values()}
    if shape not in shapes:
        raise ValueError(f"shape must be one of {sorted(shapes)}, got {shape!r}.")
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"epochs must be a whole number >= 1, got {epochs!r}.")
    if not noise >= 0:
        raise ValueError(f"noise is a standard deviation, so it must be >= 0, got {noise!r}.")
    rng = random.Random(seed)
    values = []
    for epoch in range(1, epochs + 1):
        decay = math.exp(-epoch / 5)
        base = {"levels_off": 0.35 + 0.9 * decay,
                "overfits": 0.35 + 0.9 * decay + 0.00025 * max(0, epoch - 12) ** 2,
                "accuracy": 0.90 - 0.5 * decay}[shape]
        values.append(base + noise * rng.gauss(0.0, 1.0))
    return values


@dataclass
class PlateauTrace:
    """A replay plus what a plot of it needs; one entry per epoch in every list."""

    steps: list[PlateauStep]
    bound: list[float]       # the value the metric had to beat (NaN in epoch 1: anything does)
    counted: list[int]       # bad epochs in a row, as compared with patience (before any reset)
    in_cooldown: list[bool]  # this epoch's bad epoch was ignored: cooldown was running
    triggered: list[bool]    # counted > patience: a reduction was due (maybe skipped: eps, min_lr)
    params: dict = field(default_factory=dict)

    @property
    def epochs(self) -> list[int]:
        return [s.epoch for s in self.steps]

    @property
    def metric(self) -> list[float]:
        return [s.metric for s in self.steps]

    @property
    def best(self) -> list[float]:
        return [s.best for s in self.steps]

    @property
    def lr_used(self) -> list[float]:
        return [s.lr_before for s in self.steps]

    @property
    def reductions(self) -> list[int]:
        """Epochs whose step() changed an lr (the smaller lr is used from the next epoch)."""
        return [s.epoch for s in self.steps if s.lrs_after != s.lrs_before]

    @property
    def skipped(self) -> list[int]:
        """Epochs where a reduction was due but changed no lr (eps or min_lr stopped it)."""
        return [s.epoch for s, t in zip(self.steps, self.triggered)
                if t and s.lrs_after == s.lrs_before]


def _as_metrics(metrics) -> list[float]:
    try:
        values = [float(m) for m in metrics]
    except (TypeError, ValueError):
        raise ValueError("metrics must be a list of numbers, one per epoch (for example "
                         f"history.val_loss), got {metrics!r:.80}.") from None
    if not values:
        raise ValueError("metrics is empty: give one value per epoch, e.g. history.val_loss.")
    return values


def plateau_trace(metrics, *, lr: float | Sequence[float] = 0.1, mode: str = "min",
                  factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                  threshold_mode: str = "rel", cooldown: int = 0,
                  min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8) -> PlateauTrace:
    """Replay ReduceLROnPlateau (torch's defaults) on `metrics` and explain every step."""
    params = {"lr": lr, "mode": mode, "factor": factor, "patience": patience,
              "threshold": threshold, "threshold_mode": threshold_mode, "cooldown": cooldown,
              "min_lr": min_lr, "eps": eps}
    steps = replay_plateau(_as_metrics(metrics), **params)
    bound, counted, in_cooldown, triggered = [], [], [], []
    best, bad, cooldown_left = math.nan, 0, 0        # the state before the first step
    for step in steps:
        finite = math.isfinite(best)
        bound.append(improvement_bound(best, mode=mode, threshold=threshold,
                                       threshold_mode=threshold_mode) if finite else math.nan)
        count = 0 if step.improved else bad + 1       # torch's order: count, then cooldown
        in_cooldown.append(cooldown_left > 0)
        if cooldown_left > 0:
            count = 0
        counted.append(count)
        triggered.append(count > patience)
        best, bad, cooldown_left = step.best, step.num_bad_epochs, step.cooldown_counter
    return PlateauTrace(steps, bound, counted, in_cooldown, triggered, params)


def _lr_text(lr: float) -> str:
    return f"{lr:.6g}"     # 0.1 * 0.1 = 0.010000000000000002 prints as 0.01


def describe(trace: PlateauTrace) -> str:
    """One sentence: how many reductions, when, and the lr before and after."""
    reductions = trace.reductions
    start, end = trace.steps[0].lr_before, trace.steps[-1].lr_after
    if not reductions:
        text = f"No reduction in {len(trace.steps)} epochs; the lr stays {_lr_text(start)}"
    else:
        epochs = ", ".join(str(e) for e in reductions)
        text = (f"{len(reductions)} reduction{'s' * (len(reductions) > 1)}, at the end of "
                f"epoch{'s' * (len(reductions) > 1)} {epochs}: lr {_lr_text(start)} -> "
                f"{_lr_text(end)}")
    if trace.skipped:
        text += f"; reduction due but skipped (eps or min_lr) in epoch(s) " \
                f"{', '.join(str(e) for e in trace.skipped)}"
    return text + "."


def format_steps(trace: PlateauTrace, *, precision: int = 4) -> str:
    """The replay as a table: one row per scheduler.step(metric), lrs of every param group."""
    p = precision
    header = (f"{'epoch':>5} {'metric':>{p + 4}} {'best':>{p + 4}} {'better?':>7} {'bad':>4} "
              f"{'cooldown':>8}  {'lr used':<10} lr next")
    rows = [header]
    for step, counted, triggered in zip(trace.steps, trace.counted, trace.triggered):
        lr_used = " ".join(_lr_text(x) for x in step.lrs_before)
        lr_next = " ".join(_lr_text(x) for x in step.lrs_after)
        note = ""
        if triggered:
            note = "<- reduced" if step.lrs_after != step.lrs_before else "<- due, skipped"
        rows.append(f"{step.epoch:>5} {step.metric:>{p + 4}.{p}f} {step.best:>{p + 4}.{p}f} "
                    f"{'yes' if step.improved else 'no':>7} {counted:>4} "
                    f"{step.cooldown_counter:>8}  {lr_used:<10} {lr_next:<10} {note}".rstrip())
    return "\n".join(rows)


def draw_plateau(trace: PlateauTrace, fig=None, *, metric_label: str = "monitored metric",
                 title: str | None = None):
    """Draw `trace` into `fig` (a new figure if None) as three panels sharing the epoch axis."""
    if fig is None:
        fig = plt.figure(figsize=(9, 7), constrained_layout=True)
    fig.clear()
    ax_metric, ax_count, ax_lr = fig.subplots(3, 1, sharex=True,
                                              gridspec_kw={"height_ratios": [3, 1.4, 1.8]})
    x, steps = trace.epochs, trace.steps
    best_before = [math.nan] + trace.best[:-1]

    # 1. The metric, the best so far, and the band a value must get past to count as better.
    ax_metric.fill_between(x, trace.bound, best_before, step="mid", color=PALETTE[2], alpha=0.25,
                           label="threshold band (not better enough)")
    ax_metric.plot(x, trace.best, drawstyle="steps-mid", label="best so far", **style(1))
    ax_metric.plot(x, trace.metric, label=metric_label, **style(0))
    better = [s for s in steps if s.improved]
    worse = [s for s in steps if not s.improved]
    ax_metric.plot([s.epoch for s in better], [s.metric for s in better], "o",
                   color=PALETTE[2], label="better: new best")
    ax_metric.plot([s.epoch for s in worse], [s.metric for s in worse], "x",
                   color=PALETTE[3], label="not better: a bad epoch")
    ax_metric.set_ylabel(metric_label)
    ax_metric.ticklabel_format(axis="y", useOffset=False)   # 1.0, not "+1" and 0.0
    ax_metric.legend(fontsize=8, loc="best")

    # 2. Bad epochs in a row, against patience; cooldown epochs shaded.
    colours = [PALETTE[3] if t else PALETTE[5] for t in trace.triggered]
    ax_count.bar(x, trace.counted, color=colours, width=0.7)
    patience = trace.params.get("patience", 0)
    ax_count.axhline(patience + 0.5, color="black", linestyle="--", linewidth=1,
                     label=f"reduce when the count passes patience = {patience}")
    for epoch, cooling in zip(x, trace.in_cooldown):
        if cooling:
            ax_count.axvspan(epoch - 0.5, epoch + 0.5, color="grey", alpha=0.25, linewidth=0)
    if any(trace.in_cooldown):
        ax_count.plot([], [], "s", color="grey", alpha=0.4, label="cooldown: bad epochs ignored")
    ax_count.set_ylabel("bad epochs\nin a row")
    ax_count.set_ylim(0, max(max(trace.counted), patience + 1) + 0.8)
    ax_count.legend(fontsize=8, loc="upper left")

    # 3. The lr each epoch trains with (every param group); a reduction ends its epoch.
    for group in range(len(steps[0].lrs_before)):
        label = "lr used" if len(steps[0].lrs_before) == 1 else f"lr used, group {group}"
        ax_lr.plot(x, [s.lrs_before[group] for s in steps], drawstyle="steps-mid", marker=".",
                   label=label, **style(group))
    for epoch in trace.reductions:
        for ax in (ax_metric, ax_count, ax_lr):
            ax.axvline(epoch + 0.5, color=PALETTE[3], linestyle=":", linewidth=1.2)
    lr_after = {s.epoch: s.lr_after for s in steps}
    ax_lr.plot([e + 0.5 for e in trace.reductions], [lr_after[e] for e in trace.reductions],
               "v", color=PALETTE[3], label="reduction (end of epoch)")
    if trace.skipped:
        ax_lr.plot([e + 0.5 for e in trace.skipped], [lr_after[e] for e in trace.skipped], "x",
                   color="black", label="reduction skipped (eps or min_lr)")
    ax_lr.set_yscale("log")
    ax_lr.set_ylabel("learning rate\n(log scale)")
    ax_lr.set_xlabel("epoch")
    ax_lr.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs are whole numbers
    ax_lr.legend(fontsize=8, loc="best")
    for ax in (ax_metric, ax_count, ax_lr):
        ax.grid(True, alpha=0.3)
    fig.suptitle(title if title is not None else describe(trace), fontsize=10)
    return fig


def plateau_explorer(curves: dict | None = None, *, epochs: int = 40, lr: float = 0.1):
    """Sliders and dropdowns for every ReduceLROnPlateau parameter over a chosen curve.

    `curves` maps a name to recorded values, e.g. {"my run": history.val_loss}; the built-in
    synthetic curves follow (their noise and seed sliders act on them only). Returns the widget;
    `widget.controls` holds the controls by name and `widget.result` the latest PlateauTrace.
    """
    import ipywidgets as widgets
    from IPython.display import display

    recorded = {name: _as_metrics(values) for name, values in (curves or {}).items()}
    names = list(recorded) + list(SYNTHETIC)
    slider = {"continuous_update": False, "style": {"description_width": "initial"}}
    plain = {"style": {"description_width": "initial"}}
    controls = {
        "curve": widgets.Dropdown(options=names, value=names[0], description="curve", **plain),
        "noise": widgets.FloatSlider(value=0.02, min=0.0, max=0.1, step=0.005,
                                     readout_format=".3f", description="noise (synthetic)",
                                     **slider),
        "seed": widgets.IntSlider(value=0, min=0, max=20, description="noise seed", **slider),
        "lr": widgets.FloatLogSlider(value=lr, base=10, min=-4, max=0, step=0.1,
                                     description="start lr", **slider),
        "mode": widgets.Dropdown(options=["min", "max"], value="min", description="mode", **plain),
        "factor": widgets.FloatSlider(value=0.1, min=0.05, max=0.95, step=0.05,
                                      description="factor", **slider),
        "patience": widgets.IntSlider(value=3, min=0, max=15, description="patience", **slider),
        "threshold": widgets.FloatLogSlider(value=1e-4, base=10, min=-6, max=-0.5, step=0.25,
                                            readout_format=".1e", description="threshold",
                                            **slider),
        "threshold_mode": widgets.Dropdown(options=["rel", "abs"], value="rel",
                                           description="threshold_mode", **plain),
        "cooldown": widgets.IntSlider(value=0, min=0, max=10, description="cooldown", **slider),
        "min_lr": widgets.Dropdown(options=[("0", 0.0), ("1e-5", 1e-5), ("1e-4", 1e-4),
                                            ("1e-3", 1e-3), ("1e-2", 1e-2)], value=0.0,
                                   description="min_lr", **plain),
        "eps": widgets.Dropdown(options=[("1e-8 (default)", 1e-8), ("1e-5", 1e-5),
                                         ("1e-3", 1e-3), ("1e-2", 1e-2)], value=1e-8,
                                description="eps", **plain),
    }
    summary = widgets.HTML()
    box = widgets.VBox()

    def on_curve(change):    # a built-in accuracy curve wants mode="max", a loss "min"
        if change["new"] in SYNTHETIC:
            controls["mode"].value = SYNTHETIC[change["new"]][1]
    controls["curve"].observe(on_curve, names="value")

    def update(curve, noise, seed, **params):
        if curve in SYNTHETIC:
            metrics = synthetic_curve(SYNTHETIC[curve][0], epochs=epochs, noise=noise, seed=seed)
        else:
            metrics = recorded[curve]
        box.result = plateau_trace(metrics, **params)
        summary.value = f"<b>{describe(box.result)}</b>"
        fig = draw_plateau(box.result, metric_label=curve.split(": ")[-1], title="")
        display(fig)
        plt.close(fig)      # shown once as an image; keeps figures from piling up

    output = widgets.interactive_output(update, controls)
    rows = [["curve", "noise", "seed"], ["lr", "mode", "factor", "patience"],
            ["threshold", "threshold_mode", "cooldown"], ["min_lr", "eps"]]
    box.children = [widgets.HBox([controls[name] for name in row]) for row in rows]
    box.children += (summary, output)
    box.controls = controls
    return box
