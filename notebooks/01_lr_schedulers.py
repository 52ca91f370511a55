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
# # 01 · Learning-rate schedulers, side by side
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lr-course/lr-schedulers-regularization/blob/main/notebooks/01_lr_schedulers.ipynb)
#
# **What you will learn**
#
# - why one constant learning rate is a compromise, seen on a real network;
# - that a scheduler wraps an optimizer and rewrites its learning rate, and why
#   `optimizer.step()` must come before `scheduler.step()`;
# - what seven PyTorch schedulers do, previewed *before* any training;
# - how they compare when each trains the same seeded LeNet on Fashion-MNIST.
#
# The whole notebook runs on a CPU; a GPU makes the last section much faster.

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
import math
import warnings

import matplotlib.pyplot as plt
import torch
from torch.optim import lr_scheduler

from course_utils import data, models, notebook, plotting, schedulers, training

device = notebook.report_device()   # a GPU when there is one

# %% tags=["parameters"]
FAST = notebook.fast_mode()                   # COURSE_FAST=1: small defaults for tests
EPOCHS = 3 if FAST else 8                     # epochs of every training run
TRAIN_SIZE = 2000 if FAST else None           # training images (None: all that remain)
VAL_SIZE = 1000 if FAST else 5000             # images held out for validation
BATCH_SIZE = 64
LR = 0.05                                     # the base lr of every run (OneCycleLR's peak)
SEED = 0

# %% [markdown]
# ## The data and the network
#
# Fashion-MNIST: 28×28 grey images of clothing in ten classes. We hold out a validation split:
# schedulers such as ReduceLROnPlateau watch the validation loss, and the test set stays unseen.
# `TensorLoader` keeps the images on the device and cuts normalized batches from them.

# %%
train_full, test = data.load_fashion_mnist()
train, val = data.lesson_split(train_full, val_size=VAL_SIZE, train_size=TRAIN_SIZE,
                               seed=SEED)
train_loader = data.TensorLoader(train, BATCH_SIZE, shuffle=True, device=device, seed=SEED)
val_loader = data.TensorLoader(val, 1000, device=device)
steps_per_epoch = len(train_loader)
print(f"{len(train):,} training images in {steps_per_epoch} batches of {BATCH_SIZE}, "
      f"{len(val):,} validation images")
plotting.show_images(train, 20, title="The first training images and their classes")
plt.show()


# %% [markdown]
# Every run below starts from the same seed, so all of them start from the same weights and see
# the batches in the same order: the schedule is the only difference. (On a GPU, cuDNN may add
# numbers up in a different order from run to run; `set_seed(..., deterministic=True)` forbids
# that, at some cost in speed.) The network is the LeNet of the regularization chapter this
# series follows (three convolutions, two max-pools, one linear layer), trained with SGD and
# momentum 0.9.

# %%
def train_with_schedule(scheduler_fn=None, step_per="epoch", lr=LR):
    """Train a fresh, seeded LeNet for EPOCHS epochs with the scheduler that
    `scheduler_fn(optimizer)` builds (None: a constant lr); return its History."""
    training.set_seed(SEED, deterministic=True)     # on a GPU too, only the schedule differs
    model = models.LeNet().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = scheduler_fn(optimizer) if scheduler_fn is not None else None
    return training.fit(model, train_loader, val_loader, optimizer, epochs=EPOCHS,
                        scheduler=scheduler, step_per=step_per)


# %% [markdown]
# ## 1. One constant learning rate is a compromise
#
# Three runs that differ only in their constant learning rate:

# %%
constant_lrs = {"too high (0.2)": 0.2, f"about right ({LR})": LR, "too low (0.002)": 0.002}
constant_runs = {name: train_with_schedule(lr=lr) for name, lr in constant_lrs.items()}
plotting.plot_histories(constant_runs, ("train_loss", "val_loss", "val_acc"),
                        title="The same network with three constant learning rates")
plt.show()

