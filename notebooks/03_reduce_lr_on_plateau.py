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
# # 03 · ReduceLROnPlateau: cut the learning rate when the validation loss stalls
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lr-course/lr-schedulers-regularization/blob/main/notebooks/03_reduce_lr_on_plateau.ipynb)
#
# **What you will learn**
#
# - the rule behind ReduceLROnPlateau: compare with the *best* value so far, count bad epochs in
#   a row, cut the lr when the count passes `patience`;
# - what each parameter does (`patience`, `threshold`, `threshold_mode`, `cooldown`, `factor`,
#   `min_lr`, `eps`, `mode`), each on a tiny sequence of numbers with a step-by-step table;
# - when "patience = 2 ... reduces after the 3rd" is right, and two traps: a negative metric with
#   `threshold_mode="rel"`, and an accuracy watched with `mode="min"`;
# - why to watch the *validation* loss, on a LeNet and on a popular recipe (Adam at lr 0.1,
#   stepped on the training loss) taken apart defect by defect; why checkpoints need its state.

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
import dataclasses
import math
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.optim import lr_scheduler

from course_utils import (checkpoint, data, models, notebook, plateau_replay, plotting,
                          schedulers, training)
from course_utils.widgets import plateau_simulator

device = notebook.report_device()   # a GPU when there is one

# %% tags=["parameters"]
FAST = notebook.fast_mode()                   # COURSE_FAST=1: small defaults for tests
EPOCHS = 3 if FAST else 12                    # epochs of each LeNet run (sections 9 and 12)
TRAIN_SIZE = 1000 if FAST else None           # LeNet training images (None: all that remain)
VAL_SIZE = 500 if FAST else 5000              # images held out for validation
BATCH_SIZE = 64
LR = 0.05                                     # the start lr of the LeNet runs (SGD, momentum 0.9)
RECIPE_EPOCHS = 3 if FAST else 12             # epochs of each run of the second recipe
RECIPE_TRAIN_SIZE = 2000 if FAST else None    # its training images (None: all that remain)
SEED = 0

# %% [markdown]
# ## 1. The rule: reduce when the metric has stopped improving
#
# The chapter's idea: lower the learning rate when the monitored metric has stopped improving,
# for instance when the validation loss no longer goes down but oscillates. PyTorch turns that
# into a rule with a memory of three numbers:
#
# 1. `best`: the best value seen so far. Every epoch, `scheduler.step(metric)` compares the new
#    value with `best`, **not with the previous epoch**. Better (by more than `threshold`): it
#    becomes the new `best` and the count of bad epochs goes back to 0. Otherwise: one more bad
#    epoch.
# 2. `num_bad_epochs`: when it exceeds `patience`, the lr of every param group is multiplied by
#    `factor` (never below `min_lr`) and the count restarts at 0.
# 3. `cooldown_counter`: after a reduction, `cooldown` epochs in which bad epochs are not counted.
#
# `plateau_replay.replay_plateau` replays that rule on a list of numbers, without a model, and
# `format_steps` prints one row per `scheduler.step(metric)`: **better?** is the verdict; **bad**
# the bad epochs in a row compared with `patience`; **cooldown** the counter after the step;
# **lr used** the lr the epoch trained with, **lr next** the one the next epoch gets.
#
# A validation loss that oscillates after epoch 2, with `patience=3`, `factor=0.5`. Is the replay
# what PyTorch does? One check here: step torch's own scheduler through the same losses
# (`schedulers.lr_trace` does it on a throwaway optimizer) and compare the lrs. Every table in
# this lesson is checked against torch field by field (best value, both counters, every lr) in
# `tests/test_lesson03.py`, on every commit.

# %% tags=["nbval-check-output"]
oscillating_loss = [1.00, 0.70, 0.75, 0.72, 0.76, 0.71, 0.74, 0.69]
oscillating = plateau_replay.replay_plateau(oscillating_loss, patience=3, factor=0.5)
print(plateau_replay.format_steps(oscillating))
torch_lrs = schedulers.lr_trace(
    lambda optimizer: lr_scheduler.ReduceLROnPlateau(optimizer, patience=3, factor=0.5),
    epochs=len(oscillating_loss), metrics=oscillating_loss)
print("lr used, torch :", torch_lrs)
print("lr used, replay:", oscillating.lr_used)
assert torch_lrs == oscillating.lr_used

# %%
plateau_replay.draw_plateau(oscillating, metric_label="validation loss",
                            title="Oscillating is not improving: epochs 3-7 never beat the best "
                                  "(0.70)")
plt.show()

