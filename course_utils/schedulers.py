"""Learning-rate schedulers: build them by name, preview them, and compute ExponentialLR by hand.

- `make_scheduler("exponential", optimizer, gamma=0.9)` builds a torch scheduler from a short name
  and catches mistakes that torch lets through (gamma <= 0) or reports tersely (`verbose=`).
- `lr_trace("cosine", epochs=20, T_max=20)` returns the lr each epoch (or batch) would use, without
  training, so a schedule can be plotted before it is used.
- `exponential_lr`, `half_life`, `gamma_for_target`, `per_batch_gamma`: closed forms of
  ExponentialLR, lr_n = lr0 * gamma**n, where n counts `scheduler.step()` calls.
- `replay_plateau`, `is_improvement`, `improvement_bound` (from `course_utils.plateau`): a readable
  ReduceLROnPlateau that shows its state after every epoch.
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer, lr_scheduler
from torch.optim.lr_scheduler import LRScheduler

from course_utils.plateau import (  # noqa: F401  (re-exported)
    PlateauStep, improvement_bound, is_improvement, replay_plateau)

SCHEDULERS: dict[str, type[LRScheduler]] = {
    "lambda": lr_scheduler.LambdaLR,
    "step": lr_scheduler.StepLR,
    "multistep": lr_scheduler.MultiStepLR,
    "exponential": lr_scheduler.ExponentialLR,
    "cosine": lr_scheduler.CosineAnnealingLR,
    "onecycle": lr_scheduler.OneCycleLR,
    "plateau": lr_scheduler.ReduceLROnPlateau,
}


def _scheduler_class(name: str) -> type[LRScheduler]:
    """The torch class for a short name ("exponential") or class name ("ExponentialLR")."""
    if not isinstance(name, str):
        raise TypeError(f"The scheduler name must be a string such as 'exponential', got {name!r}.")
    # Both spellings map to the short name, so a suggestion can always use the short one.
    aliases = {short: short for short in SCHEDULERS}
    aliases.update({cls.__name__.lower(): short for short, cls in SCHEDULERS.items()})
    key = name.strip().lower()
    if key in aliases:
        return SCHEDULERS[aliases[key]]
    closest = difflib.get_close_matches(key, aliases, n=1)
    hint = f" Did you mean {aliases[closest[0]]!r}?" if closest else ""
    raise ValueError(
        f"Unknown scheduler {name!r}.{hint} Available: {', '.join(SCHEDULERS)} "
        "(the torch class names, e.g. 'ExponentialLR', work too)."
    )


def _check_gamma(gamma: float) -> None:
    # `not gamma > 0` (rather than `gamma <= 0`) also rejects NaN.
    if not gamma > 0:
        raise ValueError(
            f"gamma={gamma!r}, but gamma is the per-step multiplier of the lr "
            "(lr <- lr * gamma at every scheduler.step()), so it must be positive. "
            "Use 0 < gamma < 1 to decay (e.g. 0.9), or gamma > 1 to grow the lr (an LR range test)."
        )


def _check_positive(value: float, what: str) -> None:
    if not value > 0:
        raise ValueError(f"{what} must be positive, got {value!r}.")


def check_whole(value: int, what: str, minimum: int) -> int:
    """`value` as an int, or a ValueError if it is not a whole number >= minimum."""
    try:
        if isinstance(value, bool):     # True is an int to Python, never a count of epochs
            raise TypeError
        number = operator.index(value)  # accepts int and numpy ints, rejects 2.5
    except TypeError:
        raise ValueError(f"{what} must be a whole number, got {value!r}.") from None
    if number < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {number}.")
    return number


def make_scheduler(name: str, optimizer: Optimizer, **kwargs) -> LRScheduler:
    """Build the torch scheduler `name` (a key of SCHEDULERS or a torch class name) for `optimizer`.

    kwargs go to the torch constructor unchanged. Raises ValueError for an unknown name or an
    ExponentialLR gamma <= 0, and TypeError for `verbose=` (removed in PyTorch 2.7).
    """
    scheduler_class = _scheduler_class(name)
    if "verbose" in kwargs:
        # torch >= 2.7 only says "unexpected keyword argument 'verbose'"; say what to do instead.
        raise TypeError(
            "verbose= was removed from PyTorch's schedulers in PyTorch 2.7 and is now a TypeError. "
            "Drop it, and print scheduler.get_last_lr() after scheduler.step() "
            "to see the learning rate."
        )
    if scheduler_class is lr_scheduler.ExponentialLR and "gamma" in kwargs:
        # torch accepts gamma=0 (the lr becomes 0) and gamma<0 (a negative lr).
        _check_gamma(kwargs["gamma"])
    return scheduler_class(optimizer, **kwargs)


def lr_trace(
    name: str | Callable[[Optimizer], LRScheduler],
    *,
    epochs: int,
    lr: float = 0.1,
    steps_per_epoch: int = 1,
    step_per: str | None = None,
    metrics: Iterable[float] | None = None,
    **kwargs,
) -> list[float]:
    """The lr a training run would use at each step, computed without training.

    `name` is passed to make_scheduler with kwargs, or is a callable `optimizer -> scheduler`.
    step_per="epoch": one value per epoch (the lr used in epoch 1, 2, ...); step_per="batch":
    epochs * steps_per_epoch values, the scheduler stepped after every batch. Default: "batch" for
    OneCycleLR, else "epoch". ReduceLROnPlateau needs `metrics`, one per epoch (ignored by the
    others), and steps once per epoch even with step_per="batch": there is no per-batch metric.
    OneCycleLR by name gets max_lr=lr and total_steps=the number of scheduler steps unless given.
    """
    epochs = check_whole(epochs, "epochs", minimum=1)
    steps_per_epoch = check_whole(steps_per_epoch, "steps_per_epoch", minimum=1)
    if step_per not in (None, "epoch", "batch"):
        raise ValueError(f"step_per must be 'epoch' or 'batch', got {step_per!r}.")

    # A one-number stand-in for a model: a scheduler only needs an optimizer to adjust.
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=lr)
    if callable(name):
        if kwargs:
            raise TypeError(
                f"Pass {sorted(kwargs)} to your scheduler inside the callable, not to lr_trace."
            )
        scheduler = name(optimizer)
    else:
        if _scheduler_class(name) is lr_scheduler.OneCycleLR:
            kwargs.setdefault("max_lr", lr)  # OneCycleLR ignores the optimizer's lr
            if "total_steps" not in kwargs:
                per_batch = step_per in (None, "batch")
                kwargs["total_steps"] = epochs * steps_per_epoch if per_batch else epochs
        scheduler = make_scheduler(name, optimizer, **kwargs)
    if step_per is None:
        step_per = "batch" if isinstance(scheduler, lr_scheduler.OneCycleLR) else "epoch"

    is_plateau = isinstance(scheduler, lr_scheduler.ReduceLROnPlateau)
    if is_plateau:
        if metrics is None:
            raise ValueError(
                "ReduceLROnPlateau decides from a metric, so lr_trace needs metrics=[...], "
                f"one value per epoch ({epochs} values), e.g. the validation losses."
            )
        metrics = list(metrics)
        if len(metrics) != epochs:
            raise ValueError(
                f"metrics has {len(metrics)} values but epochs={epochs}: give one metric per epoch."
            )

    lrs = []
    records_per_epoch = steps_per_epoch if step_per == "batch" else 1
    for epoch in range(epochs):
        for _ in range(records_per_epoch):
            lrs.append(float(optimizer.param_groups[0]["lr"]))  # the lr this step trains with
            optimizer.step()  # before scheduler.step(), as in training (torch warns otherwise)
            if step_per == "batch" and not is_plateau:
                scheduler.step()
        if is_plateau:
            scheduler.step(metrics[epoch])
        elif step_per == "epoch":
            scheduler.step()
    return lrs


def exponential_lr(lr0: float, gamma: float, n: int | Iterable[int]) -> float | list[float]:
    """lr0 * gamma**n: ExponentialLR's lr after n scheduler.step() calls (a list for many n)."""
    _check_positive(lr0, "lr0 (the starting learning rate)")
    _check_gamma(gamma)
    if isinstance(n, Iterable):
        return [exponential_lr(lr0, gamma, k) for k in n]
    n = check_whole(n, "n (the number of scheduler.step() calls)", minimum=0)
    return lr0 * gamma**n