# %% [markdown]
# - **Too high** and the steps overshoot: the network ends worse than with the moderate lr. The
#   loss may jump about, stall near chance (ln 10 ≈ 2.30 for ten classes), or blow up to NaN,
#   in which case `fit` stops the run and says so.
# - **Too low** and every step is safe but tiny: the training loss falls every epoch, and it is
#   still behind the moderate lr's at the end.
#
# The cell below checks these statements on the runs above. A schedule tries to get the best of
# both: large steps early, while the weights are far from good ones, and small steps later,
# to settle into a minimum instead of bouncing around it.

# %%
high, right, low = constant_runs.values()
assert low.train_loss[-1] > right.train_loss[-1], "the small lr should still be behind"
assert all(later < earlier for earlier, later in zip(low.train_loss, low.train_loss[1:]))
assert high.stopped or high.val_loss[-1] > right.val_loss[-1], "the large lr should do worse"
print(f"final training loss: lr {LR}: {right.train_loss[-1]:.3f}, "
      f"lr 0.002: {low.train_loss[-1]:.3f}")
print("lr 0.2:", high.stopped or f"final validation loss {high.val_loss[-1]:.3f} "
      f"vs {right.val_loss[-1]:.3f}")

# %% [markdown]
# ## 2. A scheduler wraps an optimizer
#
# The optimizer keeps the learning rate in `optimizer.param_groups[i]["lr"]`. A scheduler holds a
# reference to the optimizer, and each `scheduler.step()` writes the next learning rate there.
# A one-parameter "model" is enough to watch it:

# %%
parameter = torch.nn.Parameter(torch.zeros(1))
optimizer = torch.optim.SGD([parameter], lr=0.1)
scheduler = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
assert scheduler.optimizer is optimizer

# %% tags=["nbval-check-output"]
lrs_by_hand = []
for epoch in range(1, 7):
    lr_used = optimizer.param_groups[0]["lr"]
    lrs_by_hand.append(lr_used)
    optimizer.step()        # a real epoch of training with lr_used would happen here
    scheduler.step()        # then the scheduler writes the next lr into the optimizer
    print(f"epoch {epoch}: trained with lr {lr_used:.4f}, "
          f"get_last_lr() now says {scheduler.get_last_lr()[0]:.4f}")


# %% [markdown]
# ### The order: `optimizer.step()`, then `scheduler.step()`
#
# Since PyTorch 1.1 the scheduler must step *after* the optimizer. Swap them and PyTorch warns,
# and the schedule loses its first value: the first epoch already trains with the second lr.
# To see it we use `ExponentialLR(optimizer, gamma=0.5)`, which halves the lr at every step
# (section 3 lists it with the other schedulers).

# %%
def lrs_used(scheduler_first: bool, epochs: int = 4):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    used = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(epochs):
            if scheduler_first:
                scheduler.step()
            used.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if not scheduler_first:
                scheduler.step()
    return used, [str(w.message) for w in caught]


right_order, right_warnings = lrs_used(scheduler_first=False)
wrong_order, wrong_warnings = lrs_used(scheduler_first=True)

# %% tags=["nbval-check-output"]
print("optimizer.step() first:", right_order)
print("scheduler.step() first:", wrong_order)
print("warning:", wrong_warnings[0].split(" In PyTorch")[0])

# %%
assert right_order == [0.1, 0.05, 0.025, 0.0125] and right_warnings == []
assert wrong_order == right_order[1:] + [0.00625]          # the first value, 0.1, is skipped
assert "before `optimizer.step()`" in wrong_warnings[0]

# %% [markdown]
# `course_utils.training.fit` steps in the right order. Its inner loop, in short:
#
# ```python
# for X, y in train_loader:
#     loss = loss_fn(model(X), y)
#     optimizer.zero_grad()
#     loss.backward()
#     optimizer.step()                 # uses the current lr
#     if step_per == "batch":
#         scheduler.step()             # e.g. OneCycleLR: a new lr for the next batch
# # after the epoch, for the schedulers stepped once per epoch:
# if step_per == "epoch":
#     scheduler.step()                 # or scheduler.step(val_loss) for ReduceLROnPlateau
# ```
#
# ### `verbose=True` is gone: ask `get_last_lr()`
#
# Older tutorials pass `verbose=True` to print each new learning rate. PyTorch 2.2 deprecated it
# and PyTorch 2.7 removed it: now it is a `TypeError`.