# %% [markdown]
# Epochs 4 and 6 went *down* from the epoch before, yet they are bad epochs: neither beats the
# best value, 0.70. Top: the metric, the best so far, and the *threshold band* a value must get
# below to count as better. Middle: bad epochs in a row against `patience`. Bottom: the lr; a
# dotted line marks the end of an epoch whose step cut it.
#
# **Which metric to watch.** The goal is a model that does well on images it has not seen, and
# only a validation split measures that. The training loss can keep falling after the validation
# loss has stopped, and a scheduler watching it then sees "progress" while the network only
# memorizes (section 11). Never use the test set for this: it would make the test score
# optimistic.
#
# ## 2. `patience`, and the sentence "reduces after the 3rd"
#
# Before the first `step()`, `best` is +infinity (−infinity for `mode="max"`), so the first value
# always counts as better: **the first epoch only sets the baseline**. A loss that never improves
# after the baseline, `patience=2`, `factor=0.1`:

# %% tags=["nbval-check-output"]
flat = plateau_replay.replay_plateau([1.0] * 8, patience=2)
print(plateau_replay.format_steps(flat))
print(plateau_replay.describe(flat))
assert flat.reductions[0] == 2 + 2 and flat.lr_used[3] == 0.1 and flat.lr_used[4] < 0.1

# %% [markdown]
# The chapter says: *"patience = 2 ignores the first 2 bad epochs and reduces after the 3rd"*
# (PyTorch's documentation said nearly the same until at least 2.2). The table settles it:
#
# - "the 3rd" is the **3rd bad epoch in a row**, not the 3rd epoch of training: with the baseline
#   in epoch 1, that is epoch 4.
# - "reduces after" is exact: the cut happens in the `step()` at the *end* of epoch 4, so epoch 4
#   still trains with the old lr and the **new lr is first used in epoch 5**.
# - "in a row" matters: one better epoch resets the count (epoch 8 in section 1's table).
# - In general, with patience p and no improvement after the baseline, the first cut comes in
#   the step of epoch p + 2 (tested for p = 0 to 6 in `tests/test_lesson03.py`).

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
# `tests/test_lesson03.py` checks this table against torch's verdicts on a grid of values just
# below, exactly on and just above each bound. With the default t = 1e-4, a change smaller than
# 0.01 % of `best` is not an improvement, and a tie never is (for a positive metric).

# %% [markdown]
# ### `rel` and `abs` can give opposite verdicts on the same curve
#
# `rel` asks for a step proportional to the metric's size, `abs` for a fixed step. A validation
# loss near 0.2 that falls by 0.003 per epoch, with `threshold=0.01` and `patience=2`: `rel` asks
# for a drop of more than 1 % of `best` and sees progress every epoch; `abs` asks
# for a drop of more than 0.01 below `best`, which takes four epochs of 0.003, and after three
# bad epochs in a row `patience=2` has already cut the lr.

# %% tags=["nbval-check-output"]
slow_descent = [0.200, 0.197, 0.194, 0.191, 0.188, 0.185, 0.182, 0.179, 0.176]
traces = {mode: plateau_replay.replay_plateau(slow_descent, threshold=0.01,
                                              threshold_mode=mode, patience=2)
          for mode in ("rel", "abs")}
for mode, trace in traces.items():
    print(f"threshold_mode={mode!r}: {plateau_replay.describe(trace)}")
    print("  better in epochs", [s.epoch for s in trace if s.improved])
assert traces["rel"].reductions == [] and traces["abs"].reductions == [4, 8]

# %% [markdown]
# Choose `abs` when you know what a meaningful change is in the metric's units (0.001 of
# accuracy, say); `rel` when the scale is unknown or shrinks a lot during training, as a loss's.
#
# ### The negative-metric trap in `rel` mode
#
# With `mode="min"` and `rel`, the bound is best · (1 − t). For a **negative** `best` it lies
# *above* `best`: −1.0 · (1 − 0.1) = −0.9, so a value between −1.0 and −0.9 is *worse*, yet counts
# as better. Negative metrics are common: a log-likelihood, a negative ELBO, −accuracy.

# %% tags=["nbval-check-output"]
getting_worse = [-1.00, -0.95, -0.91, -0.88, -0.86, -0.85]
print("bound after the baseline -1.0:", plateau_replay.improvement_bound(-1.0, threshold=0.1))
for mode in ("rel", "abs"):
    trace = plateau_replay.replay_plateau(getting_worse, threshold=0.1, threshold_mode=mode,
                                          patience=1)
    print(f"threshold_mode={mode!r}: better in epochs {[s.epoch for s in trace if s.improved]};",
          plateau_replay.describe(trace))

# %% [markdown]
# Every value is worse than the one before, and `rel` calls each of them a new best. Rule of
# thumb: if the metric can be negative, use `threshold_mode="abs"`.
#
# ## 4. `cooldown`: a pause after each reduction
#
# After a cut, bad epochs are not counted for `cooldown` epochs, giving the new lr time to show
# its effect. `patience=2`, `cooldown=2`, a loss that never improves:

# %% tags=["nbval-check-output"]
cooled = plateau_replay.replay_plateau([1.0] * 12, patience=2, cooldown=2, factor=0.5)
print(plateau_replay.format_steps(cooled))
assert cooled.reductions == [4, 4 + 2 + 2 + 1]

