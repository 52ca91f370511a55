# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · ReduceLROnPlateau: every parameter, replayed exactly
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lr-course/lr-schedulers-regularization/blob/main/notebooks/03_reduce_lr_on_plateau.ipynb)
#
# **What you will learn**
#
# - the rule behind ReduceLROnPlateau, and why it should watch the *validation* loss;
# - what each parameter does (`patience`, `threshold`, `threshold_mode`, `cooldown`, `factor`,
#   `min_lr`, `eps`, `mode`), each on a tiny sequence of numbers with a step-by-step table that
#   is checked against PyTorch's own scheduler;
# - when "patience = 2 reduces after the 3rd bad epoch" is right, and two traps: a negative metric
#   with `threshold_mode="rel"`, and an accuracy watched with `mode="min"`;
# - how to play with every parameter in a simulator, on your own training curves;
# - what a popular recipe (Adam at lr 0.1, stepped on the training loss) really does, defect by
#   defect;
# - why resuming from a checkpoint without the scheduler's state silently changes the run.
#
# The whole notebook runs on a CPU; a GPU makes the training sections much faster.

# %% [markdown]
# ## Setup
#
# On Colab the first cell installs the course's small package `course_utils` (PyTorch is already
# there and is left as it is). Everywhere else it finds the package installed by `make setup`.

# %%
import subprocess
import sys

try:
    import course_utils
except ImportError:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "git+https://github.com/lr-course/lr-schedulers-regularization"], check=True)
    import course_utils

# %%
import itertools
import math
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.optim import lr_scheduler

from course_utils import checkpoint, data, models, notebook, plateau_replay, plotting, training
from course_utils.widgets import plateau_simulator

device = notebook.report_device()   # a GPU when there is one

# %% tags=["parameters"]
FAST = notebook.fast_mode()                   # COURSE_FAST=1: small defaults for tests
EPOCHS = 3 if FAST else 12                    # epochs of each LeNet run (sections 9 and 12)
TRAIN_SIZE = 1000 if FAST else None           # LeNet training images (None: all 55,000)
VAL_SIZE = 500 if FAST else 5000              # images held out for validation
BATCH_SIZE = 64
LR = 0.05                                     # the start lr of the LeNet runs (SGD, momentum 0.9)
RECIPE_EPOCHS = 3 if FAST else 12             # epochs of each run of the second recipe
RECIPE_TRAIN_SIZE = 2000 if FAST else None    # its training images (None: all that remain)
SEED = 0

# %% [markdown]
# ## 1. The rule: reduce when the metric has stopped improving
#
# The chapter puts it in one sentence: lower the learning rate when the monitored metric has
# stopped improving, for instance when the validation loss no longer goes down but oscillates.
# PyTorch turns that sentence into a rule with a memory of three numbers:
#
# 1. `best`: the best value seen so far. Every epoch, `scheduler.step(metric)` compares the new
#    value with `best`, **not with the previous epoch**. Better (by more than `threshold`): it
#    becomes the new `best` and the count of bad epochs goes back to 0. Otherwise: one more bad
#    epoch.
# 2. `num_bad_epochs`: when it exceeds `patience`, the lr of every param group is multiplied by
#    `factor` (never below `min_lr`) and the count restarts at 0.
# 3. `cooldown_counter`: after a reduction, `cooldown` epochs in which bad epochs are not counted.
#
# Because the comparison is with the best value, a metric that oscillates is "not improving" even
# when it goes down from one epoch to the next. Two small helpers replay a sequence of values:
# `torch_states` steps PyTorch's own `ReduceLROnPlateau`, `show_steps` replays the same sequence
# with `course_utils`' readable re-implementation, checks that every step agrees with torch
# (the best value, both counters and every lr, compared exactly) and prints a table.

# %%
def torch_states(metrics, *, lr=0.1, **kwargs):
    """Step torch's ReduceLROnPlateau through `metrics`; its state after every step."""
    lrs = lr if isinstance(lr, list) else [lr]     # one param group per lr
    optimizer = torch.optim.SGD([{"params": [nn.Parameter(torch.zeros(1))], "lr": x}
                                 for x in lrs])
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
    states = []
    for metric in metrics:
        scheduler.step(metric)
        states.append((scheduler.best, scheduler.num_bad_epochs, scheduler.cooldown_counter,
                       tuple(group["lr"] for group in optimizer.param_groups)))
    return states


def show_steps(metrics, **kwargs):
    """Replay `metrics`, assert every step equals torch's, print the table; return the trace."""
    trace = plateau_replay.replay_plateau(metrics, **kwargs)
    replayed = [(s.best, s.num_bad_epochs, s.cooldown_counter, s.lrs_after) for s in trace]
    assert replayed == torch_states(metrics, **kwargs), "the replay and torch disagree"
    print(plateau_replay.format_steps(trace))
    return trace


# %% [markdown]
# How to read a table: one row per `scheduler.step(metric)`, at the end of that epoch.
# **better?** is the scheduler's verdict; **bad** is the number of bad epochs in a row that this
# step compares with `patience` (right after a reduction torch resets its `num_bad_epochs` to 0);
# **cooldown** is the cooldown counter after the step; **lr used** is the lr the epoch trained
# with, **lr next** the one the next epoch gets.
#
# A validation loss that oscillates after epoch 2, with `patience=3`:

# %% tags=["nbval-check-output"]
oscillating = show_steps([1.00, 0.70, 0.75, 0.72, 0.76, 0.71, 0.74, 0.69], patience=3,
                         factor=0.5)

# %%
went_down = [s.epoch for s in oscillating[1:] if s.metric < oscillating[s.epoch - 2].metric]
assert went_down == [2, 4, 6, 8]                    # lower than the epoch before...
assert [s.improved for s in oscillating] == [True, True, False, False, False, False,
                                             False, True]   # ...but better only in 1, 2, 8
assert oscillating.reductions == [6]                # the 4th bad epoch in a row: 4 > patience
print("went down from the previous epoch in epochs", went_down,
      "| reduced at the end of epoch", oscillating.reductions)

# %%
plateau_replay.draw_plateau(oscillating, metric_label="validation loss",
                            title="Oscillating is not improving: epochs 3-7 never beat the best "
                                  "(0.70)")
plt.show()

# %% [markdown]
# The top panel shows the metric, the best value so far, and the *threshold band*: how far below
# the best a value must go to count as better (thin here, since the default threshold is 0.01 %).
# The middle panel counts bad epochs against `patience`; the bottom one shows the lr, with a
# dotted line where a reduction ends an epoch.
#
# **Which metric to watch.** The goal is a model that does well on images it has not seen, and
# only a validation split measures that. The training loss is computed on the very images the
# optimizer is fitting, averaged over an epoch in which the weights keep changing; it can keep
# falling after the validation loss has stopped, and a scheduler watching it then sees
# "progress" while the network is only memorizing. Section 11 compares the two on one run.
# (Never use the test set for this: a decision taken on it makes the test score optimistic.)
#
# ## 2. `patience`, and the sentence "reduces after the 3rd bad epoch"
#
# Before the first `step()`, `best` is +infinity (−infinity for `mode="max"`), so the first
# value always counts as better: **the first epoch only sets the baseline**.