# %%
try:
    lr_scheduler.ExponentialLR(optimizer, gamma=0.9, verbose=True)
    verbose_accepted = True
except TypeError as error:
    verbose_accepted = False
    print("TypeError:", error)
torch_version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
assert verbose_accepted == (torch_version < (2, 7))
print("Instead: scheduler.get_last_lr() ->", scheduler.get_last_lr(), "(the StepLR above)")

# %% [markdown]
# ## 3. Seven schedules, previewed before training
#
# `schedulers.lr_trace` runs the loop of section 2 for you: it builds a scheduler on a throwaway
# optimizer and returns the learning rate each epoch (or batch) would use. Here is every schedule
# we are about to train with, at this notebook's budget of `EPOCHS` epochs and `steps_per_epoch`
# batches per epoch:
#
# | scheduler | rule |
# | --- | --- |
# | `LambdaLR` | lr = lr₀ · λ(epoch), for any function λ you write |
# | `StepLR` | multiply by γ every `step_size` epochs |
# | `MultiStepLR` | multiply by γ at each of the `milestones` |
# | `ExponentialLR` | multiply by γ every epoch: lr = lr₀ · γⁿ |
# | `CosineAnnealingLR` | half a cosine from lr₀ down to `eta_min` over `T_max` steps |
# | `OneCycleLR` | up to `max_lr`, then far down, stepped after every **batch** |
# | `ReduceLROnPlateau` | multiply by `factor` once more than `patience` epochs *in a row* brought no improvement (a better epoch resets the count; notebook 03 shows every parameter) |

