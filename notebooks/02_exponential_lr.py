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
# # 02 · Exponential decay: ExponentialLR, exactly
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lr-course/lr-schedulers-regularization/blob/main/notebooks/02_exponential_lr.ipynb)
#
# **What you will learn**
#
# - the rule lr = lr₀ · γⁿ of `ExponentialLR`, what n counts, and how it compares with PyTorch;
# - what the rule predicts without training: the half-life, the γ that reaches a target lr, and
#   the γ for stepping after every batch;
# - PyTorch's *chainable* update and the *closed form*, and when they part ways;
# - what the `last_epoch` argument is for (resuming a run), and the `initial_lr` it needs;
# - how γ and lr₀ shape the schedule, with sliders;
# - what decay that is too fast or too slow does to a LeNet on Fashion-MNIST;
# - how to choose lr₀ with an LR range test: an ExponentialLR with γ > 1.
#
# The whole notebook runs on a CPU; a GPU makes sections 6 and 7 faster.

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
from course_utils.widgets import exponential

device = notebook.report_device()   # a GPU when there is one

# %% tags=["parameters"]
FAST = notebook.fast_mode()                   # COURSE_FAST=1: small defaults for tests
EPOCHS = 3 if FAST else 10                    # epochs of every training run (at least 2)
TRAIN_SIZE = 2000 if FAST else None           # training images (None: all that remain)
VAL_SIZE = 1000 if FAST else 5000             # images held out for validation, at most
BATCH_SIZE = 64
LR = 0.05                                     # lr0, the starting learning rate of every run
RANGE_TEST_STEPS = 100 if FAST else 300       # batches of the LR range test, at most
SEED = 0

# %% [markdown]
# ## 1. The rule: lr = lr₀ · γⁿ
#
# Section 11.3 of the LR Scheduler chapter this series follows gives, for
# `ExponentialLR(optimizer, gamma, last_epoch=-1)`, the rule
#
# $$\alpha = \alpha_0 \cdot \gamma^{\,n}$$
#
# with α the learning rate (we write lr) and α₀ the one you start with. **n is the number of
# `scheduler.step()` calls you have made**; PyTorch keeps it in `scheduler.last_epoch`. Building the
# scheduler does not change the lr: right after construction n = 0 and the lr is lr₀. Each
# `step()` then multiplies it by γ. Here are the first steps, next to the formula:

# %% tags=["nbval-check-output"]
optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)   # a one-number model
scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
print("calls n   last_epoch   get_last_lr()   0.1 * 0.5**n")
for n in range(6):
    if n > 0:
        optimizer.step()         # training with the current lr would happen here
        scheduler.step()         # call number n
    print(f"{n:7d}   {scheduler.last_epoch:10d}   {scheduler.get_last_lr()[0]:13.6f}   "
          f"{schedulers.exponential_lr(0.1, 0.5, n):12.6f}")

# %% [markdown]
# With one `scheduler.step()` at the end of every epoch, n counts the epochs *completed*: epoch 1
# trains with lr₀, epoch 2 with lr₀ · γ, and epoch k with lr₀ · γ^(k−1).
#
# The same comparison over 40 epochs, on a log axis where exponential decay is a straight line.
# `schedulers.lr_trace` steps a real ExponentialLR on a throwaway optimizer and returns the lr of
# each epoch; `schedulers.exponential_lr` is the formula.

# %%
EPS = sys.float_info.epsilon     # 2**-52, the relative spacing of floats near 1


def exponential_fn(gamma):
    """A scheduler_fn for lr_trace: builds ExponentialLR(gamma) on the optimizer it is given."""
    return lambda optimizer: lr_scheduler.ExponentialLR(optimizer, gamma=gamma)


measured = schedulers.lr_trace(exponential_fn(0.9), epochs=40, lr=LR)    # lr of epoch 1..40
formula = [schedulers.exponential_lr(LR, 0.9, n) for n in range(40)]     # n = epoch - 1
for n, (lr, expected) in enumerate(zip(measured, formula)):
    assert math.isclose(lr, expected, rel_tol=(n + 2) * EPS), n          # see below: not ==
fig, ax = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
ax.plot(range(1, 41), formula, label="lr0 · 0.9^(k−1)", **plotting.style(0))
ax.plot(range(1, 41), measured, "o", markersize=4, label="ExponentialLR, as torch sets it",
        color=plotting.PALETTE[1])
ax.set(yscale="log", xlabel="epoch k", ylabel="learning rate (log scale)",
       title=f"ExponentialLR(gamma=0.9) from lr0 = {LR}: torch lands on the formula")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The check above uses `math.isclose`, not `==`. PyTorch does not compute a power: each `step()`
