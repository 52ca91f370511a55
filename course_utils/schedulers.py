"""Previews of any lr schedule (`lr_trace`) and ExponentialLR's closed forms, without training."""
# lr_trace is the one place where a scheduler is stepped on a throwaway optimizer. The closed forms
# of ExponentialLR: lr_n = lr * gamma**n (n: `scheduler.step()` calls; lr: the starting lr).
# ReduceLROnPlateau, replayed step by step, lives in `course_utils.plateau_replay`.

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
    """The lr used at each step (epoch, or batch with step_per="batch"), without training.

    `scheduler_fn(optimizer)` builds the scheduler, e.g. `lambda opt: StepLR(opt, 3, gamma=0.5)`.
    ReduceLROnPlateau needs `metrics`, one per epoch (it steps once per epoch, even per batch)."""
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
        metrics = [] if metrics is None else list(metrics)
        if len(metrics) != epochs:
            raise ValueError("ReduceLROnPlateau decides from a metric: lr_trace needs metrics="
                             "[...], one per epoch (e.g. the validation losses); got "
                             f"{len(metrics)} values for epochs={epochs}.")

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
        raise ValueError(f"gamma={gamma} > 1: the lr grows and never halves (it doubles every "
                         f"{doubling:.3g} steps). Use 0 < gamma < 1 for a decaying lr.")
    # gamma == 1 keeps the lr constant: it never halves.
    return math.inf if gamma == 1 else math.log(0.5) / math.log(gamma)


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