def half_life(gamma: float) -> float:
    """Scheduler steps until the lr halves: the h with gamma**h == 0.5 (math.inf for gamma == 1)."""
    _check_gamma(gamma)
    if gamma > 1:
        doubling = math.log(2) / math.log(gamma)
        raise ValueError(
            f"gamma={gamma} > 1 multiplies the lr by more than 1 at every step, so the lr grows "
            f"and never halves (it doubles every {doubling:.3g} steps). "
            "Use 0 < gamma < 1 for a decaying lr."
        )
    if gamma == 1:
        return math.inf  # a constant lr never halves
    return math.log(0.5) / math.log(gamma)


def gamma_for_target(lr0: float, target_lr: float, steps: int) -> float:
    """The gamma that takes ExponentialLR from lr0 to target_lr in `steps` scheduler steps."""
    _check_positive(lr0, "lr0 (the starting learning rate)")
    _check_positive(target_lr, "target_lr")
    steps = check_whole(steps, "steps", minimum=1)
    return (target_lr / lr0) ** (1 / steps)


def per_batch_gamma(gamma: float, steps_per_epoch: int) -> float:
    """The per-batch gamma that gives the same decay per epoch as `gamma` stepped once per epoch."""
    _check_gamma(gamma)
    steps_per_epoch = check_whole(steps_per_epoch, "steps_per_epoch", minimum=1)
    return gamma ** (1 / steps_per_epoch)