# %% tags=["nbval-check-output"]
optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, patience=2)
print("before any step: best =", scheduler.best, "| num_bad_epochs =", scheduler.num_bad_epochs)
scheduler.step(5.0)
print("after step(5.0): best =", scheduler.best, "| num_bad_epochs =", scheduler.num_bad_epochs)

# %% [markdown]
# A loss that never improves after the baseline, `patience=2`, `factor=0.1`:

# %% tags=["nbval-check-output"]
flat = show_steps([1.0] * 8, patience=2)

# %%
assert flat.reductions == [4, 7]                    # 3 bad epochs in a row each time
assert flat.lr_used[3] == 0.1 and flat.lr_used[4] == flat[3].lr_after < 0.1
print("reduced in the step of epoch 4; epoch 5 is the first to train with lr",
      f"{flat.lr_used[4]:.6g}")

# %% [markdown]
# The chapter says: *patience = 2 ignores the first 2 bad epochs and reduces after the 3rd*.
# PyTorch's own documentation used nearly the same sentence until at least version 2.2. The table
# above settles what it means:
#
# - "the 3rd" is the **3rd bad epoch in a row**, not the 3rd epoch of training. With a baseline
#   in epoch 1, the 3rd bad epoch is epoch 4; after epoch 3 there have been only 2.
# - "reduces after" is exact: the reduction happens in the `step()` at the *end* of that epoch,
#   so the epoch itself still trains with the old lr and the **new lr is first used one epoch
#   later** (epoch 5).
# - "in a row" matters: one better epoch resets the count (next table).
#
# In general, with patience p and no improvement after the baseline, the first reduction comes
# in the step of epoch p + 2 and the new lr is used from epoch p + 3:

# %% tags=["nbval-check-output"]
print("patience  reduced at the end of epoch  first epoch with the new lr")
for patience in range(7):
    trace = plateau_replay.replay_plateau([1.0] * 12, patience=patience)
    first = trace.reductions[0]
    assert first == patience + 2 and trace.lr_used[first] < trace.lr_used[first - 1]
    assert [s.lrs_after for s in trace] == [s[3] for s in torch_states([1.0] * 12,
                                                                        patience=patience)]
    print(f"{patience:>8}  {first:>28}  {first + 1:>27}")

# %% [markdown]
# Bad epochs must come in a row: here the loss improves again in epoch 7, and the count starts
# over (`patience=2`, `factor=0.5`):

# %% tags=["nbval-check-output"]
realistic = show_steps([1.00, 0.80, 0.70, 0.71, 0.72, 0.73, 0.69, 0.70, 0.70, 0.70],
                       patience=2, factor=0.5)

# %%
assert realistic.reductions == [6, 10] and realistic[6].counted == 0
plateau_replay.draw_plateau(realistic, metric_label="validation loss",
                            title="patience=2: three bad epochs in a row (4, 5, 6), a reduction "
                                  "after the 3rd; and again after epochs 8, 9, 10")
plt.show()

# %% [markdown]
# ## 3. `threshold` and `threshold_mode`: what counts as better
#
# "Better" is a strict comparison with a margin t = `threshold` (default 1e-4):
#
# | `mode` | `threshold_mode` | the new value `a` is better than `best` when |
# | --- | --- | --- |
# | `"min"` | `"rel"` (default) | a < best · (1 − t) |
# | `"min"` | `"abs"` | a < best − t |
# | `"max"` | `"rel"` | a > best · (1 + t) |
# | `"max"` | `"abs"` | a > best + t |
#
# The cell below checks the four formulas against torch's verdicts on a grid of values placed
# just below, exactly on and just above each bound, with positive and negative `best`. The
# comparison is exact (tolerance 0): the formulas are the same float operations torch does.

# %% tags=["nbval-check-output"]
FORMULAS = {
    ("min", "rel"): lambda a, best, t: a < best * (1 - t),
    ("min", "abs"): lambda a, best, t: a < best - t,
    ("max", "rel"): lambda a, best, t: a > best * (1 + t),
    ("max", "abs"): lambda a, best, t: a > best + t,
}
checked = 0
for (mode, threshold_mode), formula in FORMULAS.items():
    for best in (-2.0, -0.3, 0.3, 2.0):
        for t in (1e-4, 0.01, 0.1):
            bound = plateau_replay.improvement_bound(best, mode=mode, threshold=t,
                                                     threshold_mode=threshold_mode)
            for a in (bound - 1e-3, math.nextafter(bound, -math.inf), bound,
                      math.nextafter(bound, math.inf), bound + 1e-3, best):
                # torch's verdict: a bad epoch was counted, or not, after the baseline `best`
                states = torch_states([best, a], mode=mode, threshold=t,
                                      threshold_mode=threshold_mode)
                torch_says_better = states[1][1] == 0
                assert torch_says_better == formula(a, best, t), (mode, threshold_mode, best, t, a)
                checked += 1
print(f"{checked} cases: torch's verdict equals the formula in every one")

# %% [markdown]
# With the default `rel` threshold of 1e-4, a change smaller than 0.01 % of `best` is not an
# improvement, and for a positive metric a tie never is (a negative one is another story, as
# we will see):

# %% tags=["nbval-check-output"]
tiny = show_steps([1.0, 0.99995, 1.0, 0.99989], patience=5)
assert [s.improved for s in tiny] == [True, False, False, True]

# %% [markdown]
# ### `rel` and `abs` can give opposite verdicts on the same curve
#
# `rel` asks for a step proportional to the metric's size, `abs` for a fixed step. Take a
# validation loss of about 0.2 that still falls by 0.003 per epoch, with `threshold=0.01` and
# `patience=2`: `rel` asks for a drop larger than 1 % of `best` (about 0.002) and sees progress
# every epoch; `abs` asks for a drop larger than 0.01 below `best`. Since the comparison is with
# `best`, small drops do add up, but 0.003 per epoch needs four epochs to get past 0.01, and
# after three bad epochs in a row `patience=2` has already cut the lr.

# %% tags=["nbval-check-output"]
slow_descent = [0.200, 0.197, 0.194, 0.191, 0.188, 0.185, 0.182, 0.179, 0.176]
print("threshold_mode='rel'")
relative = show_steps(slow_descent, threshold=0.01, threshold_mode="rel", patience=2)
print("\nthreshold_mode='abs'")
absolute = show_steps(slow_descent, threshold=0.01, threshold_mode="abs", patience=2)

# %%
assert relative.reductions == [] and all(s.improved for s in relative)
assert absolute.reductions == [4, 8] and [s.epoch for s in absolute if s.improved] == [1, 5, 9]


