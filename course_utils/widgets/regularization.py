"""Explorers for notebooks 04 (BatchNorm's running statistics) and 05 (Dropout, train vs eval)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from course_utils import plotting
from course_utils._checks import check_whole

INPUTS = ("constant 1", "ReLU activations")


# ----------------------------------------------------------------------------- Dropout

@dataclass
class DropoutSample:
    """The same inputs passed through `nn.Dropout(p)` once in train mode and once in eval mode."""

    p: float
    inputs: torch.Tensor        # (n,)
    train: torch.Tensor         # (n,) train mode: zeros and inputs / (1 - p)
    eval: torch.Tensor          # (n,) eval mode: the inputs, unchanged

    def stats(self) -> dict:
        """Mean, variance and fraction of zeros of the inputs and of both outputs."""
        return {name: {"mean": values.mean().item(), "var": values.var().item(),
                       "zero_fraction": (values == 0).double().mean().item()}
                for name, values in (("inputs", self.inputs), ("train", self.train),
                                     ("eval", self.eval))}


def dropout_outputs(p: float, *, inputs: str = "ReLU activations", n: int = 20_000,
                    seed: int = 0) -> DropoutSample:
    """Draw `n` inputs and pass them through `nn.Dropout(p)` in train and in eval mode (with a
    private random stream: the global one is left as it was, so no other result changes)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p is the probability of zeroing a value, in [0, 1); got {p}. "
                         "(p = 1 would zero everything and the 1/(1-p) scale is undefined.)")
    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {', '.join(map(repr, INPUTS))}; got {inputs!r}.")
    n = check_whole(n, "n (the number of inputs to draw)", minimum=2)
    dropout = nn.Dropout(p)
    with torch.random.fork_rng(devices=[]):      # a private random stream
        torch.manual_seed(seed)
        # "ReLU activations": what a ReLU layer typically emits, many zeros, a skewed positive tail
        x = torch.ones(n) if inputs == "constant 1" else torch.relu(torch.randn(n) + 0.5)   # (n,)
        train = dropout.train()(x)
    return DropoutSample(p, x, train, dropout.eval()(x))


def draw_dropout(sample: DropoutSample, ax) -> None:
    """Histograms of the train-mode and eval-mode outputs, with their means marked."""
    stats = sample.stats()
    high = max(sample.train.max().item(), sample.eval.max().item(), 1e-6)
    bins = torch.linspace(0, high * 1.02, 41).tolist()
    for index, mode in enumerate(("eval", "train")):
        label = (f"{mode} mode: mean {stats[mode]['mean']:.3f}, var {stats[mode]['var']:.3f}, "
                 f"{stats[mode]['zero_fraction']:.0%} zeros")
        ax.hist(getattr(sample, mode).tolist(), bins=bins, histtype="step", linewidth=2,
                label=label, **plotting.style(index))
        ax.axvline(stats[mode]["mean"], color=plotting.PALETTE[index], linestyle=":", linewidth=1.5)
    ax.set(yscale="log", xlabel="output value", ylabel="count (log scale)",
           title=f"Dropout(p={sample.p:.2f}): the same mean, a wider spread in train mode")
    ax.legend(fontsize=8, loc="upper right")


def dropout_explorer():
    """A p slider and an input choice redrawing both histograms (`.result`: the latest stats)."""
    import ipywidgets as widgets

    def update(p=0.5, inputs=INPUTS[1]):
        return plotting.show_once(draw_dropout, dropout_outputs(p, inputs=inputs)).stats()

    p = widgets.FloatSlider(value=0.5, min=0.0, max=0.95, step=0.05, description="p (drop)")
    inputs = widgets.Dropdown(options=INPUTS, value=INPUTS[1], description="inputs")
    return widgets.interactive(update, p=p, inputs=inputs)


# ----------------------------------------------------------------------------- BatchNorm

@dataclass
class RunningStatsTrace:
    """One BatchNorm1d channel fed batches whose true mean jumps from 0 to `shift`."""

    momentum: float | None
    shift_at: int                   # the first batch drawn around the new mean (0-based)
    true_means: list[float]         # the mean each batch was drawn around
    batch_means: list[float]        # the mean of each batch
    running_means: list[float]      # bn.running_mean after each batch

    def batches_to(self, fraction: float = 0.9) -> int | None:
        """Batches after the shift until the running mean covers `fraction` of the jump, or None."""
        low, high = self.true_means[0], self.true_means[-1]
        return next((k for k, value in enumerate(self.running_means[self.shift_at:], start=1)
                     if value - low >= fraction * (high - low)), None)


