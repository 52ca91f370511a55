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
# - the rule lr = lr₀ · γⁿ, with n pinned down precisely, and checked against PyTorch as far as
#   floating point allows;
# - what the rule tells you without running anything: the half-life, the γ that reaches a target
#   lr, per-batch stepping, and why ExponentialLR is a StepLR;
# - the difference between PyTorch's *chainable* update and the *closed form*, shown on a
#   manual lr change, a second scheduler and the deprecated `step(epoch)`;
# - how γ and lr₀ shape the schedule, with sliders;
# - what decay that is too fast or too slow does to a LeNet on Fashion-MNIST;
# - how to choose lr₀ with an LR range test (an ExponentialLR with γ > 1), and how far to trust it.
#
# The whole notebook runs on a CPU; a GPU makes sections 5 and 6 much faster.

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
TRAIN_SIZE = 2000 if FAST else None           # training images (None: all 55,000 that remain)
VAL_SIZE = 1000 if FAST else 5000             # images held out for validation
BATCH_SIZE = 64
LR = 0.05                                     # lr0, the starting learning rate of every run
RANGE_TEST_STEPS = 100 if FAST else 300       # batches of the LR range test, at most
SEED = 0

# %% [markdown]
# ## 1. The rule, with n pinned down
#
# Section 11.3 of the LR Scheduler chapter this series follows gives the rule
#
# $$\text{lr}_n = \text{lr}_0 \cdot \gamma^{\,n}$$
#
# for `ExponentialLR(optimizer, gamma, last_epoch=-1)`. Everything depends on what n is, so here
# it is exactly: **n is the number of `scheduler.step()` calls so far**. PyTorch keeps it in
# `scheduler.last_epoch`. The constructor already calls `step()` once, in a special first mode
# that does not multiply, which moves `last_epoch` from its default −1 to **0**: right after
# construction n = 0 and the lr is still lr₀. It also stores lr₀ in the optimizer as
# `initial_lr`.

# %%
optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
assert scheduler.last_epoch == 0
assert scheduler.get_last_lr() == [0.1] == [optimizer.param_groups[0]["lr"]]
assert optimizer.param_groups[0]["initial_lr"] == 0.1

# %% tags=["nbval-check-output"]
print("calls n   last_epoch   get_last_lr()   lr0 * gamma**n")
for n in range(6):
    if n > 0:
        optimizer.step()         # training with the current lr would happen here
        scheduler.step()         # call number n
    print(f"{n:7d}   {scheduler.last_epoch:10d}   {scheduler.get_last_lr()[0]:13.6f}   "
          f"{schedulers.exponential_lr(0.1, 0.5, n):14.6f}")

# %% [markdown]
# With one `scheduler.step()` at the end of every epoch, n counts the epochs *completed*: epoch 1
# trains with lr₀, epoch 2 with lr₀ · γ, and epoch k with lr₀ · γ^(k−1).
#
# ### Checked on a grid, to the last bits
#
# `schedulers.exponential_lr(lr0, gamma, n)` is the closed form lr₀ · γⁿ. PyTorch does not compute
# that: at each step it multiplies the optimizer's current lr by γ. Both are exact in real numbers,
# but floats round. Each float multiplication is off by at most half a unit in the last place,
# a relative error of at most ε/2 with ε = 2⁻⁵² ≈ 2.2e-16 (`sys.float_info.epsilon`). After n
# multiplications PyTorch can be off by about n · ε/2; the closed form rounds in `gamma ** n`
# (within one unit) and once more when multiplying by lr₀. So the two may differ by a relative
# **(n + 2) · ε** at most, and that is the tolerance of the check below: about 4.5e-14 at
# n = 200. Asking for exact equality would be wrong, as one example shows.

# %% tags=["nbval-check-output"]
chained = 0.1 * 0.9 * 0.9 * 0.9       # what three steps of ExponentialLR(gamma=0.9) compute
closed = 0.1 * 0.9**3                 # the closed form
print(f"chained: {chained!r}   closed form: {closed!r}   equal: {chained == closed}")