def draw_side_by_side(traces: dict, metric_label: str, title: str):
    """The metric with each trace's threshold band (left) and each trace's lr (right)."""
    fig, (ax_metric, ax_lr) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    first = next(iter(traces.values()))
    ax_metric.plot([s.epoch for s in first], [s.metric for s in first], marker="o", color="black",
                   label=metric_label)
    for index, (name, trace) in enumerate(traces.items()):
        epochs, best_before = [s.epoch for s in trace], [math.nan] + [s.best for s in trace[:-1]]
        ax_metric.fill_between(epochs, [s.bound for s in trace], best_before, step="mid",
                               alpha=0.25, color=plotting.style(index)["color"],
                               label=f"{name}: band")
        ax_lr.plot(epochs, trace.lr_used, drawstyle="steps-mid", marker=".", label=name,
                   **plotting.style(index))
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel(metric_label)
    ax_metric.legend(fontsize=8)
    ax_lr.set_xlabel("epoch")
    ax_lr.set_yscale("log")
    ax_lr.set_ylabel("learning rate (log scale)")
    ax_lr.legend(fontsize=8)
    for ax in (ax_metric, ax_lr):
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    return fig


draw_side_by_side({"rel, t=0.01": relative, "abs, t=0.01": absolute}, "validation loss",
                  "The same curve: 'rel' sees progress, 'abs' cuts the lr twice")
plt.show()

# %% [markdown]
# Choose `abs` when you know the size of a meaningful change in the metric's own units (e.g.
# 0.001 of accuracy); choose `rel` when the metric's scale is unknown or shrinks a lot during
# training, as a loss does.
#
# ### The negative-metric trap in `rel` mode
#
# With `mode="min"` and `rel`, the bound is best · (1 − t). For a positive `best` that lies below
# `best`, as intended. For a **negative** `best` it lies *above* it: −1.0 · (1 − 0.1) = −0.9. A
# value between −1.0 and −0.9 is *worse* than the best, yet counts as better and becomes the new
# best. A metric that gets worse every epoch, each time by less than t · |best|, then never
# triggers a reduction. Even with the default t = 1e-4, a **flat** negative metric counts as
# improving every epoch, because a tie now beats the bound. Negative metrics are common: a
# log-likelihood, a negative ELBO, a score you minimize as −accuracy.

# %% tags=["nbval-check-output"]
getting_worse = [-1.00, -0.95, -0.91, -0.88, -0.86, -0.85]
print("threshold_mode='rel'")
trap = show_steps(getting_worse, threshold=0.1, threshold_mode="rel", patience=1)
print("\nthreshold_mode='abs'")
no_trap = show_steps(getting_worse, threshold=0.1, threshold_mode="abs", patience=1)

# %%
assert all(later > earlier for earlier, later in itertools.pairwise(getting_worse))
assert all(s.improved for s in trap) and trap.reductions == []
assert no_trap.reductions == [3, 5]
# Worse by more than t · |best| in a step, and the trap no longer holds: -1.0 -> -0.8 is bad.
assert plateau_replay.replay_plateau([-1.0, -0.8, -0.6, -0.4], threshold=0.1,
                                     patience=1).reductions == [3]
# A flat metric with the default threshold: negative, every tie is "better"; positive, none is.
flat_negative = plateau_replay.replay_plateau([-1.0] * 6, patience=1)
flat_positive = plateau_replay.replay_plateau([1.0] * 6, patience=1)
assert all(s.improved for s in flat_negative) and flat_negative.reductions == []
assert flat_positive.reductions == [3, 5]
# The same trap with mode="max": best -1.0, bound -1.0 * 1.1 = -1.1, so -1.05 (worse) is "better".
assert plateau_replay.is_improvement(-1.05, -1.0, mode="max", threshold=0.1, threshold_mode="rel")
draw_side_by_side({"rel, t=0.1": trap, "abs, t=0.1": no_trap}, "a negative loss",
                  "Getting worse every epoch: 'rel' calls each value a new best")
plt.show()

# %% [markdown]
# Rule of thumb: if the metric can be negative, use `threshold_mode="abs"`.
#
# ## 4. `cooldown`: a pause after each reduction
#
# After a reduction, `cooldown` epochs are ignored: bad epochs are not counted, which gives the
# new lr time to show its effect. With `patience=2`, `cooldown=2` on a loss that never improves:

# %% tags=["nbval-check-output"]
cooled = show_steps([1.0] * 12, patience=2, cooldown=2, factor=0.5)

# %%
patience, cooldown = 2, 2
first = cooled.reductions[0]
assert cooled.reductions == [first, first + cooldown + patience + 1] == [4, 9]
assert [(s.in_cooldown, s.counted) for s in cooled[4:6]] == [(True, 0), (True, 0)]
plateau_replay.draw_plateau(cooled, metric_label="validation loss",
                            title="cooldown=2: epochs 5 and 6 are not counted; the next "
                                  "reduction comes at 4 + 2 + 2 + 1 = 9")
plt.show()

# %% [markdown]
# After a reduction at the end of epoch r, the next one cannot come before the end of epoch
# r + `cooldown` + `patience` + 1.
#
# ## 5. `factor`: how much smaller
#
# Each reduction multiplies the lr by `factor`, so after k reductions lr = lr₀ · factorᵏ (up to
# the last bit of a float: torch multiplies step by step, e.g. 0.1 · 0.1 = 0.010000000000000002,
# which is why the tables print lrs rounded to 6 significant digits). With `factor=0.5` and
# `patience=0`, every bad epoch halves the lr:

# %% tags=["nbval-check-output"]
halving = show_steps([1.0, 1.0, 1.0, 0.9, 1.0], patience=0, factor=0.5)
assert [s.lr_after for s in halving] == [0.1, 0.05, 0.025, 0.025, 0.0125]

# %% [markdown]
# `factor` must be below 1:

# %%
try:
    lr_scheduler.ReduceLROnPlateau(optimizer, factor=1.0)
except ValueError as error:
    print("ValueError:", error)
else:
    raise AssertionError("torch accepted factor=1.0")

# %%
factors = (0.1, 0.3, 0.5, 0.8)
fig, ax = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
for index, factor in enumerate(factors):
    trace = plateau_replay.replay_plateau([1.0] * 20, patience=2, factor=factor)
    for k, epoch in enumerate(trace.reductions, start=1):     # closed form, rel. tolerance 1e-12
        assert math.isclose(trace[epoch - 1].lr_after, 0.1 * factor**k, rel_tol=1e-12)
    ax.plot([s.epoch for s in trace], trace.lr_used, drawstyle="steps-mid", marker=".",
            label=f"factor={factor}", **plotting.style(index))
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("learning rate (log scale)")
ax.set_title("A flat loss, patience=2: factor sets the size of each step down")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# `factor=0.1` (the default) divides the lr by 10 at once; 0.5 halves it. A small factor reacts
# strongly to one plateau that may only be noise; a factor close to 1 needs many plateaus to
# change anything.
#
# ## 6. `min_lr`: a floor, for all groups or one per group
#
# The new lr is max(lr · factor, `min_lr`): the floor stops the reductions.

# %% tags=["nbval-check-output"]
floored = show_steps([1.0] * 6, patience=0, min_lr=1e-3)

# %%
assert all(lr >= 1e-3 for lr in floored.lr_used) and floored.reductions == [2, 3]
assert math.isclose(floored.lr_used[-1], 1e-3, rel_tol=1e-12)   # 0.1 * 0.1 * 0.1, as a float
assert floored.skipped == [4, 5, 6]          # still "due", but nothing left to reduce