# multiplies the lr the optimizer holds by γ. In real numbers that is the same; in floating point
# each multiplication rounds, so the two agree to a few units in the last place, not always bit
# for bit (*Going deeper* shows a case and the bound). `tests/test_lesson02.py` checks the rule
# this way on a grid of starting lrs, γs and step counts on every commit.
#
# ## 2. What the rule predicts, without training
#
# ### Half-life and budget
#
# The lr halves when γʰ = ½, that is after h = ln 0.5 / ln γ steps. For γ close to 1,
# ln γ ≈ −(1 − γ) gives the rule of thumb **h ≈ 0.69 / (1 − γ)**, a little too long. And
# however long you train, the lrs of all epochs add up to at most lr₀ / (1 − γ) (a geometric
# series): the total "lr budget" of the schedule.

# %% tags=["nbval-check-output"]
print(" gamma   half-life h   0.69/(1-gamma)   lr after 10 epochs   sum of all lrs")
for gamma in (0.99, 0.95, 0.9, 0.8, 0.5):
    h = schedulers.half_life(gamma)
    print(f"{gamma:6.2f}   {h:11.2f}   {math.log(2) / (1 - gamma):14.2f}   "
          f"{gamma**10:12.4f} x lr0   {1 / (1 - gamma):8.1f} x lr0")
    # The check, in torch: the lr falls through lr0 / 2 between steps floor(h) and ceil(h).
    lrs = schedulers.lr_trace(exponential_fn(gamma), epochs=math.ceil(h) + 2, lr=1.0)
    assert lrs[math.floor(h)] >= 0.5 >= lrs[math.ceil(h)], gamma

# %% [markdown]
# γ = 0.99 halves the lr about every 69 epochs, γ = 0.9 about every 7; and γ = 0.9 can never give
# the model more than 10 epochs' worth of lr₀, however many epochs it trains.
#
# ### The γ that reaches a target lr
#
# To go from lr₀ to a target in N steps, solve lr₀ · γᴺ = target: γ = (target / lr₀)^(1/N), which
# is `schedulers.gamma_for_target`. Mind the count: epoch k trains with lr₀ · γ^(k−1), so for the
# **last of E epochs** to train with the target, N = E − 1. With N = E the target arrives after
# the last epoch, and nothing trains with it.

# %% tags=["nbval-check-output"]
E, start, target = 20, 0.05, 0.0005
gamma_right = schedulers.gamma_for_target(start, target, E - 1)
gamma_late = schedulers.gamma_for_target(start, target, E)
lrs_right = schedulers.lr_trace(exponential_fn(gamma_right), epochs=E, lr=start)
lrs_late = schedulers.lr_trace(exponential_fn(gamma_late), epochs=E, lr=start)
assert math.isclose(lrs_right[-1], target, rel_tol=(E + 2) * EPS)
print(f"from {start} to {target} for the last of {E} epochs: gamma = {gamma_right:.6f}, "
      f"lr of epoch {E}: {lrs_right[-1]:.6f}")
print(f"with N = {E} instead:                  gamma = {gamma_late:.6f}, "
      f"lr of epoch {E}: {lrs_late[-1]:.6f}")

# %% [markdown]
# ### Stepping after every batch
#
# A scheduler knows nothing about epochs: it multiplies by γ at each `step()`. Stepped after each
# of S batches with γ_batch = γ^(1/S) (`schedulers.per_batch_gamma`), it multiplies the lr by
# γ over an epoch, so the per-batch and per-epoch schedules meet at every epoch boundary. That is
# exact in real arithmetic; in floats γ^(1/S) is rounded and each of the k · S steps rounds, so
# the cell asserts agreement within a relative (k · S + 2) · ε at the start of epoch k + 1.
# Between boundaries the per-batch lr keeps sliding down, so over an epoch it trains with a little
# less lr: on average a factor (1 − γ) / (S · (1 − γ^(1/S))) of the per-epoch lr, printed below.
#
# The plot is drawn by the same function as the explorer in section 5.

# %%
S, gamma = 100, 0.9
per_batch = schedulers.lr_trace(exponential_fn(schedulers.per_batch_gamma(gamma, S)), epochs=10,
                                lr=LR, steps_per_epoch=S, step_per="batch")
per_epoch = schedulers.lr_trace(exponential_fn(gamma), epochs=10, lr=LR)
for k in range(10):      # epoch k + 1 starts after k * S batch steps and k epoch steps
    assert math.isclose(per_batch[k * S], per_epoch[k], rel_tol=(k * S + 2) * EPS)
fig, ax = plt.subplots(figsize=(7.5, 3.8), constrained_layout=True)
exponential.draw_exponential(
    exponential.exponential_view(LR, gamma, 10, per_batch=True, steps_per_epoch=S), ax)
plt.show()