# %%
SCHEDULES = {   # name: (optimizer -> scheduler, how often it steps)
    "LambdaLR": (lambda opt: lr_scheduler.LambdaLR(opt, lambda epoch: 1 / (1 + epoch)), "epoch"),
    "StepLR": (lambda opt: lr_scheduler.StepLR(opt, step_size=max(1, EPOCHS // 3), gamma=0.3),
               "epoch"),
    "MultiStepLR": (lambda opt: lr_scheduler.MultiStepLR(
        opt, milestones=[EPOCHS // 2, 3 * EPOCHS // 4], gamma=0.2), "epoch"),
    "ExponentialLR": (lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.7), "epoch"),
    "CosineAnnealingLR": (lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS),
                          "epoch"),
    # OneCycleLR starts at max_lr / 25 and climbs to max_lr: the peak is the lr that works
    # as a constant (section 1), not above it, where short runs can blow up. By default it
    # also cycles SGD's momentum between 0.85 and 0.95; cycle_momentum=False keeps 0.9, so
    # that the lr is the only difference from the other runs.
    "OneCycleLR": (lambda opt: lr_scheduler.OneCycleLR(
        opt, max_lr=LR, epochs=EPOCHS, steps_per_epoch=steps_per_epoch,
        cycle_momentum=False), "batch"),
    "ReduceLROnPlateau": (lambda opt: lr_scheduler.ReduceLROnPlateau(opt, factor=0.3,
                                                                     patience=1), "epoch"),
}
# ReduceLROnPlateau reacts to a metric, so its preview needs one: an invented validation loss
# that improves for half the epochs, then stays flat.
example_losses = [1.0 / (1 + min(epoch, EPOCHS // 2)) for epoch in range(EPOCHS)]

previews = {}
for name, (scheduler_fn, step_per) in SCHEDULES.items():
    previews[name] = schedulers.lr_trace(scheduler_fn, epochs=EPOCHS, lr=LR, step_per=step_per,
                                         steps_per_epoch=steps_per_epoch, metrics=example_losses)
gallery = {name: (torch.arange(len(lrs)) / (len(lrs) / EPOCHS) + 1, lrs)
           for name, lrs in previews.items()}
plotting.plot_schedules(gallery, title=f"The lr each schedule would use over {EPOCHS} epochs "
                        f"(start lr {LR})")
plt.show()

# %% [markdown]
# A preview is exact, not a sketch: it is the same arithmetic as stepping the scheduler by hand.
# The StepLR of section 2, previewed, gives the lrs that loop printed:

# %%
preview = schedulers.lr_trace(lambda opt: lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
                              epochs=6, lr=0.1)
assert preview == lrs_by_hand
print("StepLR previewed:", [f"{lr:.6g}" for lr in preview])
# ReduceLROnPlateau counts bad epochs in a row: with patience=1, the better epoch 3 resets the
# count, so the cut comes only after the bad epochs 4 and 5, and epoch 6 trains with half the lr.
plateau = schedulers.lr_trace(
    lambda opt: lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1), epochs=6, lr=0.1,
    metrics=[1.0, 2.0, 0.5, 2.0, 2.0, 2.0])
assert plateau == [0.1] * 5 + [0.05]
print("ReduceLROnPlateau, losses 1, 2, 0.5, 2, 2, 2:", plateau)
one_cycle = previews["OneCycleLR"]      # one lr per batch
assert math.isclose(one_cycle[0], LR / 25)
assert max(one_cycle) <= LR and math.isclose(max(one_cycle), LR, rel_tol=1e-3)  # between batches
# OneCycleLR's default cycle_momentum=True replaces SGD's momentum 0.9: it moves between 0.95
# and 0.85, opposite to the lr. With cycle_momentum=False the momentum stays 0.9.
for cycle_momentum, expected in ((True, {0.85, 0.95}), (False, {0.9})):
    sgd = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR, momentum=0.9)
    cycle = lr_scheduler.OneCycleLR(sgd, max_lr=LR, total_steps=10, cycle_momentum=cycle_momentum)
    momentums = []
    for _ in range(10):
        momentums.append(sgd.param_groups[0]["momentum"])
        sgd.step()
        cycle.step()
    assert {min(momentums), max(momentums)} == expected, momentums

# %% [markdown]
# ### CosineAnnealingLR goes back up after `T_max`
#
# The cosine does not stop at its minimum: stepped past `T_max` it climbs again, back to the
# starting lr after `2 · T_max` steps. Set `T_max` to the number of epochs you will train (as
# above), or the lr rises again at the end of training.

# %% tags=["nbval-check-output"]
cosine = schedulers.lr_trace(lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=10),
                             epochs=21, lr=0.1)
for epoch in (1, 6, 11, 16, 21):
    print(f"epoch {epoch:2d}: lr {cosine[epoch - 1]:.4f}")

# %%
assert cosine[10] == min(cosine) == 0.0                 # epoch 11, after T_max = 10 steps
assert cosine[20] == max(cosine[10:]) and math.isclose(cosine[20], 0.1, rel_tol=1e-9)

# %% [markdown]
# ## 4. All of them, trained side by side
#
# The same seeded LeNet, the same batches, the same base lr and momentum; only the schedule
# differs (OneCycleLR climbs from LR / 25 to its peak LR and ends far below it). The constant-lr
# run from section 1 is the reference. (`fit` records the lr each epoch started with;
# for OneCycleLR it also records the lr of every batch.)

# %%
histories = {"constant": constant_runs[f"about right ({LR})"]}
for name, (scheduler_fn, step_per) in SCHEDULES.items():
    histories[name] = train_with_schedule(scheduler_fn, step_per)

# %%
plotting.plot_histories(histories, ("val_loss", "val_acc", "lr"),
                        title="Seven schedules and a constant lr: validation loss, accuracy, lr")
plt.show()

# %% [markdown]
# Training followed the previews exactly: the learning rates `fit` recorded are the ones
# `lr_trace` predicted. For ReduceLROnPlateau the prediction needs the real validation losses,
# so we replay them.

# %%
for name, (scheduler_fn, step_per) in SCHEDULES.items():
    history = histories[name]
    if name == "ReduceLROnPlateau":
        expected = schedulers.lr_trace(scheduler_fn, epochs=EPOCHS, lr=LR, metrics=history.val_loss)
        assert history.lr == expected, name
    elif step_per == "batch":
        assert history.batch_lrs == previews[name], name
        assert history.lr == previews[name][::steps_per_epoch], name
    else:
        assert history.lr == previews[name], name
print("Every recorded lr equals its preview.")

# %%
TARGET = 0.75 if FAST else 0.89
print(f"{'schedule':<18} {'best acc':>9} {'final acc':>9} {f'epochs to {TARGET:.0%}':>15} "
      f"{'seconds':>8}")
for name, history in histories.items():
    reached = [r["epoch"] for r in history.records if r["val_acc"] >= TARGET]
    print(f"{name:<18} {max(history.val_acc):>9.2%} {history.val_acc[-1]:>9.2%} "
          f"{reached[0] if reached else '-':>15} {sum(history.column('seconds')):>8.1f}")
best_name = max(histories, key=lambda name: max(histories[name].val_acc))
print(f"\nBest validation accuracy in this run: {best_name}.")
notebook.record("best_val_acc", {name: round(max(h.val_acc), 4) for name, h in histories.items()})
notebook.record("final_val_acc", {name: round(h.val_acc[-1], 4) for name, h in histories.items()})

# %% [markdown]
# How to read the table honestly: this is one seed on one budget. A small difference between
# two rows can come from the seed alone; before you believe it, change `SEED` in the parameters
# cell, run the notebook again and see whether the order of the rows holds. What the previews
# predict exactly is the lr of every epoch, and that, the cell above showed, is what each run
# used.

# %% [markdown]
# ## Summary
#
# - A constant lr trades speed against stability; a schedule starts large and ends small.
# - A scheduler changes `optimizer.param_groups[i]["lr"]`. Call `optimizer.step()` first, then
#   `scheduler.step()`: the other order skips the first lr, and PyTorch warns.
# - `verbose=True` is a `TypeError` since PyTorch 2.7; print `scheduler.get_last_lr()`.
# - Preview a schedule with `lr_trace` before you train with it. CosineAnnealingLR climbs again
#   after `T_max`; OneCycleLR is stepped after every batch; ReduceLROnPlateau needs a metric.
#
# ## Exercises
#
# Each exercise has a check cell: replace `None` with your answer and run the cell.
#
# **1.** `StepLR(optimizer, step_size=3, gamma=0.5)` on an optimizer with lr 0.1: which lr does
# epoch 7 train with? Work it out by hand first.

# %%
answer_1 = None
notebook.check_answer(answer_1, schedulers.lr_trace(
    lambda opt: lr_scheduler.StepLR(opt, step_size=3, gamma=0.5), epochs=7, lr=0.1)[6])

# %% [markdown]
# **2.** With the wrong order (scheduler first), `ExponentialLR(gamma=0.5)` from lr 0.1: which
# lr does the *first* epoch train with? (Check with `lrs_used(scheduler_first=True)`.)

# %%
answer_2 = None
notebook.check_answer(answer_2, lrs_used(scheduler_first=True)[0][0])

# %% [markdown]
# **3.** `CosineAnnealingLR(optimizer, T_max=5)` from lr 0.1, stepped once per epoch: in which
# epoch does the lr come back to 0.1 for the first time? (An epoch number.)

# %%
answer_3 = None
trace = schedulers.lr_trace(lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=5),
                            epochs=20, lr=0.1)
notebook.check_answer(answer_3, next(epoch for epoch, lr in enumerate(trace, start=1)
                                     if epoch > 1 and math.isclose(lr, 0.1, rel_tol=1e-9)))

# %% [markdown]
# **4.** (Open.) Train with `ExponentialLR(gamma=0.95)` and `gamma=0.5` using
# `train_with_schedule`. Which one stops learning early, and why? Notebook 02 takes this apart.
#
# ## References
#
# - PyTorch documentation, "How to adjust learning rate":
#   https://docs.pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate
# - I. Loshchilov, F. Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017
#   (the cosine schedule).
# - L. N. Smith, N. Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large
#   Learning Rates", 2019 (the one-cycle policy).
# - H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
#   Machine Learning Algorithms", arXiv:1708.07747, 2017.