# %% [markdown]
# An optimizer can hold several param groups with their own lrs, for example a pretrained body
# with a small lr and a new head with a larger one. `min_lr` can then be a list with one floor
# per group (the table prints the groups' lrs side by side):

# %% tags=["nbval-check-output"]
two_groups = show_steps([1.0] * 4, lr=[0.1, 0.01], patience=0, min_lr=[0.005, 0.0])

# %%
assert two_groups[-1].lrs_after[0] == 0.005       # group 0 stops at its floor
assert math.isclose(two_groups[-1].lrs_after[1], 0.01 * 0.1**3, rel_tol=1e-12)
plateau_replay.draw_plateau(two_groups, title="min_lr=[0.005, 0.0]: group 0 stops at 0.005, "
                                              "group 1 goes on down")
plt.show()
try:
    lr_scheduler.ReduceLROnPlateau(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1),
                                   min_lr=[0.005, 0.0])
except ValueError as error:
    print("One group, two floors -> ValueError:", error)
else:
    raise AssertionError("torch accepted two floors for one param group")

# %% [markdown]
# ## 7. `eps`: reductions too small to matter are skipped
#
# A reduction is applied only if it changes the lr by more than `eps` (default 1e-8), in absolute
# terms. The bad-epoch count is reset and the cooldown restarts even when it is skipped. With
# `eps=0.06`, halving 0.1 (a change of 0.05) is skipped every time:

# %% tags=["nbval-check-output"]
skipped = show_steps([1.0] * 4, patience=0, factor=0.5, eps=0.06)
assert skipped.reductions == [] and skipped.skipped == [2, 3, 4]

# %% [markdown]
# And with `cooldown=2`, each skipped reduction still starts a cooldown of 2 epochs, during
# which the bad epochs are not counted:

# %% tags=["nbval-check-output"]
skipped_cooling = show_steps([1.0] * 8, patience=0, factor=0.5, eps=0.06, cooldown=2)
assert skipped_cooling.reductions == [] and skipped_cooling.skipped == [2, 5, 8]
assert [s.cooldown_counter for s in skipped_cooling] == [0, 2, 1, 0, 2, 1, 0, 2]

# %% [markdown]
# With the default `eps=1e-8` and `min_lr=0`, `eps` is what finally stops the lr: a step from
# lr to lr · factor is skipped once lr · (1 − factor) ≤ 1e-8. With `factor=0.1` that is
# after 7 reductions, at lr ≈ 1e-8:

# %% tags=["nbval-check-output"]
collapse = plateau_replay.replay_plateau([1.0] * 12, patience=0)
assert [s.lrs_after for s in collapse] == [s[3] for s in torch_states([1.0] * 12,
                                                                      patience=0)]
print("reductions at the end of epochs", collapse.reductions)
print(f"lowest lr: {collapse[-1].lr_after:.6g}; further reductions skipped in epochs",
      collapse.skipped)

# %%
assert len(collapse.reductions) == 7 and collapse[-1].lr_after * (1 - 0.1) <= 1e-8
plateau_replay.draw_plateau(collapse, title="min_lr=0, eps=1e-8: seven cuts by 10, then eps "
                                            "stops them at lr = 1e-8")
plt.show()

# %% [markdown]
# ## 8. `mode="max"`: for a metric that should go up
#
# Accuracy improves upwards, so it needs `mode="max"`; the threshold then asks for a value
# above best · (1 + t). Here 0.8500001 is not better than 0.85 (the default t = 1e-4 asks for
# more than 0.850085):

# %% tags=["nbval-check-output"]
accuracy = [0.80, 0.85, 0.85, 0.8500001, 0.84, 0.90]
in_max_mode = show_steps(accuracy, mode="max", patience=1, factor=0.5)

# %% [markdown]
# Watch the same rising accuracy with the default `mode="min"` and every rise is a bad epoch:

# %% tags=["nbval-check-output"]
rising = [0.70, 0.75, 0.78, 0.80, 0.81, 0.82]
in_min_mode = show_steps(rising, mode="min", patience=1, factor=0.5)

# %%
assert in_max_mode.reductions == [4]
assert in_min_mode.reductions == [3, 5] and not any(s.improved for s in in_min_mode[1:])
draw_side_by_side({'mode="max"': plateau_replay.replay_plateau(rising, mode="max", patience=1,
                                                               factor=0.5),
                   'mode="min"': in_min_mode}, "validation accuracy",
                  "A rising accuracy: mode='max' keeps the lr, mode='min' cuts it twice")
plt.show()

# %% [markdown]
# `training.fit` refuses that mismatch before training (see section 9).
#
# ## 9. Training LeNet: plateau on the validation loss vs a constant lr
#
# The chapter's setup: LeNet on Fashion-MNIST, SGD with momentum 0.9. One run keeps the lr
# constant; the other uses `ReduceLROnPlateau(optimizer, factor=0.1, patience=2)` stepped on the
# validation loss at the end of every epoch. Both start from the same seed (same weights, same
# batches). The plateau run saves a checkpoint after every epoch, as a long training script
# would; section 12 resumes from one.

# %%
train_full, test = data.load_fashion_mnist()
train, val = data.lesson_split(train_full, val_size=VAL_SIZE, train_size=TRAIN_SIZE,
                               seed=SEED)
train_loader = data.TensorLoader(train, BATCH_SIZE, shuffle=True, device=device, seed=SEED)
val_loader = data.TensorLoader(val, 1000, device=device)
print(f"{len(train):,} training images, {len(val):,} validation images")

# A temporary folder for the checkpoints, deleted when the kernel stops.
checkpoint_folder = tempfile.TemporaryDirectory(prefix="plateau-checkpoints-")
checkpoint_dir = Path(checkpoint_folder.name)


def plateau_fn(optimizer):
    return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.1, patience=2)


def new_run(scheduler_fn=None):
    """A fresh, seeded LeNet with its SGD optimizer (and the scheduler `scheduler_fn` builds)."""
    training.set_seed(SEED)
    model = models.LeNet().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    scheduler = scheduler_fn(optimizer) if scheduler_fn is not None else None
    return model, optimizer, scheduler


def train_epochs(model, optimizer, scheduler, history, epochs, save_to=None):
    """Train `epochs` more epochs; save a checkpoint after each one if `save_to` is a folder."""
    for _ in range(epochs):
        training.fit(model, train_loader, val_loader, optimizer, epochs=1, scheduler=scheduler,
                     history=history, progress=False)
        record = history.records[-1]
        print(f"epoch {record['epoch']:>2}: lr {record['lr']:.3g}, "
              f"validation loss {record['val_loss']:.4f}, accuracy {record['val_acc']:.2%}")
        if save_to is not None:
            checkpoint.save_checkpoint(save_to / f"epoch_{record['epoch']}.pt", model=model,
                                       optimizer=optimizer, scheduler=scheduler, history=history)
    return history


# %% [markdown]
# First the guard: an accuracy watched in `mode="min"` would cut the lr at every rise (section 8),
# so `fit` stops before any training.