def batches_to_follow(momentum: float | None, fraction: float = 0.9, shift_at: int = 0) -> int:
    """The closed form without batch noise: k batches after a jump the running mean has covered
    1 - (1 - momentum)^k of it; with momentum=None (a plain average) k / (shift_at + k)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}.")
    if momentum is None:
        return max(1, math.ceil(fraction * shift_at / (1.0 - fraction) - 1e-9))
    if not 0.0 < momentum <= 1.0:
        raise ValueError(f"momentum must be in (0, 1] or None, got {momentum}.")
    if momentum == 1.0:
        return 1
    return math.ceil(math.log(1.0 - fraction) / math.log(1.0 - momentum) - 1e-9)


def running_stats_trace(momentum: float | None, *, batches: int = 120, shift_at: int = 40,
                        shift: float = 3.0, batch_size: int = 32,
                        seed: int = 0) -> RunningStatsTrace:
    """Feed `nn.BatchNorm1d(1, momentum=momentum)` in train mode with `batches` batches drawn
    from N(0, 1), then from N(shift, 1) from batch `shift_at` on; record its running mean."""
    if momentum is not None and not 0.0 < momentum <= 1.0:
        raise ValueError(f"momentum is the weight of the newest batch, in (0, 1], or None for a "
                         f"plain average; got {momentum}. (PyTorch's 0.1 is Keras' 0.9.)")
    batches = check_whole(batches, "batches", minimum=2)
    if not 0 < shift_at < batches:
        raise ValueError(f"shift_at must be between 1 and batches - 1 = {batches - 1}, "
                         f"got {shift_at}.")
    batch_size = check_whole(batch_size, "batch_size (BatchNorm in train mode needs two values "
                             "per channel)", minimum=2)
    bn = nn.BatchNorm1d(1, momentum=momentum).train()
    true_means = [shift if index >= shift_at else 0.0 for index in range(batches)]
    batch_means, running_means = [], []
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mean in true_means:
            X = torch.randn(batch_size, 1, generator=generator) + mean     # (B, 1)
            bn(X)
            batch_means.append(X.mean().item())
            running_means.append(bn.running_mean.item())
    return RunningStatsTrace(momentum, int(shift_at), true_means, batch_means, running_means)


def draw_running_stats(trace: RunningStatsTrace, ax) -> None:
    """Batch means as dots, the running mean as a line, the true mean as a step."""
    steps = range(1, len(trace.true_means) + 1)
    ax.plot(steps, trace.true_means, label="true mean of the input", **plotting.style(7))
    ax.plot(steps, trace.batch_means, ".", color=plotting.PALETTE[1], markersize=4,
            label="mean of each batch")
    name = "None (plain average)" if trace.momentum is None else f"{trace.momentum:.3g}"
    ax.plot(steps, trace.running_means, linewidth=2, label=f"running_mean, momentum={name}",
            **plotting.style(0))
    k = trace.batches_to(0.9)
    ax.axvline(trace.shift_at + 0.5, color="grey", linewidth=0.8)         # the jump
    low, high = trace.true_means[0], trace.true_means[-1]
    ax.axhline(low + 0.9 * (high - low), color="grey", linestyle=":", linewidth=0.8)   # 90 %
    follow = f"90 % of the jump after {k} batches" if k else "not at 90 % of the jump yet"
    ax.set(xlabel="batch", ylabel="mean of the channel",
           title=f"How fast running_mean follows a jump: {follow}")
    ax.legend(fontsize=8, loc="center right")
    ax.grid(True, alpha=0.3)


def batchnorm_momentum_explorer():
    """A momentum slider (log scale) and a plain-average checkbox (`.result`: the latest trace)."""
    import ipywidgets as widgets

    def update(momentum=0.1, plain_average=False):
        return plotting.show_once(draw_running_stats,
                                  running_stats_trace(None if plain_average else momentum))

    momentum = widgets.FloatLogSlider(value=0.1, base=10, min=-3, max=0, step=0.1,
                                      description="momentum")
    plain_average = widgets.Checkbox(value=False, description="momentum=None")
    return widgets.interactive(update, momentum=momentum, plain_average=plain_average)