# %%
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
# Each reduction multiplies the lr by `factor` (it must be below 1), so after k reductions
# lr = lr₀ · factorᵏ, up to the last bit of a float (torch multiplies step by step, which is why
# the tables round lrs to 6 significant digits). The schedules below come from torch's scheduler
# stepped on a flat loss with `patience=2`:

# %%
factor_traces = {f"factor={factor}": schedulers.lr_trace(
    lambda optimizer: lr_scheduler.ReduceLROnPlateau(optimizer, patience=2, factor=factor),
    epochs=20, metrics=[1.0] * 20) for factor in (0.1, 0.3, 0.5, 0.8)}
plotting.plot_schedules(factor_traces, title="A flat loss, patience=2: factor sets the size of "
                                             "each step down (cuts at epochs 4, 7, ..., 19)")
plt.show()
assert factor_traces["factor=0.5"][-1] == 0.1 * 0.5**6        # halving is exact in floats
print("0.1 * 0.1 =", 0.1 * 0.1)

# %% [markdown]
# `factor=0.1` (the default) divides the lr by 10 at once; 0.5 halves it. A small factor reacts
# strongly to one plateau that may only be noise; a factor close to 1 needs many plateaus to
# change anything.
#
# ## 6. `min_lr`: a floor, for all groups or one per group
#
# The new lr is max(lr · factor, `min_lr`). With several param groups (say a new head at 0.1 and a
# pretrained body at 0.01), `min_lr` can be a list, one floor per group (lrs side by side):

# %% tags=["nbval-check-output"]
two_groups = plateau_replay.replay_plateau([1.0] * 5, lr=[0.1, 0.01], patience=0,
                                           min_lr=[0.005, 0.0])
print(plateau_replay.format_steps(two_groups))
assert two_groups[-1].lrs_after[0] == 0.005       # group 0 stops at its floor, group 1 goes on

# %% [markdown]
# ## 7. `eps`: reductions too small to matter are skipped
#
# A reduction is applied only if it changes the lr by more than `eps` (default 1e-8), in absolute
# terms. With `eps=0.06`, halving 0.1 (a change of 0.05) is skipped every time; the bad-epoch
# count is still reset:

# %% tags=["nbval-check-output"]
skipped = plateau_replay.replay_plateau([1.0] * 4, patience=0, factor=0.5, eps=0.06)
print(plateau_replay.format_steps(skipped))
assert skipped.reductions == [] and skipped.skipped == [2, 3, 4]

# %% [markdown]
# So with `min_lr=0`, `eps` is what finally stops the lr: the step from lr to lr · factor is
# skipped once lr · (1 − factor) ≤ eps. "Going deeper" works out where the lr then stops (not
# always near 1e-8).
#
# ## 8. `mode="max"`: for a metric that should go up
#
# Accuracy improves upwards, so it needs `mode="max"`. Watch a rising accuracy with the default
# `mode="min"` and every rise is a bad epoch:

# %% tags=["nbval-check-output"]
rising_accuracy = [0.70, 0.75, 0.78, 0.80, 0.81, 0.82]
for mode in ("max", "min"):
    trace = plateau_replay.replay_plateau(rising_accuracy, mode=mode, patience=1, factor=0.5)
    print(f"mode={mode!r}: {plateau_replay.describe(trace)}")

# %% [markdown]
# `training.fit` refuses that mismatch before training (the next section tries it).
#
# ## 9. Training LeNet: plateau on the validation loss vs a constant lr
#
# The chapter's setup: LeNet on Fashion-MNIST, SGD with momentum 0.9. One run keeps the lr
# constant; the other uses `ReduceLROnPlateau(optimizer, factor=0.1, patience=2)` stepped on the
# validation loss at the end of every epoch. Both start from the same seed, with
# `training.set_seed(SEED, deterministic=True)` so that on a GPU cuDNN, too, picks deterministic
# algorithms.

# %%
train_full, test = data.load_fashion_mnist()
train, val = data.lesson_split(train_full, val_size=VAL_SIZE, train_size=TRAIN_SIZE, seed=SEED)
train_loader = data.TensorLoader(train, BATCH_SIZE, shuffle=True, device=device, seed=SEED)
val_loader = data.TensorLoader(val, 1000, device=device)
print(f"{len(train):,} training images, {len(val):,} validation images")


def plateau_fn(optimizer):
    return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.1, patience=2)


def new_run(scheduler_fn=None):
    """A fresh, seeded LeNet with its SGD optimizer (and the scheduler `scheduler_fn` builds)."""
    training.set_seed(SEED, deterministic=True)
    model = models.LeNet().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    scheduler = scheduler_fn(optimizer) if scheduler_fn is not None else None
    return model, optimizer, scheduler


def train_run(model, optimizer, scheduler=None):
    history = training.fit(model, train_loader, val_loader, optimizer, epochs=EPOCHS,
                           scheduler=scheduler, progress=False)
    for record in history.records:
        print(f"epoch {record['epoch']:>2}: lr {record['lr']:.3g}, "
              f"validation loss {record['val_loss']:.4f}, accuracy {record['val_acc']:.2%}")
    return history