# %%
model, optimizer, _ = new_run()
try:
    training.fit(model, train_loader, val_loader, optimizer, epochs=1,
                 scheduler=lr_scheduler.ReduceLROnPlateau(optimizer, mode="min"),
                 plateau_metric="val_acc")
except ValueError as error:
    print("ValueError:", error)
else:
    raise AssertionError("fit accepted mode='min' for an accuracy")

# %%
print("constant lr")
constant = train_epochs(*new_run(), training.History(), EPOCHS)
print("ReduceLROnPlateau on the validation loss")
plateau_model, plateau_optimizer, plateau_scheduler = new_run(plateau_fn)
on_plateau = train_epochs(plateau_model, plateau_optimizer, plateau_scheduler,
                          training.History(), EPOCHS, save_to=checkpoint_dir)

# %%
plotting.plot_histories({"constant lr": constant, "ReduceLROnPlateau(val_loss)": on_plateau},
                        ("train_loss", "val_loss", "val_acc", "lr"),
                        title="LeNet, SGD momentum 0.9: constant lr vs plateau on the "
                              "validation loss")
plt.show()

# %% [markdown]
# What the scheduler did is no mystery: replaying its rule on the validation losses that `fit`
# recorded gives exactly the lrs that training used. And until the first epoch trained with a
# reduced lr, the two runs are the same run, number for number, on a CPU. (A GPU may add up
# sums in a different order from one run to the next; the tiny differences grow over thousands
# of steps, so on a GPU the cell only prints how far the two runs drift apart.)

# %%
replayed = plateau_replay.replay_plateau(on_plateau.val_loss, lr=LR, factor=0.1, patience=2)
assert on_plateau.lr == replayed.lr_used
assert constant.lr == [LR] * EPOCHS
first_reduced = next((e + 1 for e in replayed.reductions), EPOCHS + 1)   # first epoch at a new lr
same = [(r["train_loss"], r["val_loss"]) for r in constant.records[:first_reduced - 1]]
also = [(r["train_loss"], r["val_loss"]) for r in on_plateau.records[:first_reduced - 1]]
if device.type == "cpu":
    assert same == also
else:
    drift = max((abs(a - b) / abs(b) for x, y in zip(same, also) for a, b in zip(x, y)),
                default=0.0)
    print(f"{device.type}: the two runs differ by up to {drift:.1e} (relative) before the "
          "first reduction")
print(plateau_replay.format_steps(replayed))
print(plateau_replay.describe(replayed))
if EPOCHS < 4:
    assert not replayed.reductions
if not replayed.reductions:
    print(f"No reduction in {EPOCHS} epochs: both runs trained with lr {LR} throughout.")

# %%
summary = {}
for name, history in {"constant lr": constant, "plateau": on_plateau}.items():
    best = history.best("val_loss")
    summary[name] = {"best_val_loss": round(best["val_loss"], 4), "at_epoch": best["epoch"],
                     "final_val_acc": round(history.val_acc[-1], 4)}
    print(f"{name:<12} best validation loss {best['val_loss']:.4f} (epoch {best['epoch']}), "
          f"final validation accuracy {history.val_acc[-1]:.2%}")
notebook.record("lenet_constant_vs_plateau", summary)

# %% [markdown]
# How to read this honestly: it is one seed, and the two runs differ only from the first epoch
# that trained with a reduced lr. With `patience=2` the earliest possible reduction is at the
# end of epoch 4, so a run of 3 epochs (the fast mode) cannot show one; give it more epochs.
# The replay table above is the exact account of what the scheduler decided and why. One
# comparison does not show which schedule is better in general: a small difference can come
# from the seed alone, so rerun with another `SEED` before you trust it (notebook 04 measures
# how much the seed moves LeNet's accuracy).
#
# ## 10. The simulator: every parameter on a slider
#
# Pick a curve, move the sliders, and watch the three panels from section 1 change. The first
# curves are the validation losses and accuracies this notebook just recorded; the synthetic
# curves (with a noise slider and a seed) work anywhere. A recorded curve is fixed: in a real
# run a reduction changes every value that follows it, so the simulator answers "what would
# the scheduler have decided on this curve", not "what would training have done".

# %% tags=["nbval-ignore-output"]
plateau_simulator.plateau_explorer({"LeNet, constant lr: validation loss": constant.val_loss,
                                    "LeNet, constant lr: validation accuracy": constant.val_acc,
                                    "LeNet, plateau run: validation loss": on_plateau.val_loss})

# %% [markdown]
# Things to try: with the "overfitting" curve, how do `patience` and `cooldown` move the
# reductions? With the accuracy curves, what goes wrong in `mode="min"`? Raise the noise: when
# does a small `patience` start reducing on noise alone? Set `eps` to 1e-3: which reductions
# disappear?
#
# ## 11. A second recipe, defect by defect
#
# The second reference recipe trains a small CNN (`models.SimpleCNN`: conv 1→8, pool,
# conv 8→16, pool, linear) on MNIST with Adam, and says this about its scheduler
# (the numbered comments are ours):
#
# ```python
# optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
# scheduler = ReduceLROnPlateau(optimizer, factor=0.1, patience=5, verbose=True)   # (2)
# train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
#
# for epoch in range(1, num_epochs):                                             # (3)
#     running_loss = 0.0
#     for images, labels in train_loader:
#         images = images.view(images.size(0), -1)                               # (1)
#         loss = criterion(model(images), labels)
#         optimizer.zero_grad()
#         loss.backward()
#         optimizer.step()
#         # scheduler.step(loss)                                                 # (4)
#         running_loss += loss.item()
#     scheduler.step(running_loss / len(train_loader))                           # (5)
# ```
#
# We run it as written, fixing only what stops it, and look at each defect in turn. The data is
# MNIST when it can be loaded; without it (for example offline) we use Fashion-MNIST and say so.

# %%
try:
    recipe_full, _ = data.load_mnist()
    recipe_data = "MNIST"
except data.DataError:
    recipe_full, recipe_data = train_full, "Fashion-MNIST (MNIST could not be loaded)"
recipe_train, recipe_val = data.lesson_split(recipe_full, val_size=VAL_SIZE,
                                           train_size=RECIPE_TRAIN_SIZE, seed=SEED)
recipe_train_loader = data.TensorLoader(recipe_train, 64, shuffle=True, device=device,
                                        seed=SEED)
recipe_val_loader = data.TensorLoader(recipe_val, 1000, device=device)
print(f"The recipe runs on {recipe_data}: {len(recipe_train):,} training images in "
      f"{len(recipe_train_loader)} batches of 64, {len(recipe_val):,} validation images.")

# %% [markdown]
# **(1) Flattening the images before a CNN.** A convolution needs images shaped
# (N, 1, 28, 28); `.view(N, -1)` turns them into rows of 784 numbers. `SimpleCNN` says so; a bare
# `nn.Conv2d` fails with a terser message.

# %%
X, y = next(iter(recipe_train_loader))                 # X: (64, 1, 28, 28)
model = models.SimpleCNN().to(device)
flat_X = X.view(X.size(0), -1)                         # (64, 784)
refused = []
for name, layer in (("SimpleCNN", model), ("its first nn.Conv2d", model.features.conv1)):
    try:
        layer(flat_X)
    except (ValueError, RuntimeError) as error:
        refused.append(name)
        print(f"{name}: {type(error).__name__}: {error}\n")