# %% tags=["nbval-check-output"]
factor = (1 - gamma) / (S * (1 - gamma ** (1 / S)))
epoch_means = [sum(per_batch[k * S:(k + 1) * S]) / S for k in range(10)]
assert all(math.isclose(mean, lr * factor, rel_tol=1e-11)
           for mean, lr in zip(epoch_means, per_epoch))
print(f"gamma = {gamma}, S = {S}: per-batch gamma = {schedulers.per_batch_gamma(gamma, S):.6f}; "
      f"each epoch's mean lr = {factor:.4f} x the per-epoch lr")

# %% [markdown]
# ## 3. Chainable update and closed form
#
# PyTorch's `step()` does `lr ← lr · γ` on the lr the optimizer holds **now** (the *chainable*
# form). lr₀ · γⁿ (the *closed form*) gives the same numbers only as long as nothing else changes
# the lr. Two common cases where something does.
#
# ### A manual change
#
# After two epochs we set the lr by hand to 0.2. The chainable update carries on from 0.2; the
# closed form knows nothing about it.

# %% tags=["nbval-check-output"]
optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
manual = []
for n in range(1, 6):
    optimizer.step()
    scheduler.step()
    if n == 2:
        optimizer.param_groups[0]["lr"] = 0.2       # a change by hand
    manual.append(optimizer.param_groups[0]["lr"])
assert manual[2:] == [0.2 * 0.5, 0.2 * 0.5**2, 0.2 * 0.5**3]   # builds on the manual value
print("after step n   torch lr   closed form 0.1 * 0.5**n")
for n, lr in enumerate(manual, start=1):
    print(f"{n:12d}   {lr:8.4f}   {schedulers.exponential_lr(0.1, 0.5, n):24.4f}"
          + ("   <- set to 0.2 by hand" if n == 2 else ""))

# %% [markdown]
# ### A second scheduler on the same optimizer
#
# ExponentialLR(γ = 0.9) and StepLR(step_size=3, γ = 0.1), both stepped once per epoch. Each
# multiplies the lr it finds, so their effects **multiply**: lr = lr₀ · 0.9ⁿ · 0.1^⌊n/3⌋.
# (`lr_scheduler.ChainedScheduler` packages the same thing; the tests check that it agrees.)

