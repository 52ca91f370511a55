"""Plots for the series: schedule galleries, overlaid histories, image grids."""
# Each series gets an Okabe-Ito colour (safe for colour-blind readers) and its own line style, so
# curves stay apart in grey print too; learning rates, and a loss spanning more than two powers
# of ten (a run that blew up), go on a log axis.

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour vision.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1)),
              (0, (8, 2, 2, 2)))
LABELS = {"lr": "learning rate", "train_loss": "training loss", "val_loss": "validation loss",
          "train_acc": "training accuracy", "val_acc": "validation accuracy",
          "seconds": "seconds per epoch"}


def style(index: int) -> dict:
    """Colour and line style of the index-th series, for plt.plot(..., **style(i))."""
    return {"color": PALETTE[index % len(PALETTE)],
            "linestyle": LINESTYLES[index % len(LINESTYLES)]}


def show_once(draw, result):
    """`draw(result, ax)` on a new figure, shown with `display_once`; returns `result`."""
    fig, ax = plt.subplots(figsize=(7.5, 3.8), constrained_layout=True)
    draw(result, ax)
    display_once(fig)
    return result


def display_once(fig) -> None:
    """Display `fig` and close it, so that an explorer's redraws never pile up figures."""
    from IPython.display import display  # imported here: only a running notebook needs it

    display(fig)
    plt.close(fig)


def _lr_axis(ax) -> None:
    ax.set_yscale("log")
    ax.set_ylabel("learning rate (log scale)")


def plot_schedules(traces: dict, *, xlabel: str = "epoch", ncols: int = 4,
                   title: str | None = None):
    """One small panel per schedule: the lr used at each step, on a log axis. A value is a list
    of lrs (at steps 1, 2, ...) or a pair (x, lrs), e.g. fractional epochs, stepped per batch."""
    nrows = math.ceil(len(traces) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.6 * nrows), squeeze=False,
                             constrained_layout=True)
    for index, (ax, (name, trace)) in enumerate(zip(axes.flat, traces.items())):
        steps, lrs = trace if isinstance(trace, tuple) else (range(1, len(trace) + 1), trace)
        ax.plot(steps, lrs, marker="o" if len(lrs) <= 30 else None, markersize=3, **style(index))
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel)
        _lr_axis(ax)
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[len(traces):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig


def _spans_decades(histories: dict, metric: str, decades: float = 2.0) -> bool:
    # Whether the finite, positive values of `metric` span more than `decades` powers of 10.
    values = [value for history in histories.values() for value in history.column(metric)
              if math.isfinite(value) and value > 0]
    return bool(values) and max(values) > 10**decades * min(values)


def plot_histories(histories: dict, metrics=("val_loss", "val_acc", "lr"), *,
                   title: str | None = None):
    """Overlay several runs (name -> History), one panel per metric, against the epoch."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.6), squeeze=False,
                             constrained_layout=True)
    for ax, metric in zip(axes.flat, metrics):
        for index, (name, history) in enumerate(histories.items()):
            ax.plot(history.epochs, history.column(metric), label=name, marker=".", **style(index))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))     # epochs are whole numbers
        ax.set_ylabel(LABELS.get(metric, metric))
        if metric == "lr":
            _lr_axis(ax)
        elif metric.endswith("loss") and _spans_decades(histories, metric):
            ax.set_yscale("log")         # a loss that blew up would flatten every other curve
            ax.set_ylabel(f"{LABELS.get(metric, metric)} (log scale)")
        ax.grid(True, alpha=0.3)
    axes.flat[-1].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return fig


def show_images(split, count: int = 20, *, ncols: int = 10, title: str | None = None):
    """The first `count` images of a Split with their class names."""
    nrows = math.ceil(count / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.45 * nrows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < min(count, len(split)):
            ax.imshow(split.images[index].cpu().numpy(), cmap="gray_r")
            ax.set_title(split.classes[int(split.labels[index])], fontsize=7)
    if title:
        fig.suptitle(title)
    return fig