assert len(refused) == 2, "both should refuse the flattened images"
print("Without the .view:", tuple(model(X).shape))

# %% [markdown]
# **(2) `verbose=True`.** Deprecated in PyTorch 2.2, removed in 2.7: now a `TypeError`. To see
# the lr, print `scheduler.get_last_lr()` (or `optimizer.param_groups[0]["lr"]`).

# %%
optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
try:
    lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=5, verbose=True)
    verbose_accepted = True
except TypeError as error:
    verbose_accepted = False
    print("TypeError:", error)
torch_version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
assert verbose_accepted == (torch_version < (2, 7))
scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=5)
print("get_last_lr():", scheduler.get_last_lr())

# %% [markdown]
# **(3) `range(1, num_epochs)` runs one epoch less than `num_epochs`.** It stops *before* its end:

# %% tags=["nbval-check-output"]
num_epochs = 10
print("range(1, num_epochs)    :", list(range(1, num_epochs)), "->",
      len(range(1, num_epochs)), "epochs")
print("range(1, num_epochs + 1):", list(range(1, num_epochs + 1)), "->",
      len(range(1, num_epochs + 1)), "epochs")

# %% [markdown]
# With those three fixed, here is the recipe's loop. It also evaluates on the validation split
# after each epoch (without letting that change anything) so we can see what happens, and it
# can step per batch, the recipe's commented-out line (4).

# %%
def run_recipe(lr=0.1, *, epochs=RECIPE_EPOCHS, step_per_batch=False, seed=SEED):
    """The recipe with (1)-(3) fixed. Returns a History with the lr of every batch."""
    training.set_seed(seed)
    model = models.SimpleCNN().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=5)
    criterion = nn.CrossEntropyLoss()
    history = training.History()
    for epoch in range(1, epochs + 1):                   # (3) fixed: all `epochs` epochs
        recipe_train_loader.set_epoch(epoch - 1)
        model.train()
        running_loss, epoch_lr = 0.0, optimizer.param_groups[0]["lr"]
        for images, labels in recipe_train_loader:       # (1) fixed: images stay (N, 1, 28, 28)
            loss = criterion(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            history.batch_lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if step_per_batch:
                scheduler.step(loss.item())              # (4): patience counted in batches
            running_loss += loss.item()
        train_loss = running_loss / len(recipe_train_loader)
        if not step_per_batch:
            scheduler.step(train_loss)                   # (5): the mean training loss
        val_loss, val_acc = training.evaluate(model, recipe_val_loader)
        history.records.append({"epoch": epoch, "lr": epoch_lr, "train_loss": train_loss,
                                "val_loss": val_loss, "val_acc": val_acc})
        print(f"epoch {epoch:>2}: lr {epoch_lr:.3g}, mean training loss {train_loss:.4f}, "
              f"validation loss {val_loss:.4f}, accuracy {val_acc:.2%}")
    return history


# %% [markdown]
# ### What Adam at lr = 0.1 actually does
#
# Adam's usual lr is 0.001; the recipe uses 100 times that. We run the recipe with three seeds,
# and once with lr 0.001 for reference.

# %%
recipe_runs = {}
for seed in (SEED, SEED + 1, SEED + 2):
    print(f"Adam lr=0.1, seed {seed}")
    recipe_runs[f"lr 0.1, seed {seed}"] = run_recipe(0.1, seed=seed)
print("Adam lr=0.001, seed", SEED)
recipe_runs["lr 0.001"] = run_recipe(0.001)

# %%
plotting.plot_histories(recipe_runs, ("train_loss", "val_loss", "val_acc"),
                        title=f"The recipe on {recipe_data.split(' ')[0]}: Adam at lr 0.1 "
                              "(three seeds) vs lr 0.001")
plt.show()

# %%
CHANCE_LOSS = math.log(10)          # cross-entropy of a uniform guess over 10 classes: 2.3026
reference = recipe_runs["lr 0.001"]
verdicts = {}
for name, history in recipe_runs.items():
    at_chance = history.val_acc[-1] < 0.2 and abs(history.val_loss[-1] - CHANCE_LOSS) < 0.05
    verdicts[name] = "stuck at chance level" if at_chance else "learns"
    print(f"{name:<16} final validation accuracy {history.val_acc[-1]:.2%}, "
          f"loss {history.val_loss[-1]:.4f}: {verdicts[name]}")
for name, history in recipe_runs.items():
    if name != "lr 0.001":
        assert history.val_acc[-1] < reference.val_acc[-1], name
notebook.record("recipe_final_val_acc", {name: round(h.val_acc[-1], 4)
                                         for name, h in recipe_runs.items()})

# %% [markdown]
# What this shows: at lr 0.1 every seed ends behind lr 0.001 (asserted above), and the cell
# prints, per seed, whether the network left chance level at all. A network stuck there has a
# loss of ln 10 ≈ 2.303, the loss of a uniform guess over ten classes, and an accuracy near
# 10 %. Which seeds get stuck depends on the data and the hardware; the gap to lr 0.001 is what
# to expect everywhere.
#
# Why lr 0.1 is so much for Adam: its first step moves every weight whose gradient is not zero by
# almost exactly the lr, whatever the gradient's size (the step is lr · m̂ / (√v̂ + ε), and
# m̂ / √v̂ = ±1 at the first step). At lr 0.1 that is larger than a typical weight of the last
# two layers:

# %%
training.set_seed(SEED)
model = models.SimpleCNN().to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
X, y = next(iter(recipe_train_loader))
start = [p.detach().clone() for p in model.parameters()]
nn.functional.cross_entropy(model(X), y).backward()
optimizer.step()
print(f"{'parameter':<22} {'mean |weight| at start':>23} {'median |first step|':>20}")
for (name, p), p0 in zip(model.named_parameters(), start):
    moved = (p.detach() - p0).abs()[p.grad != 0]
    print(f"{name:<22} {p0.abs().mean().item():>23.4f} {moved.median().item():>20.4f}")
    assert math.isclose(moved.median().item(), 0.1, rel_tol=1e-3)
weights = dict(zip([name for name, _ in model.named_parameters()], start))
assert weights["classifier.fc.weight"].abs().mean() < 0.1
assert weights["features.conv2.weight"].abs().mean() < 0.1

# %% [markdown]
#
# **(4) Stepping per batch on the batch loss.** The commented-out line turns `patience=5` into
# five *batches*. A batch loss is noisy: after a lucky batch sets `best`, six batches without a
# new best come quickly, and the lr is cut by 10 every few batches.

# %%
per_batch = run_recipe(0.1, epochs=1, step_per_batch=True)
batch_lrs = per_batch.batch_lrs
cuts = [step for step in range(1, len(batch_lrs)) if batch_lrs[step] < batch_lrs[step - 1]]
print(f"{len(cuts)} reductions in the first epoch ({len(batch_lrs)} batches), after batches",
      cuts)
print(f"lr at the last batch: {batch_lrs[-1]:.3g}")
assert len(cuts) >= 2
if len(batch_lrs) >= 500:
    assert batch_lrs[-1] < 1.2e-8 and len(cuts) == 7       # 0.1 -> 1e-8, then eps stops it
# Stepped once per epoch, the same scheduler needs the baseline plus 6 bad epochs: 7 epochs.
assert plateau_replay.replay_plateau([1.0] * 10, patience=5).reductions[0] == 7
notebook.record("per_batch_reductions_in_epoch_1", len(cuts))

# %%
fig, ax = plt.subplots(figsize=(7, 3.4), constrained_layout=True)
ax.plot(range(1, len(batch_lrs) + 1), batch_lrs, drawstyle="steps-post", **plotting.style(0))
ax.set_yscale("log")
ax.set_xlabel("batch (first epoch)")
ax.set_ylabel("learning rate (log scale)")
ax.set_title("ReduceLROnPlateau stepped on every batch loss: the lr collapses within an epoch")
ax.grid(True, alpha=0.3)
plt.show()

# %% [markdown]
# With the full training set (about 860 batches per epoch) the cuts go on until the lr reaches
# the floor that `eps` sets, about 1e-8 (section 7), long before the epoch ends; the cell checks
# that whenever the epoch has at least 500 batches. From then on training changes nothing. The
# root of the bug: `patience` counts calls to `step()`, whatever you call it with.
#
# **(5) Watching the training loss.** The recipe steps on the mean training loss. The cell below
# compares, for the lr-0.001 run, which epochs each curve calls an improvement, and where a
# `patience=5` scheduler would reduce on each (replayed on the recorded curves).

# %%
train_trace = plateau_replay.replay_plateau(reference.train_loss, factor=0.1, patience=5, lr=0.001)
val_trace = plateau_replay.replay_plateau(reference.val_loss, factor=0.1, patience=5, lr=0.001)
print("epoch  training loss  better?  validation loss  better?")
for t, v in zip(train_trace, val_trace):
    print(f"{t.epoch:>5}  {t.metric:>13.4f}  {'yes' if t.improved else 'no':>7}  "
          f"{v.metric:>15.4f}  {'yes' if v.improved else 'no':>7}")
disagree = [t.epoch for t, v in zip(train_trace, val_trace)
            if t.improved and not v.improved]
print("epochs the training loss calls better but the validation loss does not:", disagree)
print("on the training loss:", plateau_replay.describe(train_trace))
print("on the validation loss:", plateau_replay.describe(val_trace))

# %% [markdown]
# Every epoch the table marks "yes / no" is one where a scheduler on the training loss sees
# progress that does not reach unseen images; the cell lists them for this run. The fix is the
# one used in section 9: step on the validation loss, `scheduler.step(val_loss)`, after
# evaluating each epoch.
#
# ## 12. Resuming: save the scheduler's state too
#
# A checkpoint must hold the scheduler's `state_dict()`: for ReduceLROnPlateau that is `best`,
# `num_bad_epochs`, `cooldown_counter` and `last_epoch` (plus its settings). The optimizer's
# state already holds the current lr, so the lr survives without it; the *counters* do not.
# First on a fixed sequence, with a one-weight model and `course_utils.checkpoint`: interrupt
# after epoch 6, resume with and without the scheduler's state, and compare with the run that
# was never interrupted (`patience=1`, `factor=0.5`).

# %%
sequence = [1.00, 0.90, 0.95, 0.96, 0.85, 0.87, 0.86, 0.88, 0.89, 0.90]
INTERRUPTED_AFTER = 6


def tiny_run():
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, optimizer, lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)