# %%
model, optimizer, _ = new_run()
try:            # the guard: an accuracy watched with mode="min" (section 8)
    training.fit(model, train_loader, val_loader, optimizer, epochs=1, plateau_metric="val_acc",
                 scheduler=lr_scheduler.ReduceLROnPlateau(optimizer, mode="min"))
except ValueError as error:
    print("ValueError:", error, "\n")
print("constant lr")
constant = train_run(*new_run())
print("ReduceLROnPlateau on the validation loss")
on_plateau = train_run(*new_run(plateau_fn))

# %%
plotting.plot_histories({"constant lr": constant, "ReduceLROnPlateau(val_loss)": on_plateau},
                        ("train_loss", "val_loss", "val_acc", "lr"),
                        title="LeNet, SGD momentum 0.9: constant lr vs plateau on the "
                              "validation loss")
plt.show()

# %% [markdown]
# What the scheduler did is no mystery: replaying its rule on the validation losses that `fit`
# recorded gives exactly the lrs training used. Until the first epoch that trained with a reduced
# lr, the two runs are the same run, number for number, on a CPU. On a GPU some kernels (not
# only cuDNN's) may still add up in a varying order, so there the cell prints how far the two
# runs drift apart instead.

# %%
replayed = plateau_replay.replay_plateau(on_plateau.val_loss, lr=LR, factor=0.1, patience=2)
assert on_plateau.lr == replayed.lr_used and constant.lr == [LR] * EPOCHS
shared = next(iter(replayed.reductions), EPOCHS)         # epochs trained before any cut applied
drift = max((abs(a[key] - b[key]) for a, b in zip(constant.records[:shared],
             on_plateau.records[:shared]) for key in ("train_loss", "val_loss")), default=0.0)
print(f"{device.type}: in the first {shared} epochs the two runs differ by up to {drift:.1e}")
assert device.type != "cpu" or drift == 0.0
print(plateau_replay.format_steps(replayed))
print(plateau_replay.describe(replayed))

summary = {name: {"best_val_loss": round(history.best("val_loss")["val_loss"], 4),
                 "at_epoch": history.best("val_loss")["epoch"],
                 "final_val_acc": round(history.val_acc[-1], 4)}
           for name, history in {"constant lr": constant, "plateau": on_plateau}.items()}
notebook.record("lenet_constant_vs_plateau", summary)

# %% [markdown]
# How to read this honestly: one seed, and the runs differ only from the first epoch that trained
# with a reduced lr (with `patience=2`, epoch 5 at the earliest: the fast mode's 3 epochs cannot
# show one). One comparison does not show which schedule is better in general: rerun with another
# `SEED` before you trust a small difference (notebook 05 measures how much the seed matters).
#
# ## 10. The simulator: every parameter on a slider
#
# Pick a curve, move the sliders, and watch the three panels of section 1 change. The first
# curves are the ones recorded above; the synthetic ones (with noise and a seed) work anywhere. A
# recorded curve is fixed, so the simulator answers "what would the scheduler have decided on
# this curve", not "what would training have done" (a cut changes every value after it).

# %% tags=["nbval-ignore-output"]
plateau_simulator.plateau_explorer({"LeNet, constant lr: validation loss": constant.val_loss,
                                    "LeNet, constant lr: validation accuracy": constant.val_acc,
                                    "LeNet, plateau run: validation loss": on_plateau.val_loss})

# %% [markdown]
# Try: with the "overfits" curve, how do `patience` and `cooldown` move the cuts? With an accuracy
# curve, what goes wrong in `mode="min"`? Raise the noise: when does a small `patience` cut on
# noise alone? Set `eps` to 1e-3: which cuts vanish?
#
# ## 11. A second recipe, defect by defect
#
# The second reference recipe trains a small CNN (conv 1→8, pool, conv 8→16, pool, linear; here
# `models.SimpleCNN`) on MNIST with Adam at lr 0.1, batch 64, for 50 epochs, with images scaled to
# [0, 1] by `ToTensor()` and nothing else. Its training loop, **paraphrased** (the recipe's
# names, order and scheduler lines; the data and model set-up shortened; the numbers are ours):
#
# ```python
# optimizer = optim.Adam(model.parameters(), lr=0.1)
# scheduler = ReduceLROnPlateau(optimizer, factor=0.1, patience=5, verbose=True)  # (2)
# for epoch in range(1, num_epochs):                                            # (3)
#     losses = []
#     for batch_idx, (data, targets) in enumerate(train_loader):
#         data = data.reshape(data.shape[0], -1)                                # (1)
#         scores = model(data)
#         loss = criterion(scores, targets)
#         losses.append(loss.item())
#         loss.backward()
#         optimizer.step()
#         optimizer.zero_grad()
#         # scheduler.step(loss)                                                # (4)
#     mean_loss = sum(losses) / len(losses)
#     scheduler.step(mean_loss)                                                 # (5)
# ```
#
# Defects (1) and (2) stop it; (3)-(5) are silent. What we change to run it, and whether it
# matters:
#
# - (1) no `reshape`: a CNN needs (N, 1, 28, 28), it crashes without the change (shown below).
# - (2) no `verbose=True`: a `TypeError` since torch 2.7; it only printed, so it does not matter.
# - `RECIPE_EPOCHS` epochs, not 50 (or 49, see (3)), for time in class: fewer chances to cut;
#   with `patience=5` the first cut cannot come before epoch 7 (section 2's p + 2).
# - `VAL_SIZE` images held out for validation, to see what happens on unseen images: fewer
#   training images (a subset in fast mode), the same defects.
# - `data.TensorLoader` instead of `DataLoader`: another shuffle order, like another seed.
# - the inputs: the recipe only scales to [0, 1] (`ToTensor()`); the course's loader also
#   normalizes. **Both are run below**: does normalizing decide whether Adam at lr 0.1 learns?
# - MNIST, or Fashion-MNIST when MNIST is not found (offline): the cell says which.
#
# Kept as in the recipe: the `losses` list, `zero_grad()` after `step()` (the same as before
# `backward()`: gradients are cleared before the next backward either way, checked in
# `tests/test_lesson03.py`), Adam at lr 0.1, and the scheduler on the mean training loss.