# %% tags=["nbval-check-output"]
optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
decay = lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
cuts = lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.1)
print("after step n   torch lr   0.1 * 0.9**n * 0.1**(n // 3)   ExponentialLR alone")
for n in range(1, 8):
    optimizer.step()
    decay.step()
    cuts.step()
    lr = optimizer.param_groups[0]["lr"]
    assert math.isclose(lr, 0.1 * 0.9**n * 0.1 ** (n // 3), rel_tol=4 * n * EPS)
    print(f"{n:12d}   {lr:8.6f}   {0.1 * 0.9**n * 0.1 ** (n // 3):28.6f}   "
          f"{schedulers.exponential_lr(0.1, 0.9, n):19.6f}")

# %% [markdown]
# Both are features: the chainable form is what lets schedulers be combined, and lets you lower
# the lr by hand mid-run. The old way of calling `step(epoch)` throws them away (*Going deeper*).
#
# ## 4. `last_epoch` and resuming a run
#
# The chapter's signature has a third argument, `last_epoch=-1`. The default −1 means **a fresh
# start**: the constructor stores the optimizer's lr as `initial_lr` (lr₀) in each param group,
# then takes its first step to n = 0. A number k ≥ 0 means **resuming**: a run stopped after some
# epochs and goes on, for example in a new process after a crash. Then the constructor stores
# nothing: it expects `initial_lr` to be in the param groups already, as it is once you load the
# optimizer's saved `state_dict()`, and without it raises a `KeyError`. The constructor's own step
# still adds one, so to resume after k steps pass `last_epoch=k - 1`; then the counter reads k,
# like the uninterrupted scheduler's. What that step does to the lr depends on your torch: since
# torch 2.8 it keeps the loaded lr; before 2.8, ExponentialLR's constructor multiplied it by γ once
# more, and the resumed run trained one factor of γ below the uninterrupted one (PyTorch issue
# #102261). This course runs on torch 2.3 and later, so a cell below shows which yours does.
#
# First the mistake, a fresh optimizer with `last_epoch` set:

# %%
optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
try:
    lr_scheduler.ExponentialLR(optimizer, gamma=0.5, last_epoch=2)
    raise AssertionError("expected a KeyError: there is no initial_lr to resume from")
except KeyError as error:
    print("KeyError:", error.args[0].splitlines()[0])

# %% [markdown]
# Now with the optimizer's state: an uninterrupted run of 3 steps whose optimizer state we save, as
# a checkpoint would; a resumed run that loads it and builds its scheduler with `last_epoch=2`;
# both then go on.

# %%
def sgd(lr):
    """A throwaway optimizer: one parameter, no gradients needed to watch the lr."""
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


k = 3
optimizer = sgd(0.1)
scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
for _ in range(k):
    optimizer.step()
    scheduler.step()
saved = optimizer.state_dict()                     # holds each group's lr and initial_lr

resumed_optimizer = sgd(0.1)
resumed_optimizer.load_state_dict(saved)           # lr 0.0125 and initial_lr 0.1 come back
resumed = lr_scheduler.ExponentialLR(resumed_optimizer, gamma=0.5, last_epoch=k - 1)
print("saved initial_lr:", saved["param_groups"][0]["initial_lr"])
print("   uninterrupted: last_epoch  lr      resumed: last_epoch  lr")
for step in range(4):
    if step > 0:
        for opt, sched in ((optimizer, scheduler), (resumed_optimizer, resumed)):
            opt.step()
            sched.step()
    assert resumed.last_epoch == scheduler.last_epoch
    print(f"{scheduler.last_epoch:27d}  {scheduler.get_last_lr()[0]:.6f}"
          f"{resumed.last_epoch:20d}  {resumed.get_last_lr()[0]:.6f}")

continues = resumed.get_last_lr() == scheduler.get_last_lr()
torch_version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
assert continues == (torch_version >= (2, 8))
print(f"torch {torch.__version__}: the resumed run",
      "continues the uninterrupted one" if continues else "is one factor of γ below it")

# %% [markdown]
# The way that works on every torch version, and for every scheduler: save
# `scheduler.state_dict()` with the checkpoint; on resuming, load the optimizer's state, build the
# scheduler as for a fresh start, then load its state. It brings the counter back, and the lr is
# the one the optimizer saved.

# %%
checkpoint = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
restored_optimizer = sgd(0.1)
restored_optimizer.load_state_dict(checkpoint["optimizer"])
restored = lr_scheduler.ExponentialLR(restored_optimizer, gamma=0.5)
restored.load_state_dict(checkpoint["scheduler"])
for opt, sched in ((optimizer, scheduler), (restored_optimizer, restored)):
    opt.step()
    sched.step()
assert (restored.last_epoch, restored.get_last_lr()) == (scheduler.last_epoch,
                                                         scheduler.get_last_lr())
print(f"one step after restoring: last_epoch {restored.last_epoch}, "
      f"lr {restored.get_last_lr()[0]:.6f} (uninterrupted: {scheduler.get_last_lr()[0]:.6f})")

# %% [markdown]
# That is what notebook 03 and `course_utils.checkpoint` do; notebook 06 resumes every kind of
# scheduler.
#
# ## 5. Explore it yourself
#
# Move the sliders: lr₀ (1, 2, 5 per decade), γ, the number of epochs, and per-batch stepping. The
# plot marks the half-life when it falls inside the plotted epochs; the table lists the lr at a few
# epochs. Predict each change before you make it: with γ = 0.9 the lr halves about every 7 epochs
# (section 2); what does γ = 0.95 do? (In a static copy of this notebook the sliders do not react:
# run it in Jupyter or Colab.)

# %% tags=["nbval-ignore-output"]
exponential.exponential_explorer(lr=LR, gamma=0.9, epochs=30)

# %% [markdown]
# The explorer draws `exponential.exponential_view(...)`, a plain function that computes
# everything on display (the curve, the half-life, the table) and can be called directly:

# %% tags=["nbval-check-output"]
print(exponential.format_table(exponential.exponential_view(LR, 0.9, 30)))

# %% [markdown]
# ## 6. Training with several γ
#
# ### The data and the network
#
# Fashion-MNIST, as in notebook 01: a validation split held out of the training images (sized to
# the data found: the cell says so when only the bundled subset is there), and `TensorLoader` to
# keep the images on the device. The network is the chapter's LeNet, trained with SGD and
# momentum 0.9.

# %%
train_full, test = data.load_fashion_mnist()
train, val = data.lesson_split(train_full, val_size=VAL_SIZE, train_size=TRAIN_SIZE,
                               seed=SEED)
train_loader = data.TensorLoader(train, BATCH_SIZE, shuffle=True, device=device, seed=SEED)
val_loader = data.TensorLoader(val, 1000, device=device)
steps_per_epoch = len(train_loader)
print(f"{len(train):,} training images in {steps_per_epoch} batches of {BATCH_SIZE}, "
      f"{len(val):,} validation images")

# %% [markdown]
# ### Choosing the γs from the budget
#
# What matters for a run is not γ alone but γ^(EPOCHS−1), the fraction of lr₀ left for the last
# epoch. So we pick the γs with `gamma_for_target`, one per ending: no decay; a slow decay that
# ends at half of lr₀; a moderate one that ends at 1/20 of lr₀; and one that is too fast, ending
# at 1/10,000 of lr₀. The schedule of each, before any training:

# %%
assert EPOCHS >= 2, "the gamma that reaches a target needs at least one scheduler step"
ENDINGS = {"no decay": 1.0, "slow": 0.5, "moderate": 0.05, "too fast": 1e-4}
gammas = {name: schedulers.gamma_for_target(LR, LR * fraction, EPOCHS - 1)
          for name, fraction in ENDINGS.items()}
previews = {f"{name}: gamma = {gamma:.3f}": schedulers.lr_trace(exponential_fn(gamma),
                                                                epochs=EPOCHS, lr=LR)
            for name, gamma in gammas.items()}
plotting.plot_schedules(previews, title=f"The lr of each epoch, {EPOCHS} epochs from lr0 = {LR}")
plt.show()


# %% [markdown]
# Each run starts from the same seed: the same initial weights, the same batches in the same
# order, so γ is the only difference. On a CPU the seed is enough for that. On a GPU it is not:
# by default cuDNN may pick convolution algorithms that add up in a varying order, so two seeded
# runs can drift apart; `training.set_seed(SEED, deterministic=True)`, which `train_with_gamma`
# below uses, restricts it to deterministic ones. Besides the usual history, we measure how far
# the weights move in each epoch (the length of the change of the whole parameter vector).

# %%
def train_with_gamma(gamma, lr=LR):
    """Train a fresh, seeded LeNet with ExponentialLR(gamma) from `lr` for EPOCHS epochs.
    Returns the History and the distance the weights moved in each epoch."""
    training.set_seed(SEED, deterministic=True)     # on a GPU too, only gamma differs
    model = models.LeNet().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
    history, travel = training.History(), []
    for epoch in range(EPOCHS):
        before = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
        # One epoch at a time, continuing the same history: fit steps the scheduler at its end.
        training.fit(model, train_loader, val_loader, optimizer, epochs=1, scheduler=scheduler,
                     history=history, progress=False)
        after = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
        travel.append((after - before).norm().item())
    return history, travel


histories, travels = {}, {}
for name, gamma in gammas.items():
    histories[name], travels[name] = train_with_gamma(gamma)
    print(f"{name:>9} (gamma = {gamma:.4f}): final validation accuracy "
          f"{histories[name].val_acc[-1]:.2%}")
# Training followed the rule: the lr fit recorded for epoch k is lr0 * gamma**(k - 1).
for name, gamma in gammas.items():
    for epoch, lr in zip(histories[name].epochs, histories[name].lr):
        expected = schedulers.exponential_lr(LR, gamma, epoch - 1)
        assert math.isclose(lr, expected, rel_tol=(epoch + 1) * EPS), (name, epoch)

# %%
plotting.plot_histories(histories, ("train_loss", "val_loss", "lr"),
                        title="Four decays from the same start: the too-fast one stalls early")
plt.show()

fig, ax = plt.subplots(figsize=(6, 3.6), constrained_layout=True)
for index, (name, travel) in enumerate(travels.items()):
    ax.plot(range(1, EPOCHS + 1), travel, marker="o", label=f"{name} ({gammas[name]:.3f})",
            **plotting.style(index))
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("length of the weight change (L2, log scale)")
ax.set_title("With the lr, the steps die: how far the weights move per epoch")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %%
print(f"{'decay':>9} {'gamma':>7} {'half-life':>9} {'last lr':>9} {'epochs of lr0':>13} "
      f"{'train loss':>10} {'val loss':>8} {'val acc':>8} {'moved last/first':>16}")
for name, history in histories.items():
    gamma, travel = gammas[name], travels[name]
    half = schedulers.half_life(gamma)
    print(f"{name:>9} {gamma:>7.4f} {half:>9.2f} {history.lr[-1]:>9.2e} "
          f"{sum(history.lr) / LR:>13.2f} {history.train_loss[-1]:>10.4f} "
          f"{history.val_loss[-1]:>8.4f} {history.val_acc[-1]:>8.2%} "
          f"{travel[-1] / travel[0]:>16.5f}")
notebook.record("gammas", {name: round(gamma, 6) for name, gamma in gammas.items()})
notebook.record("final_val_loss", {name: round(h.val_loss[-1], 4) for name, h in histories.items()})
notebook.record("final_val_acc", {name: round(h.val_acc[-1], 4) for name, h in histories.items()})

# %% [markdown]
# How to read this, and what holds beyond this one run:
#
# - **Too fast.** Its half-life is a fraction of an epoch, so the lr more than halves every
#   epoch, and with it the weights stop moving: in the last epoch they move less than 1 % of the
#   distance of the first. It ends with a higher training loss than the moderate decay, which kept
#   learning for longer. All its epochs together got less than 1.6 epochs' worth of lr₀ (the
#   column "epochs of lr0"), and more epochs would hardly add to that. Its *validation* loss need
#   not be the worst: the small lr that freezes it also settles the weights, which is what decay
#   is for. What it cannot do is keep improving.
# - **Too slow.** The last epoch still trains with at least half of lr₀, so the run never gets
#   the small steps of a low lr. Whether slow or moderate decay beats no decay by more than the
#   seed alone would change cannot be read from one run: rerun with `SEED = 1` and see whether the
#   order holds. The table gives this run's numbers, not a ranking.
# - γ only means something together with the number of epochs: the cell below prints what
#   γ = 0.9 leaves for the last of 3 epochs and for the last of 30.

# %%
fastest = histories["too fast"]
assert schedulers.half_life(gammas["too fast"]) < 1                # more than halved per epoch
assert travels["too fast"][-1] < 0.01 * travels["too fast"][0]      # the weights stop
assert fastest.train_loss[-1] > histories["moderate"].train_loss[-1]   # it stopped fitting
assert sum(fastest.lr) < 1.6 * LR                                   # < 1.6 epochs of lr0
assert histories["slow"].lr[-1] >= LR / 2 * (1 - 1e-9)              # slow: still >= lr0 / 2
print(f"too fast: last-epoch move {travels['too fast'][-1] / travels['too fast'][0]:.1e} of "
      f"the first; final training loss {fastest.train_loss[-1]:.3f} vs "
      f"{histories['moderate'].train_loss[-1]:.3f} with moderate decay")
print(f"gamma = 0.9 leaves {0.9**2:.0%} of lr0 for the last of 3 epochs, "
      f"{0.9**29:.1%} for the last of 30")

# %% [markdown]
# ## 7. Beyond the chapter: an LR range test to choose lr₀
#
# Everything above started from lr₀ = 0.05. Where does such a number come from? An **LR range
# test** (L. N. Smith, 2017) trains a fresh model for a few hundred batches while the lr grows,
# and watches the loss: low lrs barely move it, good lrs bring it down fast, and too-high lrs
# make it explode. The growing lr is just an ExponentialLR with **γ > 1**, stepped after every
# batch (Smith grew the lr linearly; the exponential sweep, which gives every decade of lr the
# same number of batches, is the common variant); `gamma_for_target` finds the γ that sweeps from
# `lr_start` to `lr_end` in `RANGE_TEST_STEPS` steps.
#
# The loss of one batch is noisy, so we follow an exponential moving average of it (with the usual
# correction for its start at zero), and stop as soon as that smoothed loss is more than
# `BLOW_UP` times the best seen so far.

# %%
def endless(loader):
    """Batches from `loader`, epoch after epoch (a new shuffle each time)."""
    while True:
        yield from loader


training.set_seed(SEED)
model = models.LeNet().to(device)
lr_start, lr_end = 1e-4, 10.0
optimizer = torch.optim.SGD(model.parameters(), lr=lr_start, momentum=0.9)
range_gamma = schedulers.gamma_for_target(lr_start, lr_end, RANGE_TEST_STEPS)   # > 1: the lr grows
scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=range_gamma)
loss_fn = torch.nn.CrossEntropyLoss()
SMOOTHING, BLOW_UP = 0.9, 4.0
range_lrs, range_losses, smoothed = [], [], []
average, best = 0.0, math.inf
for step, (X, y) in zip(range(RANGE_TEST_STEPS), endless(train_loader)):
    loss = loss_fn(model(X), y)
    optimizer.zero_grad()
    loss.backward()
    range_lrs.append(optimizer.param_groups[0]["lr"])      # the lr of this batch
    optimizer.step()
    scheduler.step()                                        # lr <- lr * range_gamma
    range_losses.append(loss.item())
    average = SMOOTHING * average + (1 - SMOOTHING) * range_losses[-1]
    smoothed.append(average / (1 - SMOOTHING ** (step + 1)))   # bias-corrected average
    best = min(best, smoothed[-1])
    if not math.isfinite(smoothed[-1]) or smoothed[-1] > BLOW_UP * best:
        break                                               # the loss exploded: stop
lowest = smoothed.index(min(smoothed))
suggestion = range_lrs[lowest] / 10
assert len(range_lrs) < RANGE_TEST_STEPS, "the loss never exploded: raise lr_end"
lag = range_gamma ** (SMOOTHING / (1 - SMOOTHING))
print(f"gamma = {range_gamma:.4f} per batch; stopped after {len(range_lrs)} of "
      f"{RANGE_TEST_STEPS} batches, at lr {range_lrs[-1]:.3g}")
print(f"lowest smoothed loss {smoothed[lowest]:.3f} at lr {range_lrs[lowest]:.3g}; "
      f"one tenth of that: {suggestion:.3g} (this notebook used lr0 = {LR})")
print(f"the smoothed curve lags about {SMOOTHING / (1 - SMOOTHING):.0f} batches behind, "
      f"a factor {lag:.2f} in lr")
notebook.record("range_test", {"stopped_at_lr": round(range_lrs[-1], 5),
                               "lowest_loss_lr": round(range_lrs[lowest], 5),
                               "suggested_lr0": round(suggestion, 5)})

# %%
fig, ax = plt.subplots(figsize=(7.5, 4), constrained_layout=True)
ax.plot(range_lrs, range_losses, alpha=0.35, label="loss of each batch", **plotting.style(5))
ax.plot(range_lrs, smoothed, label="smoothed loss", **plotting.style(0))
ax.axvline(range_lrs[lowest], label=f"lowest smoothed loss ({range_lrs[lowest]:.2g})",
           **plotting.style(3))
ax.axvline(suggestion, label=f"a tenth of it ({suggestion:.2g})", **plotting.style(2))
ax.axvline(LR, label=f"lr0 used above ({LR})", color="grey", linestyle=":")
ax.set_xscale("log")
ax.set_ylim(0, 1.5 * smoothed[0])           # the explosion runs off the top
ax.set_xlabel("learning rate (log scale), growing by gamma after every batch")
ax.set_ylabel("training loss")
ax.set_title("LR range test: the loss falls, bottoms out, then explodes")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# How to read a range test honestly:
#
# - It measures how the loss of a **fresh** model reacts to the lr over a few hundred batches.
#   Each point is also later in training than the one before it, so "lr" and "time" are mixed
#   together in one curve.
# - The smoothing that makes the curve readable also delays it, by the number of batches and the
#   factor in lr printed above, so the minimum appears at a somewhat larger lr than where the loss
#   really turned.
# - The lr at the lowest loss is already close to unstable. The usual rule takes about a tenth
#   of it as lr₀; anything between that and a few times more is a reasonable start, to be
#   confirmed by a short training run.
# - The result depends on the batch size, the momentum, the model and the seed: change one, and
#   run the test again. It picks lr₀; it says nothing about γ, which section 6 picked from the
#   budget.
#
# ## Going deeper
#
# Three details most learners can skip; each is also checked in `tests/test_lesson02.py`.
#
# ### How far the chainable lr and the formula may differ in floats
#
# Each float multiplication is off by at most half a unit in the last place, a relative error of
# at most ε/2 with ε = 2⁻⁵² (`sys.float_info.epsilon`). After n steps PyTorch's lr can be off by
# about n · ε/2; the closed form rounds in `gamma ** n` (within one unit) and once more when
# multiplying by lr₀. So the two may differ by a relative **(n + 2) · ε** at most: the tolerance
# every check in this notebook uses. Equality would be the wrong test:

# %% tags=["nbval-check-output"]
chained = 0.1 * 0.9 * 0.9 * 0.9       # what three steps of ExponentialLR(gamma=0.9) compute
closed = 0.1 * 0.9**3                 # the closed form
assert chained != closed and math.isclose(chained, closed, rel_tol=(3 + 2) * EPS)
print(f"chained: {chained!r}   closed form: {closed!r}   equal: {chained == closed}")
print(f"relative difference {abs(chained - closed) / closed:.1e}; "
      f"the bound at n = 3: {(3 + 2) * EPS:.1e}, at n = 200: {(200 + 2) * EPS:.1e}")

# %% [markdown]
# ### The deprecated `step(epoch)` jumps to the closed form
#
# Old code passes the epoch: `scheduler.step(epoch)`. PyTorch still accepts it, warns that it is
# deprecated, and sets the lr from the closed form lr₀ · γ^epoch, which **erases** anything else
# that changed the lr: here, the manual change of section 3. To resume, restore the scheduler
# (section 4) rather than jump with `step(k)`.

# %%
optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
for n in (1, 2):
    optimizer.step()
    scheduler.step()
optimizer.param_groups[0]["lr"] = 0.2                      # the manual change
optimizer.step()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    scheduler.step(3)                                      # instead of scheduler.step()
after = optimizer.param_groups[0]["lr"]
assert caught and "deprecated" in str(caught[0].message)
assert math.isclose(after, 0.1 * 0.5**3, rel_tol=(3 + 2) * EPS)   # the 0.2 is gone
print("warning:", str(caught[0].message).split(". Please")[0] + ".")
print(f"step(3) after the manual change: lr = {after:.6f} (chainable: {0.2 * 0.5:.6f})")

# %% [markdown]
# ### ExponentialLR is StepLR with `step_size=1`
#
# `StepLR(optimizer, step_size, gamma)` multiplies by γ every `step_size` steps. With
# `step_size=1` that is every step, which is ExponentialLR, bit for bit:

# %%
exponential_trace = schedulers.lr_trace(exponential_fn(0.9), epochs=300, lr=0.05)
step_trace = schedulers.lr_trace(
    lambda optimizer: lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.9), epochs=300, lr=0.05)