def lrs_used(optimizer, scheduler, metrics):
    used = []
    for metric in metrics:
        used.append(optimizer.param_groups[0]["lr"])
        scheduler.step(metric)
    return used


model, optimizer, scheduler = tiny_run()
uninterrupted = lrs_used(optimizer, scheduler, sequence)

model, optimizer, scheduler = tiny_run()
before = lrs_used(optimizer, scheduler, sequence[:INTERRUPTED_AFTER])
saved_state = dict(scheduler.state_dict())
path = checkpoint.save_checkpoint(checkpoint_dir / "tiny.pt", model=model, optimizer=optimizer,
                                  scheduler=scheduler)

resumed = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for with_state in (True, False):
        model, optimizer, scheduler = tiny_run()
        checkpoint.load_checkpoint(path, model=model, optimizer=optimizer,
                                   scheduler=scheduler if with_state else None)
        resumed[with_state] = (scheduler, dict(scheduler.state_dict()),
                               optimizer.param_groups[0]["lr"], scheduler.get_last_lr()[0])
        resumed[with_state] += (before + lrs_used(optimizer, scheduler,
                                                  sequence[INTERRUPTED_AFTER:]),)
assert caught == []                      # nothing warns: losing the state is silent

# %% tags=["nbval-check-output"]
print(f"At the interruption (after epoch {INTERRUPTED_AFTER}):")
print(f"{'':<28}{'best':>6} {'num_bad_epochs':>15} {'last_epoch':>11} {'optimizer lr':>13}"
      f" {'get_last_lr()':>14}")
for label, with_state in (("loaded with its state", True), ("fresh scheduler", False)):
    _, state, optimizer_lr, last_lr = resumed[with_state][:4]
    print(f"{label:<28}{state['best']:>6.2f} {state['num_bad_epochs']:>15} "
          f"{state['last_epoch']:>11} {optimizer_lr:>13.4g} {last_lr:>14.4g}")
print("\nepoch  metric  lr: uninterrupted  resumed with state  resumed without")
for epoch, metric in enumerate(sequence, start=1):
    mark = "  <- resumed here" if epoch == INTERRUPTED_AFTER + 1 else ""
    print(f"{epoch:>5}  {metric:>6.2f}  {uninterrupted[epoch - 1]:>17.4g}  "
          f"{resumed[True][4][epoch - 1]:>18.4g}  {resumed[False][4][epoch - 1]:>15.4g}{mark}")

# %%
assert resumed[True][4] == uninterrupted
assert resumed[True][1] == saved_state and saved_state["best"] == 0.85
assert saved_state["num_bad_epochs"] == 1
fresh = resumed[False][1]
assert fresh["best"] == math.inf and fresh["num_bad_epochs"] == 0 and fresh["last_epoch"] == 0
assert resumed[False][2] == 0.05 and resumed[False][3] == 0.1   # lr restored; get_last_lr stale
assert resumed[False][4] != uninterrupted

# %% [markdown]
# Without its state the scheduler has forgotten that 0.85 was reached and that epoch 6 was
# already a bad one: epoch 7 becomes a new baseline (0.86, worse than the real best), and each
# reduction comes later than in the uninterrupted run. No error, no warning. One more silent
# trap: the fresh scheduler's `get_last_lr()` reports 0.1 while the optimizer trains with 0.05,
# until its first `step()`; read the lr from `optimizer.param_groups` when in doubt.
#
# Now with the LeNet run of section 9: load its checkpoint from the middle of training into new
# objects and train the remaining epochs, once with the scheduler's state and once without.