# %%
try:
    recipe_full, _ = data.load_mnist()
    recipe_data = "MNIST"
except data.DataError:
    recipe_full, recipe_data = train_full, "Fashion-MNIST (MNIST could not be loaded)"
recipe_train, recipe_val = data.lesson_split(recipe_full, val_size=VAL_SIZE,
                                             train_size=RECIPE_TRAIN_SIZE, seed=SEED)


def recipe_loaders(normalized):
    """(train, validation) loaders; not normalized: x / 255 in [0, 1], what ToTensor() gives."""
    train_split, val_split = [split if normalized else dataclasses.replace(split, mean=0.0,
                                                                           std=1.0)
                              for split in (recipe_train, recipe_val)]
    return (data.TensorLoader(train_split, 64, shuffle=True, device=device, seed=SEED),
            data.TensorLoader(val_split, 1000, device=device))


X, y = next(iter(recipe_loaders(normalized=False)[0]))   # X: (64, 1, 28, 28)
print(f"The recipe runs on {recipe_data}: {len(recipe_train):,} training images, "
      f"{len(recipe_val):,} validation images; ToTensor()-like inputs in "
      f"[{X.min():.1f}, {X.max():.1f}]")

# %% [markdown]
# **(1) Flattening the images before a CNN.** A convolution needs images shaped (N, 1, 28, 28);
# `reshape(N, -1)` turns them into rows of 784 numbers, and `SimpleCNN` says so. **(2)**
# `verbose=True`, deprecated in PyTorch 2.2, is gone since 2.7: print `scheduler.get_last_lr()`.

# %%
model = models.SimpleCNN().to(device)
try:
    model(X.reshape(X.shape[0], -1))                    # (64, 784)
except ValueError as error:
    print("ValueError:", error)
optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
try:
    lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=5, verbose=True)
    print(f"torch {torch.__version__} still accepts verbose=True (removed in 2.7)")
except TypeError as error:
    print("TypeError:", error)

# %% [markdown]
# **(3) `range(1, num_epochs)` runs one epoch less than `num_epochs`**: it stops *before* its end.

# %% tags=["nbval-check-output"]
num_epochs = 50
print("range(1, num_epochs) ->", len(range(1, num_epochs)), "epochs; range(1, num_epochs + 1) ->",
      len(range(1, num_epochs + 1)), "epochs")

# %% [markdown]
# Here is the recipe's loop with the changes of the table. It also evaluates on the validation
# split after each epoch (which changes nothing in training), and can step per batch, the
# recipe's commented-out line (4).

# %%
def run_recipe(lr=0.1, *, normalized=False, epochs=RECIPE_EPOCHS, step_per_batch=False,
               seed=SEED):
    """The recipe, changed as in the table. Returns a History with the lr of every batch."""
    train_loader, val_loader = recipe_loaders(normalized)
    training.set_seed(seed, deterministic=True)
    model = models.SimpleCNN().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=5)
    criterion = nn.CrossEntropyLoss()
    history = training.History()
    for epoch in range(1, epochs + 1):                  # (3) fixed: all `epochs` epochs
        train_loader.set_epoch(epoch - 1)
        model.train()
        losses, epoch_lr = [], optimizer.param_groups[0]["lr"]
        for images, targets in train_loader:            # (1) fixed: images stay (N, 1, 28, 28)
            loss = criterion(model(images), targets)
            losses.append(loss.item())
            loss.backward()
            history.batch_lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            optimizer.zero_grad()
            if step_per_batch:
                scheduler.step(loss.item())             # (4): patience counted in batches
        mean_loss = sum(losses) / len(losses)
        if not step_per_batch:
            scheduler.step(mean_loss)                   # (5): the mean training loss
        val_loss, val_acc = training.evaluate(model, val_loader)
        history.records.append({"epoch": epoch, "lr": epoch_lr, "train_loss": mean_loss,
                                "val_loss": val_loss, "val_acc": val_acc})
    return history