# %%
def exponential_fn(gamma):
    """A scheduler_fn for lr_trace: builds ExponentialLR(gamma) on the optimizer it is given."""
    return lambda optimizer: lr_scheduler.ExponentialLR(optimizer, gamma=gamma)


EPS = sys.float_info.epsilon
LR0_GRID = (1e-4, 3e-3, 0.05, 0.1, 1.0, 3.0)
GAMMA_GRID = (0.5, 0.7, 0.9, 0.95, 0.99, 0.999, 1.0, 1.05)
MAX_STEPS = 200
checks, worst = 0, 0.0     # worst: the largest error seen, in units of n * eps
for lr0 in LR0_GRID:
    for gamma in GAMMA_GRID:
        # The lr after n = 0, 1, ..., MAX_STEPS calls of a real ExponentialLR's step().
        measured = schedulers.lr_trace(exponential_fn(gamma), epochs=MAX_STEPS + 1, lr=lr0)
        for n, lr in enumerate(measured):
            expected = schedulers.exponential_lr(lr0, gamma, n)
            assert math.isclose(lr, expected, rel_tol=(n + 2) * EPS, abs_tol=0), (lr0, gamma, n)
            checks += 1
            if n > 0:
                worst = max(worst, abs(lr - expected) / expected / (n * EPS))

# %% tags=["nbval-check-output"]
print(f"{checks} checks ({len(LR0_GRID)} lr0 x {len(GAMMA_GRID)} gammas x n = 0..{MAX_STEPS}): "
      f"get_last_lr() == lr0 * gamma**n within a relative (n + 2) * eps")

# %%
print(f"largest relative difference seen: {worst:.2f} * n * eps")
assert worst < 0.5

# %% [markdown]
# The largest difference stays below n · ε/2 (the cell above shows it in units of n · ε), as the
# rounding argument predicts. The rule *is* what PyTorch computes.
#
# ## 2. What the rule predicts, without running anything
#
# ### Half-life
#
# The lr halves when γʰ = ½, so after
#
# $$h = \frac{\ln 0.5}{\ln \gamma}\ \text{steps.}$$
#
# For γ close to 1, ln γ ≈ −(1 − γ) gives the rule of thumb **h ≈ 0.69 / (1 − γ)**: γ = 0.99
# halves the lr about every 69 epochs, γ = 0.9 about every 7. The rule of thumb is a little long:
# for γ near 1 by a fraction of about (1 − γ)/2 (0.5 % at γ = 0.99), and by more for smaller
# γ. A second number to know: however long you train, the lrs of all epochs add up to at most
# lr₀ / (1 − γ) (a geometric series), so γ = 0.9 can never give the model more than 10 epochs'
# worth of lr₀.

# %% tags=["nbval-check-output"]
print(" gamma   half-life h   0.69/(1-gamma)   lr after 10 epochs   sum of all lrs")
for gamma in (0.99, 0.95, 0.9, 0.8, 0.7, 0.5):
    h = schedulers.half_life(gamma)
    print(f"{gamma:6.2f}   {h:11.2f}   {math.log(2) / (1 - gamma):14.2f}   "
          f"{gamma**10:12.4f} x lr0   {1 / (1 - gamma):8.1f} x lr0")

# %%
for gamma in (0.99, 0.95, 0.9, 0.8, 0.7, 0.5):
    h = schedulers.half_life(gamma)
    lrs = schedulers.lr_trace(exponential_fn(gamma), epochs=math.ceil(h) + 2, lr=1.0)
    # Halved between step floor(h) and step ceil(h), as measured in torch:
    assert lrs[math.floor(h)] >= 0.5 >= lrs[math.ceil(h)], gamma
    too_long = math.log(2) / (1 - gamma) / h - 1                       # the rule of thumb
    assert 0 < too_long < 1 - gamma
    if gamma >= 0.9:
        assert abs(too_long - (1 - gamma) / 2) < (1 - gamma) ** 2 / 2
    budget = sum(schedulers.lr_trace(exponential_fn(gamma), epochs=2001, lr=1.0))
    assert budget <= 1 / (1 - gamma) * (1 + 1e-9)                           # the lr budget