# %%
resume_epoch = EPOCHS // 2 + 1
path = checkpoint_dir / f"epoch_{resume_epoch}.pt"
resumed_runs = {}
for with_state in (True, False):
    model, optimizer, scheduler = new_run(plateau_fn)
    loaded = checkpoint.load_checkpoint(path, model=model, optimizer=optimizer,
                                        scheduler=scheduler if with_state else None)
    state = scheduler.state_dict()
    print(f"resumed {'with' if with_state else 'without'} the scheduler state after epoch "
          f"{loaded['epoch']}: best {state['best']:.4f}, num_bad_epochs "
          f"{state['num_bad_epochs']}")
    resumed_runs[with_state] = train_epochs(model, optimizer, scheduler, loaded["history"],
                                            EPOCHS - resume_epoch)

# %%
def rows(history, columns=("lr", "train_loss", "val_loss", "val_acc")):
    return [tuple(record[c] for c in columns) for record in history.records]


if device.type == "cpu":
    assert rows(resumed_runs[True]) == rows(on_plateau)      # exactly the uninterrupted run
else:                                                        # see section 9 on GPU drift
    drift = max(abs(a - b) / abs(b) for x, y in zip(rows(resumed_runs[True]), rows(on_plateau))
                for a, b in zip(x, y))
    print(f"{device.type}: resumed and uninterrupted runs differ by up to {drift:.1e}")
# Without its state, the scheduler restarted from scratch at the resume point: its lrs are those
# of a fresh replay of the validation losses recorded after resuming.
without = resumed_runs[False]
restart = plateau_replay.replay_plateau(without.val_loss[resume_epoch:],
                                        lr=without.lr[resume_epoch], factor=0.1, patience=2)
assert without.lr[resume_epoch:] == restart.lr_used
assert math.isfinite(replayed[resume_epoch - 1].best)   # what was lost: the real best
print("lr per epoch, uninterrupted:   ", [f"{lr:.3g}" for lr in on_plateau.lr])
print("resumed with the state:        ", [f"{lr:.3g}" for lr in resumed_runs[True].lr])
print("resumed without the state:     ", [f"{lr:.3g}" for lr in without.lr])
print(f"lost at the resume point: best {replayed[resume_epoch - 1].best:.4f} and "
      f"{replayed[resume_epoch - 1].num_bad_epochs} bad epoch(s) counted")

# %% [markdown]
# With the state, the resumed run *is* the uninterrupted run on a CPU (the checkpoint also
# restores the random generators, and `TensorLoader` replays each epoch's batch order). Without
# it, whether the lrs differ depends on where the run was interrupted: the scheduler restarts
# its count from a new baseline and forgets the best value, so a reduction that was nearly due
# can come later than it would have, or not at all. Save
# `scheduler.state_dict()` next to the model and the optimizer, as `checkpoint.save_checkpoint`
# does when you pass `scheduler=`.

# %%
checkpoint_folder.cleanup()     # the checkpoints have served; remove them

# %% [markdown]
# ## Summary
#
# - ReduceLROnPlateau compares each epoch's metric with the **best** value so far: oscillating
#   counts as not improving. The first `step()` only sets the baseline.
# - With `patience` p, the lr is cut in the `step()` of the (p + 1)-th bad epoch **in a row**;
#   the smaller lr is used from the next epoch. "patience = 2 reduces after the 3rd bad epoch"
#   is right when "3rd" means the 3rd consecutive bad epoch (epoch 4 after a baseline in epoch 1).
# - Better means: a < best·(1 − t) (`rel`) or a < best − t (`abs`), mirrored for `mode="max"`.
#   `rel` and `abs` can disagree on the same curve; with a negative metric, `rel` calls worse
#   values better: use `abs`.
# - `cooldown` ignores bad epochs after a cut; `factor` sets its size; `min_lr` is a floor (one per
#   param group if you like); `eps` skips tiny cuts and, with `min_lr=0`, stops the lr near 1e-8.
# - Watch the validation loss (`mode="min"`) or accuracy (`mode="max"`), step once per epoch.
#   Stepped per batch, `patience` counts batches and the lr collapses within an epoch.
# - `verbose=True` is a `TypeError` since PyTorch 2.7: print `get_last_lr()`.
# - Checkpoint the scheduler's state: without it, `best` and the bad-epoch count are silently lost.
#
# ## Exercises
#
# Each exercise has a check cell: replace `None` with your answer and run the cell.
#
# **1.** `patience=3`, a baseline in epoch 1 and no improvement afterwards: in which epoch does
# the lr first *train* with its reduced value?

# %%
answer_1 = None
notebook.check_answer(answer_1,
                      plateau_replay.replay_plateau([1.0] * 10, patience=3).reductions[0] + 1)

# %% [markdown]
# **2.** `mode="min"`, `threshold=0.01`, `threshold_mode="rel"`, best so far 0.50: which value
# must the next loss get *below* to count as better?

# %%
answer_2 = None
notebook.check_answer(answer_2, plateau_replay.improvement_bound(0.50, threshold=0.01))

# %% [markdown]
# **3.** `patience=1`, `cooldown=3`, a loss that never improves after epoch 1. The first
# reduction is at the end of epoch 3: at the end of which epoch is the second?

# %%
answer_3 = None
notebook.check_answer(answer_3, plateau_replay.replay_plateau([1.0] * 12, patience=1,
                                                              cooldown=3).reductions[1])

# %% [markdown]
# **4.** Start lr 0.1, `factor=0.5`, `min_lr=0`, default `eps=1e-8`, `patience=0`, a flat loss.
# How many reductions happen before `eps` stops them? (Work it out from lr · (1 − factor) ≤ eps,
# then check.)

# %%
answer_4 = None
notebook.check_answer(answer_4, len(plateau_replay.replay_plateau([1.0] * 60, patience=0,
                                                                  factor=0.5).reductions))

# %% [markdown]
# **5.** (Open.) Train the LeNet of section 9 with `ReduceLROnPlateau(optimizer, mode="max",
# patience=2)` stepped on the validation accuracy (`plateau_metric="val_acc"` in `training.fit`).
# Does it reduce at the same epochs as the run on the validation loss? Why might the two metrics
# disagree?
#
# ## References
#
# - PyTorch documentation, `torch.optim.lr_scheduler.ReduceLROnPlateau`:
#   https://docs.pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.ReduceLROnPlateau.html
#   (the 2.2 version still has the "patience = 2" sentence:
#   https://docs.pytorch.org/2.2/generated/torch.optim.lr_scheduler.ReduceLROnPlateau.html).
# - The scheduler's source, `torch/optim/lr_scheduler.py` (class `ReduceLROnPlateau`, methods
#   `step`, `_reduce_lr`, `_is_better`).
# - PyTorch pull request 147301, removing `verbose` from the schedulers (PyTorch 2.7):
#   https://github.com/pytorch/pytorch/pull/147301
# - D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015 (lr 0.001 is
#   the default suggested there).
# - H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
#   Machine Learning Algorithms", arXiv:1708.07747, 2017.
# - Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
#   recognition", Proceedings of the IEEE, 1998 (LeNet and MNIST).