# %% [markdown]
# ### What Adam at lr = 0.1 does, with and without normalized inputs
#
# Adam's usual lr is 0.001; the recipe uses 100 times that. We run it with three seeds on the
# recipe's [0, 1] inputs and on normalized inputs, and once at lr 0.001 for reference. A network
# stuck at chance level has a validation loss near ln 10 (the loss of a uniform guess over ten
# classes) and an accuracy near 10 %.

# %%
recipe_runs = {}
for normalized in (False, True):
    for seed in (SEED, SEED + 1, SEED + 2):
        name = f"lr 0.1, {'normalized' if normalized else '[0, 1]'}, seed {seed}"
        recipe_runs[name] = run_recipe(0.1, normalized=normalized, seed=seed)
recipe_runs["lr 0.001, [0, 1]"] = run_recipe(0.001)

reference, verdicts = recipe_runs["lr 0.001, [0, 1]"], {}
for name, history in recipe_runs.items():
    stuck = history.val_acc[-1] < 0.2 and abs(history.val_loss[-1] - math.log(10)) < 0.05
    verdicts[name] = "stuck at chance" if stuck else "learns"
    print(f"{name:<30} final validation accuracy {history.val_acc[-1]:7.2%}, loss "
          f"{history.val_loss[-1]:.4f}: {verdicts[name]}")
    assert name == "lr 0.001, [0, 1]" or history.val_acc[-1] < reference.val_acc[-1], name
pairs = {seed: [verdicts[f"lr 0.1, {inputs}, seed {seed}"] for inputs in ("[0, 1]", "normalized")]
         for seed in (SEED, SEED + 1, SEED + 2)}
print("seeds for which normalization alone changed the verdict:",
      [seed for seed, (raw, normed) in pairs.items() if raw != normed] or "none")
notebook.record("recipe_final_val_acc", {name: round(h.val_acc[-1], 4)
                                         for name, h in recipe_runs.items()})

# %%
plotting.plot_histories(recipe_runs, ("train_loss", "val_loss", "val_acc"),
                        title=f"The recipe on {recipe_data.split(' ')[0]}: Adam at lr 0.1 "
                              "(three seeds, two input scalings) vs lr 0.001")
plt.show()

# %% [markdown]
# At lr 0.1 every run ends behind lr 0.001 (asserted). The cell says which runs left chance level
# and lists the seeds where normalization alone changed that: a reader who normalizes the
# recipe's inputs "to be safe" is no longer running the recipe.
#
# **(4) Stepping per batch.** The commented-out line turns `patience=5` into five *batches*. A
# batch loss is noisy: after a lucky batch sets `best`, six batches without a new best come fast.

# %%
per_batch = run_recipe(0.1, epochs=1, step_per_batch=True)
batch_lrs = per_batch.batch_lrs
cuts = [step for step in range(1, len(batch_lrs)) if batch_lrs[step] < batch_lrs[step - 1]]
print(f"{len(cuts)} reductions in the first epoch ({len(batch_lrs)} batches), after batches",
      cuts, f"; lr at the last batch: {batch_lrs[-1]:.3g}")
assert len(cuts) >= 2
notebook.record("per_batch_reductions_in_epoch_1", len(cuts))

fastest = plateau_replay.replay_plateau([1.0] * 60, patience=5)   # never a new best
print(f"fastest collapse: cuts after batches {fastest.reductions}, down to lr "
      f"{fastest[-1].lr_after:.3g}; an epoch on all {len(recipe_full) - len(recipe_val):,} "
      f"training images found here: {math.ceil((len(recipe_full) - len(recipe_val)) / 64)} batches")

# %% [markdown]
# Compare how many batches the cuts need at the least with how many an epoch on the whole
# training set has. At the floor that `eps` sets, training changes nothing. The root of the bug:
# `patience` counts calls to `step()`, whatever you call it with.
#
# **(5) Watching the training loss.** For the lr-0.001 run, which epochs does each curve call an
# improvement (replayed on the recorded curves, `patience=5`)?

# %%
train_trace = plateau_replay.replay_plateau(reference.train_loss, factor=0.1, patience=5, lr=0.001)
val_trace = plateau_replay.replay_plateau(reference.val_loss, factor=0.1, patience=5, lr=0.001)
for name, trace in (("training loss", train_trace), ("validation loss", val_trace)):
    print(f"{name:<15} better in epochs {[s.epoch for s in trace if s.improved]}")
print("epochs the training loss calls better but the validation loss does not:",
      [t.epoch for t, v in zip(train_trace, val_trace) if t.improved and not v.improved])