print("half-lives, rule of thumb and lr budgets confirmed")

# %% [markdown]
# ### The γ that reaches a target lr
#
# To go from lr₀ to a target lr in N steps, solve lr₀ · γᴺ = target:
# γ = (target / lr₀)^(1/N), which is `schedulers.gamma_for_target`. Mind the count. With one step
# per epoch, the lr of epoch k is lr₀ · γ^(k−1), so for the **last of E epochs** to train with the
# target, N = E − 1. Taking N = E gets there one step too late: the target is set after the last
# epoch, and nothing trains with it.

# %%
E, start, target = 20, 0.05, 0.0005
gamma_right = schedulers.gamma_for_target(start, target, E - 1)
gamma_late = schedulers.gamma_for_target(start, target, E)
lrs_right = schedulers.lr_trace(exponential_fn(gamma_right), epochs=E, lr=start)
lrs_late = schedulers.lr_trace(exponential_fn(gamma_late), epochs=E, lr=start)
assert math.isclose(lrs_right[-1], target, rel_tol=(E + 2) * EPS)
assert lrs_late[-1] > target * 1.2

# %% tags=["nbval-check-output"]
print(f"from {start} to {target} for the last of {E} epochs: gamma = {gamma_right:.6f}")
print(f"  lr of epoch {E}: {lrs_right[-1]:.6f}")
print(f"with N = {E} instead: gamma = {gamma_late:.6f}, lr of epoch {E}: {lrs_late[-1]:.6f}")

# %% [markdown]
# ### Stepping after every batch
#
# A scheduler knows nothing about epochs: it multiplies by γ at each `step()`. Step it after every
# batch with γ_batch = γ^(1/S), for S batches per epoch (`schedulers.per_batch_gamma`), and after
# S steps the lr has been multiplied by exactly γ: the two schedules meet at every epoch
# boundary. Between boundaries the per-batch lr keeps sliding down, so over an epoch it trains
# with a little less lr: on average a factor (1 − γ) / (S · (1 − γ^(1/S))), about 0.95 for γ = 0.9.
#
# The plot is drawn by the same pure function as the explorer in section 4.

# %%
S, gamma = 100, 0.9
view = exponential.exponential_view(LR, gamma, 10, per_batch=True, steps_per_epoch=S)
per_batch = schedulers.lr_trace(exponential_fn(schedulers.per_batch_gamma(gamma, S)), epochs=10,
                                lr=LR, steps_per_epoch=S, step_per="batch")
per_epoch = schedulers.lr_trace(exponential_fn(gamma), epochs=10, lr=LR)
for k in range(10):      # epoch k + 1 starts after k * S batch steps and k epoch steps
    assert math.isclose(per_batch[k * S], per_epoch[k], rel_tol=(k * S + 2) * EPS)
    assert math.isclose(view.lrs[k * S], per_batch[k * S], rel_tol=(k * S + 2) * EPS)
    epoch_mean = sum(per_batch[k * S:(k + 1) * S]) / S
    factor = (1 - gamma) / (S * (1 - gamma ** (1 / S)))
    assert math.isclose(epoch_mean, per_epoch[k] * factor, rel_tol=1e-11)
fig, ax = plt.subplots(figsize=(7.5, 3.8), constrained_layout=True)
exponential.draw_exponential(view, ax)
plt.show()

# %% tags=["nbval-check-output"]
print(f"per-batch gamma for gamma = {gamma}, {S} batches per epoch: "
      f"{schedulers.per_batch_gamma(gamma, S):.8f}")
print(" epoch   per-epoch lr   per-batch lr at its start   mean per-batch lr in it")
for k in (0, 1, 5, 9):
    print(f"{k + 1:6d}   {per_epoch[k]:12.6f}   {per_batch[k * S]:25.6f}   "
          f"{sum(per_batch[k * S:(k + 1) * S]) / S:23.6f}")

