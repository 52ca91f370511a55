"""Learning-rate schedules without training: preview any scheduler, and ExponentialLR by hand.

- `lr_trace(lambda opt: ExponentialLR(opt, gamma=0.9), epochs=20)`: the lr each epoch (or batch)
  would use, to plot a schedule before training with it; the one place where a scheduler is
  stepped on a throwaway optimizer.
- `exponential_lr`, `half_life`, `gamma_for_target`, `per_batch_gamma`: closed forms of
  ExponentialLR, lr_n = lr * gamma**n (n: `scheduler.step()` calls; lr: the starting lr).

ReduceLROnPlateau, replayed step by step, lives in `course_utils.plateau_replay`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from course_utils._checks import check_gamma, check_positive, check_whole


def lr_trace(scheduler_fn: Callable[[Optimizer], LRScheduler], *, epochs: int, lr: float = 0.1,
             steps_per_epoch: int = 1, step_per: str = "epoch",
             metrics: Iterable[float] | None = None) -> list[float]:
    """The lr a training run would use at each step, computed without training.

    `scheduler_fn(optimizer)` builds the scheduler, e.g. `lambda opt: StepLR(opt, 3, gamma=0.5)`.
    step_per="epoch": the lr used in epoch 1, 2, ...; step_per="batch": epochs * steps_per_epoch
    values, the scheduler stepped after every batch (OneCycleLR). ReduceLROnPlateau needs
    `metrics`, one per epoch (it steps once per epoch: there is no per-batch metric)."""
    epochs = check_whole(epochs, "epochs", minimum=1)
    steps_per_epoch = check_whole(steps_per_epoch, "steps_per_epoch", minimum=1)
    if step_per not in ("epoch", "batch"):
        raise ValueError(f"step_per must be 'epoch' or 'batch', got {step_per!r}.")
    if not callable(scheduler_fn):
        raise TypeError("lr_trace needs a function that builds the scheduler from an optimizer, "
                        "e.g. lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.9); "
                        f"got {scheduler_fn!r}.")
    # A one-number stand-in for a model: a scheduler only needs an optimizer to adjust.
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = scheduler_fn(optimizer)
    is_plateau = isinstance(scheduler, ReduceLROnPlateau)
    if is_plateau:
        metrics = _one_metric_per_epoch(metrics, epochs)

    lrs = []
    for epoch in range(epochs):
        for _ in range(steps_per_epoch if step_per == "batch" else 1):
            lrs.append(float(optimizer.param_groups[0]["lr"]))  # the lr this step trains with
            optimizer.step()  # before scheduler.step(), as in training (torch warns otherwise)
            if step_per == "batch" and not is_plateau:
                scheduler.step()
        if is_plateau:
            scheduler.step(metrics[epoch])
        elif step_per == "epoch":
            scheduler.step()
    return lrs


def exponential_lr(lr: float, gamma: float, n: int | Iterable[int]) -> float | list[float]:
    """lr * gamma**n: ExponentialLR's lr after n scheduler.step() calls (a list for many n)."""
    check_positive(lr, "lr (the starting learning rate)")
    check_gamma(gamma)
    if isinstance(n, Iterable):
        return [exponential_lr(lr, gamma, k) for k in n]
    n = check_whole(n, "n (the number of scheduler.step() calls)", minimum=0)
    return lr * gamma**n


def half_life(gamma: float) -> float:
    """Scheduler steps until the lr halves: the h with gamma**h == 0.5 (math.inf for gamma == 1)."""
    check_gamma(gamma)
    if gamma > 1:
        doubling = math.log(2) / math.log(gamma)
        raise ValueError(f"gamma={gamma} > 1 multiplies the lr by more than 1 at every step, so "
                         f"the lr grows and never halves (it doubles every {doubling:.3g} steps). "
                         "Use 0 < gamma < 1 for a decaying lr.")
    if gamma == 1:
        return math.inf  # a constant lr never halves
    return math.log(0.5) / math.log(gamma)


def gamma_for_target(lr: float, target_lr: float, steps: int) -> float:
    """The gamma that takes ExponentialLR from lr to target_lr in `steps` scheduler steps."""
    check_positive(lr, "lr (the starting learning rate)")
    check_positive(target_lr, "target_lr")
    steps = check_whole(steps, "steps", minimum=1)
    return (target_lr / lr) ** (1 / steps)


def per_batch_gamma(gamma: float, steps_per_epoch: int) -> float:
    """The per-batch gamma that gives the same decay per epoch as `gamma` stepped once per epoch."""
    check_gamma(gamma)
    steps_per_epoch = check_whole(steps_per_epoch, "steps_per_epoch", minimum=1)
    return gamma ** (1 / steps_per_epoch)


def _one_metric_per_epoch(metrics, epochs: int) -> list:
    if metrics is None:
        raise ValueError("ReduceLROnPlateau decides from a metric, so lr_trace needs metrics=[...],"
                         f" one value per epoch ({epochs} values), e.g. the validation losses.")
    metrics = list(metrics)
    if len(metrics) != epochs:
        raise ValueError(f"metrics has {len(metrics)} values but epochs={epochs}: give one metric "
                         "per epoch.")
    return metrics