# %% [markdown]
# Each epoch listed is progress a scheduler on the training loss sees that does not reach unseen
# images. The fix is section 9's: `scheduler.step(val_loss)` after evaluating each epoch.
#
# ## 12. Resuming: save the scheduler's state too
#
# ReduceLROnPlateau's `state_dict()` holds `best`, `num_bad_epochs`, `cooldown_counter` and
# `last_epoch`. The optimizer's state holds the current lr, so the lr survives without it; the
# *counters* do not. On a fixed sequence, with a one-weight model and `course_utils.checkpoint`:
# interrupt after epoch 6, resume with and without the scheduler's state, and compare with the
# run never interrupted (`patience=1`, `factor=0.5`).

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
    return used + [optimizer.param_groups[0]["lr"]]     # and the lr after the last step


def cut_epochs(lrs):
    return [epoch for epoch in range(1, len(lrs)) if lrs[epoch] < lrs[epoch - 1]]


model, optimizer, scheduler = tiny_run()
uninterrupted = lrs_used(optimizer, scheduler, sequence)
model, optimizer, scheduler = tiny_run()
before = lrs_used(optimizer, scheduler, sequence[:INTERRUPTED_AFTER])[:-1]
folder = tempfile.TemporaryDirectory(prefix="plateau-")    # deleted at the end of the cell
path = checkpoint.save_checkpoint(Path(folder.name) / "tiny.pt", model=model,
                                  optimizer=optimizer, scheduler=scheduler)
resumed = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for with_state in (True, False):
        model, optimizer, scheduler = tiny_run()
        checkpoint.load_checkpoint(path, model=model, optimizer=optimizer,
                                   scheduler=scheduler if with_state else None)
        resumed[with_state] = before + lrs_used(optimizer, scheduler,
                                                sequence[INTERRUPTED_AFTER:])
assert caught == []                      # nothing warns: losing the state is silent
folder.cleanup()

# %% tags=["nbval-check-output"]
print("epoch  metric  lr: uninterrupted  resumed with state  resumed without")
for epoch, metric in enumerate(sequence, start=1):
    mark = "  <- resumed here" if epoch == INTERRUPTED_AFTER + 1 else ""
    print(f"{epoch:>5}  {metric:>6.2f}  {uninterrupted[epoch - 1]:>17.4g}  "
          f"{resumed[True][epoch - 1]:>18.4g}  {resumed[False][epoch - 1]:>15.4g}{mark}")
for label, lrs in (("uninterrupted", uninterrupted), ("with state", resumed[True]),
                   ("without state", resumed[False])):
    print(f"{label:<14} cuts at the end of epochs {cut_epochs(lrs)}, final lr {lrs[-1]:.4g}")
assert resumed[True] == uninterrupted
after_resume = {label: [e for e in cut_epochs(lrs) if e > INTERRUPTED_AFTER]
                for label, lrs in (("uninterrupted", uninterrupted), ("without", resumed[False]))}
assert after_resume == {"uninterrupted": [7, 9], "without": [9]}

# %% [markdown]
# With the state, the resumed run is the uninterrupted one. Without it, the scheduler has
# forgotten that 0.85 was reached and that epoch 6 was already a bad one: epoch 7 (0.86) becomes
# a new baseline. After the resume point the uninterrupted run cuts at the end of epochs 7 and 9,
# the run resumed without its state only at 9: one cut comes later and one never comes, so the
# run finishes at twice the lr. No error, no warning.
#
# With `checkpoint.save_checkpoint(..., scheduler=scheduler)` the state travels with the model
# and the optimizer; the checkpoint also restores the random generators, so a resumed LeNet run
# repeats the uninterrupted one number for number on a CPU (`tests/test_checkpoint.py`).

# %% [markdown]
# ## Going deeper
#
# ### Where `eps` stops the lr when `min_lr=0`
#
# A cut from lr to lr · f is skipped once lr · (1 − f) ≤ eps, i.e. lr ≤ eps / (1 − f). The lr
# where the cuts stop, L, satisfies that; the lr before the last cut did not: L / f > eps / (1 − f).
# Together (when at least one cut happened): **eps · f / (1 − f) < L ≤ eps / (1 − f)**. That is
# near 1e-8 only for some factors and start lrs:

# %% tags=["nbval-check-output"]
EPS = 1e-8
print("start lr  factor  cuts  final lr  final / eps  interval")
for lr, factor in ((0.1, 0.1), (0.5, 0.1), (0.1, 0.5), (0.1, 0.9)):
    trace = plateau_replay.replay_plateau([1.0] * 400, lr=lr, factor=factor, patience=0)
    final = trace[-1].lr_after
    low, high = EPS * factor / (1 - factor), EPS / (1 - factor)
    assert low < final <= high
    print(f"{lr:>8}  {factor:>6}  {len(trace.reductions):>4}  {final:8.3g}  {final / EPS:>11.2f}"
          f"  ({low:.3g}, {high:.3g}]")
torch_final = schedulers.lr_trace(
    lambda optimizer: lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.9, patience=0),
    epochs=400, metrics=[1.0] * 400)[-1]