# %% [markdown]
# ### ExponentialLR is StepLR with `step_size=1`
#
# `StepLR(optimizer, step_size, gamma)` multiplies by γ every `step_size` steps. With
# `step_size=1` that is every step, which is ExponentialLR, bit for bit:

# %%
for gamma in (0.5, 0.9, 0.99):
    exponential_trace = schedulers.lr_trace(exponential_fn(gamma), epochs=300, lr=0.05)
    step_trace = schedulers.lr_trace(
        lambda optimizer: lr_scheduler.StepLR(optimizer, step_size=1, gamma=gamma),
        epochs=300, lr=0.05)
    assert exponential_trace == step_trace, gamma
print("ExponentialLR(gamma) and StepLR(step_size=1, gamma): identical over 300 steps")

# %% [markdown]
# ## 3. Chainable update and closed form
#
# PyTorch's `step()` does `lr ← lr · γ` on the lr the optimizer holds **now** (the chainable
# form). lr₀ · γⁿ (the closed form) gives the same numbers only as long as nothing else changes
# the lr. Three cases where something does.
#
# ### A manual change
#
# After two epochs we set the lr by hand, say to 0.2. The chainable update carries on from 0.2;
# the closed form knows nothing about it.

# %%
optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
manual = []
for n in range(1, 6):
    optimizer.step()
    scheduler.step()
    if n == 2:
        optimizer.param_groups[0]["lr"] = 0.2       # a change by hand
    manual.append(optimizer.param_groups[0]["lr"])

# %% tags=["nbval-check-output"]
print("after step n   torch lr   closed form 0.1 * 0.5**n")
for n, lr in enumerate(manual, start=1):
    print(f"{n:12d}   {lr:8.4f}   {schedulers.exponential_lr(0.1, 0.5, n):24.4f}"
          + ("   <- set to 0.2 by hand" if n == 2 else ""))

# %%
assert manual[2:] == [0.2 * 0.5, 0.2 * 0.5**2, 0.2 * 0.5**3]   # builds on the manual value

# %% [markdown]
# ### A second scheduler on the same optimizer
#
# Two schedulers, both stepped once per epoch: ExponentialLR(γ = 0.9) and StepLR(step_size=3,
# γ = 0.1). Each multiplies the lr it finds, so their effects **multiply**:
# lr = lr₀ · 0.9ⁿ · 0.1^⌊n/3⌋. (`lr_scheduler.ChainedScheduler` packages the same thing, as the
# last check below shows.)