assert exponential_trace == step_trace
print(f"ExponentialLR(0.9) and StepLR(step_size=1, gamma=0.9): identical over "
      f"{len(step_trace)} steps")

# %% [markdown]
# ## Summary
#
# - ExponentialLR sets lr = lr₀ · γⁿ, where n counts `scheduler.step()` calls (0 right after
#   construction); epoch k trains with lr₀ · γ^(k−1). PyTorch multiplies step by step, so it
#   matches the formula within rounding, not always bit for bit.
# - From the rule: half-life h = ln 0.5 / ln γ ≈ 0.69 / (1 − γ); total lr budget lr₀ / (1 − γ);
#   γ = (target / lr₀)^(1/N), with N = E − 1 for the last of E epochs; per batch, γ^(1/S) meets
#   the per-epoch schedule at every epoch boundary.
# - `step()` builds on the current lr (chainable): manual changes and other schedulers multiply in.
# - `last_epoch=-1` starts fresh and stores `initial_lr`; `last_epoch=k - 1` resumes after k
#   steps and needs `initial_lr` in the param groups (load the optimizer's state first), or it
#   raises a KeyError; before torch 2.8 it also lowered the lr by one factor of γ. Restoring
#   `scheduler.state_dict()` resumes exactly on every version.
# - Choose γ for your budget: too fast and the lr, and with it the learning, dies in the first
#   epochs; too slow and the last epochs still train with a large lr.
# - An LR range test (an ExponentialLR with γ > 1, stepped per batch) suggests lr₀; read it as a
#   rough guide.
#
# ## Exercises
#
# Each exercise has a check cell: replace `None` with your answer and run the cell. It says how
# close you are.
#
# **1.** `ExponentialLR(optimizer, gamma=0.8)` on an optimizer with lr 0.1, stepped once per
# epoch: which lr does epoch 6 train with? Work it out by hand first; 3 significant digits are
# enough.