print(f"torch, start 0.1, factor 0.9: final lr {torch_final:.3g}")

# %% [markdown]
# With `factor=0.9` the lr stops about nine times above 1e-8; with a start lr of 0.5 and
# `factor=0.1` it stops *below* eps. `tests/test_lesson03.py` checks the interval against torch
# for many start lrs and factors.

# %% [markdown]
# ## Summary
#
# - ReduceLROnPlateau compares each epoch's metric with the **best** value so far: oscillating
#   counts as not improving. The first `step()` only sets the baseline.
# - With `patience` p, the lr is cut in the `step()` of the (p + 1)-th bad epoch **in a row**; the
#   smaller lr is used from the next epoch. "patience = 2 ... reduces after the 3rd" is right when
#   "3rd" means the 3rd consecutive bad epoch (epoch 4 after a baseline in epoch 1).
# - Better means a < best·(1 − t) (`rel`) or a < best − t (`abs`), mirrored for `mode="max"`.
#   `rel` and `abs` can disagree on the same curve; with a negative metric, `rel` calls worse
#   values better: use `abs`.
# - `cooldown` ignores bad epochs after a cut; `factor` sets its size; `min_lr` is a floor (one
#   per param group if you like); `eps` skips tiny cuts, and with `min_lr=0` stops the lr
#   somewhere in (eps·f/(1 − f), eps/(1 − f)].
# - Watch the validation loss (`mode="min"`) or accuracy (`mode="max"`), step once per epoch.
#   Stepped per batch, `patience` counts batches and the lr collapses within an epoch.
# - Running someone's recipe means running its preprocessing too (section 11 measures whether
#   normalizing changes what Adam at lr 0.1 does). `verbose=True` is a `TypeError` since 2.7.
# - Checkpoint the scheduler's state: without it, `best` and the bad-epoch count are silently
#   lost, and cuts come late or not at all.
#
# ## Exercises
#
# Each exercise has a check cell: replace `None` with your answer and run the cell. Where the
# answer is a number with decimals, the question says how many significant digits to give.
#
# **1.** `patience=3`, a baseline in epoch 1 and no improvement afterwards: in which epoch does the
# lr first *train* with its reduced value? (A whole number.)

# %%
answer_1 = None
first_cut = plateau_replay.replay_plateau([1.0] * 10, patience=3).reductions[0]
notebook.check_answer(answer_1, first_cut + 1)

# %% [markdown]
# **2.** `mode="min"`, `threshold=0.01`, `threshold_mode="rel"`, best so far 0.50: which value must
# the next loss get *below* to count as better? (Give 3 significant digits.)

# %%
answer_2 = None
notebook.check_answer(answer_2, plateau_replay.improvement_bound(0.50, threshold=0.01), digits=3)

# %% [markdown]
# **3.** `patience=1`, `cooldown=3`, a loss that never improves after epoch 1. The first reduction
# is at the end of epoch 3: at the end of which epoch is the second? (A whole number.)

# %%
answer_3 = None
cooling = plateau_replay.replay_plateau([1.0] * 12, patience=1, cooldown=3)
notebook.check_answer(answer_3, cooling.reductions[1])

# %% [markdown]
# **4.** Start lr 0.1, `factor=0.5`, `min_lr=0`, default `eps=1e-8`, `patience=0`, a flat loss. How
# many reductions happen before `eps` stops them? (A whole number; work it out from
# lr · (1 − factor) ≤ eps, then check.)

# %%
answer_4 = None
halving = plateau_replay.replay_plateau([1.0] * 60, patience=0, factor=0.5)
notebook.check_answer(answer_4, len(halving.reductions))

# %% [markdown]
# **5.** In the same run, at which lr does it stop? (Give 3 significant digits, e.g. `1.23e-8`.)

# %%
answer_5 = None
notebook.check_answer(answer_5, halving[-1].lr_after, digits=3)

# %% [markdown]
# **6.** (Open.) Train the LeNet of section 9 with `ReduceLROnPlateau(optimizer, mode="max",
# patience=2)` stepped on the validation accuracy (`plateau_metric="val_acc"` in `training.fit`).
# Does it reduce at the same epochs as the run on the validation loss? Why might the two metrics
# disagree?
#
# ## References
#
# - PyTorch documentation, `torch.optim.lr_scheduler.ReduceLROnPlateau`:
#   https://docs.pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.ReduceLROnPlateau.html
#   (version 2.2 still has the "patience = 2" sentence), and its source in
#   `torch/optim/lr_scheduler.py` (methods `step` and `_reduce_lr`).
# - PyTorch pull request 147301, removing `verbose` from the schedulers (PyTorch 2.7):
#   https://github.com/pytorch/pytorch/pull/147301
# - D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015 (lr 0.001 is the
#   default suggested there).
# - H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine
#   Learning Algorithms", arXiv:1708.07747, 2017.
# - Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
#   recognition", Proceedings of the IEEE, 1998 (LeNet and MNIST).