# %%
optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
decay = lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
cuts = lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.1)
both = []
for n in range(1, 8):
    optimizer.step()
    decay.step()
    cuts.step()
    both.append(optimizer.param_groups[0]["lr"])
    assert math.isclose(both[-1], 0.1 * 0.9**n * 0.1 ** (n // 3), rel_tol=4 * n * EPS)

optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
chained = lr_scheduler.ChainedScheduler([lr_scheduler.ExponentialLR(optimizer, gamma=0.9),
                                         lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.1)])
chained_lrs = []
for n in range(1, 8):
    optimizer.step()
    chained.step()
    chained_lrs.append(optimizer.param_groups[0]["lr"])
assert chained_lrs == both

# %% tags=["nbval-check-output"]
print("after step n   torch lr   0.1 * 0.9**n * 0.1**(n // 3)   ExponentialLR alone")
for n, lr in enumerate(both, start=1):
    print(f"{n:12d}   {lr:8.6f}   {0.1 * 0.9**n * 0.1 ** (n // 3):28.6f}   "
          f"{schedulers.exponential_lr(0.1, 0.9, n):19.6f}")

# %% [markdown]
# ### The deprecated `step(epoch)` switches to the closed form
#
# Old code passes the epoch: `scheduler.step(epoch)`. PyTorch still accepts it, warns that it is
# deprecated, and then sets the lr from the closed form lr₀ · γ^epoch, which **erases** anything
# else that changed the lr. Here the same two cases as above, finished with `step(epoch)`:

# %%
def step_with_epoch(scheduler, epoch):
    """scheduler.step(epoch), returning the warning messages it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scheduler.step(epoch)
    return list(caught)


# The manual change: 0.2 set by hand after step 2, then step 3 passed as an epoch.
optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
for n in (1, 2):
    optimizer.step()
    scheduler.step()
optimizer.param_groups[0]["lr"] = 0.2
optimizer.step()
caught = step_with_epoch(scheduler, 3)
after_manual = optimizer.param_groups[0]["lr"]

# The second scheduler: StepLR cut the lr by 10 at step 3; ExponentialLR then gets step(4).
optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
decay = lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
cuts = lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.1)
for n in (1, 2, 3):
    optimizer.step()
    decay.step()
    cuts.step()
optimizer.step()
cuts.step()
step_with_epoch(decay, 4)
after_second = optimizer.param_groups[0]["lr"]

assert caught and all(issubclass(w.category, UserWarning) for w in caught)
assert "deprecated" in str(caught[0].message) and "closed form" in str(caught[0].message)
assert math.isclose(after_manual, 0.1 * 0.5**3, rel_tol=4 * EPS)   # 0.0125: the 0.2 is gone
assert math.isclose(after_second, 0.1 * 0.9**4, rel_tol=8 * EPS)   # StepLR's cut is gone

# %% tags=["nbval-check-output"]
print("warning:", str(caught[0].message).split(". Please")[0] + ".")
print(f"manual change, then step(3):   lr = {after_manual:.6f}   (chainable: {0.2 * 0.5:.6f})")
print(f"second scheduler, then step(4): lr = {after_second:.6f}   "
      f"(chainable: {0.1 * 0.9**4 * 0.1:.6f})")

# %% [markdown]
# So: call `scheduler.step()` without arguments. To resume training at epoch k, restore the
# scheduler with `load_state_dict` (notebook 03 and `course_utils.checkpoint` do this) rather
# than jumping with `step(k)`.
#
# ## 4. Explore it yourself
#
# Move the sliders: lr₀ (on a log scale), γ, the number of epochs, and per-batch stepping. The plot
# marks the half-life when it falls inside the plotted epochs; the table lists the lr at a few
# epochs. Try to predict each change before you make it: with γ = 0.9 the lr halves about every 7
# epochs; what does γ = 0.95 do? (In a static copy of this notebook the sliders do not react:
# run it in Jupyter or Colab.)

# %% tags=["nbval-ignore-output"]
exponential.exponential_explorer(lr=LR, gamma=0.9, epochs=30)

# %% [markdown]
# The explorer draws `exponential.exponential_view(...)`, a plain function that computes
# everything on display (the curve, the half-life, the table) and can be called directly:

# %% tags=["nbval-check-output"]
print(exponential.format_table(exponential.exponential_view(LR, 0.9, 30)))

# %% [markdown]
# ## 5. Training with several γ
#
# ### The data and the network
#
# Fashion-MNIST, as in notebook 01: a validation split held out of the training images, and
# `TensorLoader` to keep the images on the device. The network is the chapter's LeNet, trained
# with SGD and momentum 0.9.

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
# What matters for a run is not γ alone but γ^(EPOCHS−1): the fraction of lr₀ left for the last
# epoch. So we pick the γs with `gamma_for_target`, one per ending: no decay; a slow decay that
# ends at half of lr₀; a moderate one that ends at 1/20 of lr₀; and one that is too fast, ending
# at 1/10,000 of lr₀. Here is the schedule of each, before any training:

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
# order. Only γ differs. Besides the usual history, we measure how far the weights move in each
# epoch (the length of the change of the whole parameter vector): a small lr means small steps.

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

# %% [markdown]
# Training followed the rule: the lr `fit` recorded for epoch k is lr₀ · γ^(k−1), within the
# rounding tolerance of section 1.

# %%
for name, gamma in gammas.items():
    for epoch, lr in zip(histories[name].epochs, histories[name].lr):
        expected = schedulers.exponential_lr(LR, gamma, epoch - 1)
        assert math.isclose(lr, expected, rel_tol=(epoch + 1) * EPS), (name, epoch)
print("every recorded lr equals lr0 * gamma**(epoch - 1)")

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
# - **Too fast.** The lr more than halves every epoch (its half-life is a fraction of an
#   epoch), and with it the weights stop moving: in the last epoch they move less than 1% of the
#   distance of the first. The later epochs add little: the run ends with a higher training loss
#   than the moderate decay, which kept learning for longer. All its epochs together got less
#   than 1.6 epochs' worth of lr₀ (the column "epochs of lr0", the sum of the lrs divided by
#   lr₀), and more epochs would hardly add to that: lr₀ / (1 − γ) is the most it can ever get.
#   Its *validation* loss need not be the worst: the small lr that freezes it also settles the
#   weights, which is what decay is for, and on the full training set the first epoch alone
#   learns a lot. What it cannot do is keep improving.
# - **Too slow.** With γ close to 1 the schedule stays close to the constant one: the last epoch
#   still trains with at least half of lr₀, so the run never gets the small steps of a low lr.
#   Whether slow or moderate decay beats no decay by more than the seed alone would change
#   cannot be read from one run: rerun with `SEED = 1` and see whether the order holds. The
#   table gives this run's numbers, not a ranking.
# - γ only means something together with the number of epochs. γ = 0.9 leaves 81% of lr₀ for
#   the last of 3 epochs, and under 5% for the last of 30.
#
# The cell below checks the claims about the too-fast run.

# %%
fastest = histories["too fast"]
assert schedulers.half_life(gammas["too fast"]) < 1                # more than halved per epoch
assert fastest.lr[-1] <= LR * 1e-4 * (1 + 1e-9)                     # the lr is gone ...
assert travels["too fast"][-1] < 0.01 * travels["too fast"][0]      # ... and the weights stop
assert fastest.train_loss[-1] > histories["moderate"].train_loss[-1]   # it stopped fitting
assert sum(fastest.lr) < 1.6 * LR                                   # < 1.6 epochs of lr0
assert histories["slow"].lr[-1] >= LR / 2 * (1 - 1e-9)              # slow: still >= lr0 / 2
assert round(0.9**2, 2) == 0.81 and 0.9**29 < 0.05                  # gamma needs the budget
print(f"too fast: last-epoch move {travels['too fast'][-1] / travels['too fast'][0]:.1e} of "
      f"the first; final training loss {fastest.train_loss[-1]:.3f} vs "
      f"{histories['moderate'].train_loss[-1]:.3f} with moderate decay")

# %% [markdown]
# ## 6. Beyond the chapter: an LR range test to choose lr₀
#
# Everything above started from lr₀ = 0.05. Where does such a number come from? An **LR range
# test** (L. N. Smith, 2017) trains a fresh model for a few hundred batches while the lr grows,
# and watches the loss: low lrs barely move it, good lrs bring it down fast, and
# too-high lrs make it explode. The growing lr is just an ExponentialLR with **γ > 1**, stepped
# after every batch (Smith grew the lr linearly; the exponential sweep, which gives every decade
# of lr the same number of batches, is the common variant); `gamma_for_target` finds the γ
# that sweeps from 10⁻⁴ to 10 in
# `RANGE_TEST_STEPS` steps.
#
# The loop is short and in plain sight. The loss of one batch is noisy, so we follow an
# exponential moving average of it (with the usual correction for its start at zero), and stop
# as soon as that smoothed loss is more than 4 times the best seen so far.

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
print(f"gamma = {range_gamma:.4f} per batch; stopped after {len(range_lrs)} of "
      f"{RANGE_TEST_STEPS} batches, at lr {range_lrs[-1]:.3g}")
print(f"lowest smoothed loss {smoothed[lowest]:.3f} at lr {range_lrs[lowest]:.3g}; "
      f"one tenth of that: {suggestion:.3g} (this notebook used lr0 = {LR})")
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
# What the test checked, and what it did not:

# %%
assert len(range_lrs) < RANGE_TEST_STEPS, "the loss never exploded: raise lr_end"
for k, lr in enumerate(range_lrs):       # the lr grew exactly by gamma per batch
    assert math.isclose(lr, lr_start * range_gamma**k, rel_tol=(k + 2) * EPS)
assert 1e-3 <= suggestion <= 0.2
lag = range_gamma ** (SMOOTHING / (1 - SMOOTHING))
print(f"the smoothed curve lags about {SMOOTHING / (1 - SMOOTHING):.0f} batches behind, "
      f"a factor {lag:.2f} in lr")

# %% [markdown]
# How to read a range test honestly:
#
# - It measures how the loss of a **fresh** model reacts to the lr over a few hundred batches.
#   Each point is also later in training than the one before it, so "lr" and "time" are mixed
#   together in one curve.
# - The smoothing that makes the curve readable also delays it: the average follows the loss by
#   about 9 batches, a factor of about the `lag` printed above in lr, so the minimum appears
#   at a somewhat larger lr than where the loss really turned.
# - The lr at the lowest loss is already close to unstable. The usual rule takes about a tenth
#   of it as lr₀; anything between that and a few times more is a reasonable start, to be
#   confirmed by a short training run. Compare with the 0.05 this notebook used, printed above.
# - The result depends on the batch size, the momentum, the model and the seed: change one, and
#   run the test again. It picks lr₀; it says nothing about γ, which section 5 picked from the
#   budget.

# %% [markdown]
# ## Summary
#
# - ExponentialLR sets lr = lr₀ · γⁿ, where n counts `scheduler.step()` calls (0 right after
#   construction). PyTorch multiplies step by step, so it matches the closed form to within a
#   relative (n + 2) · ε, not bit for bit.
# - From the rule: half-life h = ln 0.5 / ln γ ≈ 0.69 / (1 − γ); total lr budget lr₀ / (1 − γ);
#   γ = (target / lr₀)^(1/N), with N = E − 1 for the last of E epochs; per batch,
#   γ^(1/S) meets the per-epoch schedule at every epoch boundary; ExponentialLR is
#   StepLR(step_size=1).
# - `step()` builds on the current lr (chainable): manual changes and other schedulers
#   multiply in. The deprecated `step(epoch)` jumps to the closed form, erases them, and warns.
# - Choose γ for your budget: too fast and the lr, and with it the learning, dies in the first
#   epochs; too slow and the last epochs still train with a large lr.
# - An LR range test (an ExponentialLR with γ > 1, stepped per batch) suggests lr₀; read it as a
#   rough guide.
#
# ## Exercises
#
# Each exercise has a check cell: replace `None` with your answer and run the cell.
#
# **1.** `ExponentialLR(optimizer, gamma=0.8)` on an optimizer with lr 0.1, stepped once per
# epoch: which lr does epoch 6 train with? Work it out by hand first.

# %%
answer_1 = None
notebook.check_answer(answer_1, schedulers.lr_trace(exponential_fn(0.8), epochs=6, lr=0.1)[5])

# %% [markdown]
# **2.** Which γ halves the lr every 4 epochs exactly?

# %%
answer_2 = None
notebook.check_answer(answer_2, schedulers.gamma_for_target(1.0, 0.5, 4))

# %% [markdown]
# **3.** You train with γ = 0.95 per epoch and want the same decay stepping after each of 250
# batches per epoch. Which γ do you pass to ExponentialLR?

# %%
answer_3 = None
notebook.check_answer(answer_3, schedulers.per_batch_gamma(0.95, 250))

# %% [markdown]
# **4.** `ExponentialLR(gamma=0.5)` from lr 0.1. After 3 steps you set the lr to 0.2 by hand, then
# call `scheduler.step()` twice more. What is the lr now?

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
# in the parameters cell and run all cells). How much does the suggested lr₀ move? Then train
# with `train_with_gamma(gamma, lr=...)` from your suggestion and compare with the runs of
# section 5.
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