# %%
answer_1 = None
notebook.check_answer(answer_1, schedulers.lr_trace(exponential_fn(0.8), epochs=6, lr=0.1)[5])

# %% [markdown]
# **2.** Which γ halves the lr every 4 epochs exactly? Give at least 3 significant digits.

# %%
answer_2 = None
notebook.check_answer(answer_2, schedulers.gamma_for_target(1.0, 0.5, 4), digits=3)

# %% [markdown]
# **3.** You train with γ = 0.95 per epoch and want the same decay stepping after each of 250
# batches per epoch. Which γ do you pass to ExponentialLR? It is close to 1, so give 5
# significant digits (0.9xxxx).

# %%
answer_3 = None
notebook.check_answer(answer_3, schedulers.per_batch_gamma(0.95, 250), digits=5)

# %% [markdown]
# **4.** `ExponentialLR(gamma=0.5)` from lr 0.1. After 3 steps you set the lr to 0.2 by hand, then
# call `scheduler.step()` twice more. What is the lr now? (3 significant digits.)

# %%
answer_4 = None
optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
for n in range(1, 6):
    optimizer.step()
    scheduler.step()
    if n == 3:
        optimizer.param_groups[0]["lr"] = 0.2
notebook.check_answer(answer_4, optimizer.param_groups[0]["lr"])

# %% [markdown]
# **5.** (Open.) Run the range test again with `SEED = 1`, then with `BATCH_SIZE = 256` (set them
# in the parameters cell and run all cells). How much does the suggested lr₀ move? Then train with
# it: `history, travel = train_with_gamma(gammas["moderate"], lr=suggestion)`, and compare
# `history.val_loss` with the runs of section 6 (`histories["moderate"].val_loss`).
#
# ## References
#
# - PyTorch documentation, `torch.optim.lr_scheduler.ExponentialLR`:
#   https://docs.pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.ExponentialLR.html
# - PyTorch documentation, "How to adjust learning rate":
#   https://docs.pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate
# - L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017,
#   arXiv:1506.01186 (the LR range test).
# - L. N. Smith, "A disciplined approach to neural network hyper-parameters: Part 1",
#   arXiv:1803.09820, 2018 (reading a range test; lr, batch size and momentum together).
# - D. Goldberg, "What Every Computer Scientist Should Know About Floating-Point Arithmetic",
#   ACM Computing Surveys 23(1), 1991 (rounding error of repeated multiplication).
# - H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
#   Machine Learning Algorithms", arXiv:1708.07747, 2017.
