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
# # 06 · Warmup, restarts and resuming: the schedules learners get wrong
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lr-course/lr-schedulers-regularization/blob/main/notebooks/06_warmup_restarts_resuming.ipynb)
#
# **What you will learn**
#
# - warmup the PyTorch way (`LinearLR` + `SequentialLR`, or `ChainedScheduler`), the lr at every
#   step around the hand-off on your torch, and why warmup helps, measured on LeNet;
# - how to warm up before `ReduceLROnPlateau`, which `SequentialLR` refuses;
# - restarts and cycles: `CosineAnnealingWarmRestarts` and `CyclicLR`;
# - how to resume any scheduler bit for bit, and what goes wrong otherwise (`last_epoch`,
#   `KeyError: 'initial_lr'`, OneCycleLR's "Tried to step ... times");
# - why `GradScaler` makes torch warn that the scheduler stepped first, and the fix;
# - weight averaging (SWA) and the BatchNorm statistics it leaves stale;
# - whether Adam and AdamW need a schedule at all, measured.
#
# The whole notebook runs on a CPU; a GPU makes the training sections faster.

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
import copy
import math
import statistics
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch.optim import lr_scheduler, swa_utils

from course_utils import checkpoint, data, models, notebook, plateau_replay, plotting, \
    schedulers, training

device = notebook.report_device()   # a GPU when there is one
TORCH_VERSION = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])

# %% tags=["parameters"]
FAST = notebook.fast_mode()                   # COURSE_FAST=1: small defaults for tests
EPOCHS = 2 if FAST else 3                     # epochs of every training run (at least 2)
TRAIN_SIZE = 640 if FAST else 4000            # training images (None: all that remain)
VAL_SIZE = 500 if FAST else 5000              # images held out for validation, at most
SEEDS = 2 if FAST else 3                      # seeds of every "with vs without" comparison
BATCH_SIZE = 64
LR = 0.05                                     # the course's lr for SGD + momentum
PEAK_LR = 0.2                                 # four times higher: where warmup matters
SEED = 0

# %% [markdown]
# The data: Fashion-MNIST with a validation split held out of the training images, kept on the
# device by `TensorLoader`; the network: the chapter's LeNet with BatchNorm.

# %%
train_full, test = data.load_fashion_mnist()
train, val = data.lesson_split(train_full, val_size=VAL_SIZE, train_size=TRAIN_SIZE, seed=SEED)
train_loader = data.TensorLoader(train, BATCH_SIZE, shuffle=True, device=device, seed=SEED)
val_loader = data.TensorLoader(val, 1000, device=device)
steps_per_epoch = len(train_loader)
total_steps = EPOCHS * steps_per_epoch
print(f"{len(train):,} training images in {steps_per_epoch} batches of {BATCH_SIZE}, "
      f"{len(val):,} validation images; {EPOCHS} epochs = {total_steps} steps")


# %%
def new_lenet(seed=SEED):
    training.set_seed(seed, deterministic=True)     # on a GPU too, runs differ only as intended
    return models.LeNet(batch_norm=True).to(device)


def sgd(lr=0.1):                    # a throwaway optimizer, enough to watch the lr
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)


def spread(values):
    """'mean ± standard deviation' of a few runs, in percent."""
    return f"{statistics.mean(values):.2%} ± {statistics.stdev(values):.2%}"


def against_noise(before, after):
    """The mean's move from `before` to `after` (runs), against twice the larger std."""
    gap = statistics.mean(after) - statistics.mean(before)
    noise = max(statistics.stdev(before), statistics.stdev(after))
    return gap, (f"{gap:+.2%}, against a seed-to-seed spread of up to {noise:.2%}: "
                 + ("beyond noise" if abs(gap) > 2 * noise else "within noise"))


# %% [markdown]
# ## 1. Warmup the PyTorch way
#
# A warmup starts with a small lr and raises it to the lr you chose over the first steps; then
# the main schedule (here a cosine) takes over. `LinearLR(start_factor=0.1, total_iters=W)`
# multiplies the lr by a factor going linearly from 0.1 to 1 in W steps, and
# `SequentialLR(..., milestones=[W])` hands over to the cosine at step W, which then counts from
# 0. With peak lr η, t the number of `scheduler.step()` calls and T steps in all:
#
# - warmup, t < W: η · (0.1 + 0.9 · t / W);
# - cosine, t ≥ W: η · ½ · (1 + cos(π · (t − W) / (T − W))).
#
# `ChainedScheduler` instead steps every scheduler it holds at every step, so their factors
# **multiply**: the warmup's factor times a cosine over the whole run, η · (0.1 + 0.9 · min(t,
# W) / W) · ½ · (1 + cos(π · t / T)). The lr at every step of a 10-step toy run with W = 3:

# %%
def warmup_then_cosine(optimizer, warmup, total, start_factor=0.1):
    """LinearLR for `warmup` steps, then a cosine over the remaining steps."""
    warm = lr_scheduler.LinearLR(optimizer, start_factor=start_factor, total_iters=warmup)
    cosine = lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup)
    return lr_scheduler.SequentialLR(optimizer, [warm, cosine], milestones=[warmup])


def warmup_times_cosine(optimizer, warmup, total, start_factor=0.1):
    """LinearLR and a cosine over the whole run, both stepped at every step."""
    return lr_scheduler.ChainedScheduler([
        lr_scheduler.LinearLR(optimizer, start_factor=start_factor, total_iters=warmup),
        lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)])


W, T = 3, 10
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    sequential = schedulers.lr_trace(lambda opt: warmup_then_cosine(opt, W, T), epochs=T, lr=0.1)
chained = schedulers.lr_trace(lambda opt: warmup_times_cosine(opt, W, T), epochs=T, lr=0.1)

# %% tags=["nbval-check-output"]
print("step t   SequentialLR   formula   ChainedScheduler   product")
for t, (lr, chained_lr) in enumerate(zip(sequential, chained)):
    cosine = 0.5 * (1 + math.cos(math.pi * (t - W) / (T - W)))
    expected = 0.1 * (0.1 + 0.9 * t / W) if t < W else 0.1 * cosine
    product = 0.1 * (0.1 + 0.9 * min(t, W) / W) * 0.5 * (1 + math.cos(math.pi * t / T))
    print(f"{t:6d}   {lr:12.6f}   {expected:7.6f}   {chained_lr:16.6f}   {product:.6f}"
          + ("   <- hand-off" if t == W else ""))
    assert math.isclose(lr, expected, rel_tol=1e-12)
    assert math.isclose(chained_lr, product, rel_tol=1e-12)
assert max(sequential) == sequential[W] == 0.1           # the peak is hit, never exceeded
assert max(chained) < 0.1                                # the peak is never reached

# %% [markdown]
# With `SequentialLR` the lr at the milestone is exactly the peak, never above it: the cosine
# starts from its closed form at count 0. With `ChainedScheduler` the cosine already falls while
# the warmup rises, so the lr never reaches the peak: another schedule, not a wrong one. Users of
# older versions and of hand-written warmup wrappers report an lr off at the hand-off, or above
# the peak (see the references); here is what your torch does, warnings included. Then two ways
# to get the hand-off wrong with torch's own classes: a warmup whose `total_iters` is longer than
# the milestone (the cosine takes over early: the lr jumps), and a milestone of 0, as in a "no
# warmup" configuration, where the run should start on the main schedule. PyTorch issue #185872
# reports that it started with the warmup's lr instead (on 2.12); torch 2.3 does that too, 2.13
# and later do not.

# %%
print(f"torch {torch.__version__}: lr {sequential[W - 1]:.4g} -> {sequential[W]:.4g} at the "
      f"milestone; warnings: {[str(w.message)[:60] + '...' for w in caught] or 'none'}")
# torch 2.3 warns that step(epoch) is deprecated (SequentialLR used it internally at the
# milestone; the lrs are the same); 2.13 and later do not.
assert all("epoch parameter" in str(w.message) for w in caught)
cut_short = schedulers.lr_trace(lambda opt: lr_scheduler.SequentialLR(opt, [
    lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5),
    lr_scheduler.CosineAnnealingLR(opt, T_max=T - W)], milestones=[W]), epochs=T, lr=0.1)
print(f"total_iters=5, milestone 3: {[round(lr, 4) for lr in cut_short[:5]]} ..., a jump by "
      f"{cut_short[W] / cut_short[W - 1]:.2f}x at the milestone")
assert cut_short[W] / cut_short[W - 1] > 2
no_warmup = schedulers.lr_trace(lambda opt: lr_scheduler.SequentialLR(opt, [
    lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=W),
    lr_scheduler.CosineAnnealingLR(opt, T_max=T)], milestones=[0]), epochs=3, lr=0.1)
print(f"milestone 0: first lrs {[round(lr, 4) for lr in no_warmup]}",
      "(the main schedule's)" if no_warmup[0] == 0.1 else "(the warmup's)")
if TORCH_VERSION >= (2, 13) or TORCH_VERSION == (2, 3):
    assert no_warmup[0] == (0.1 if TORCH_VERSION >= (2, 13) else 0.1 * 0.1)

# %% [markdown]
# ### Why warmup helps, measured
#
# At the course's lr of 0.05 LeNet trains well without warmup. At four times that peak, the first
# steps, taken with random weights and large gradients, can throw the network into a region it
# takes long to leave. We train with `PEAK_LR` and a cosine stepped after every batch, once with a
# warmup over the first epoch and once without, each over `SEEDS` seeds. The two schedules first:

# %%
def peak_schedule(optimizer, warmup):
    if warmup:
        return warmup_then_cosine(optimizer, steps_per_epoch, total_steps)
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)


plans = {name: schedulers.lr_trace(lambda opt, w=w: peak_schedule(opt, w), epochs=EPOCHS,
                                   lr=PEAK_LR, steps_per_epoch=steps_per_epoch, step_per="batch")
         for name, w in (("no warmup", False), ("warmup, 1 epoch", True))}
plotting.plot_schedules({k: ([s / steps_per_epoch for s in range(total_steps)], v)
                         for k, v in plans.items()}, ncols=2, xlabel="epoch",
                        title=f"Peak lr {PEAK_LR}, stepped after every batch")
plt.show()


# %%
def train_run(seed, make_optimizer, make_scheduler):
    """A fresh seeded LeNet trained by fit, the scheduler stepped per batch; its History."""
    model = new_lenet(seed)
    optimizer = make_optimizer(model.parameters())
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    return training.fit(model, train_loader, val_loader, optimizer, epochs=EPOCHS,
                        scheduler=scheduler, step_per="batch", progress=False)


def final_acc(history):
    """The last epoch's validation accuracy; chance (10 %) for a run that blew up."""
    return history.val_acc[-1] if len(history) == EPOCHS else 0.1


peak_sgd = lambda params: torch.optim.SGD(params, lr=PEAK_LR, momentum=0.9)  # noqa: E731
warmup_accs = {}
for name, warm in (("no warmup", False), ("warmup", True)):
    runs = [train_run(seed, peak_sgd, lambda opt, w=warm: peak_schedule(opt, w))
            for seed in range(SEEDS)]
    assert all(h.batch_lrs == plans["warmup, 1 epoch" if warm else "no warmup"] for h in runs
               if len(h) == EPOCHS)                              # trained as previewed
    warmup_accs[name] = [final_acc(h) for h in runs]
    print(f"{name:>10}: final validation accuracy {spread(warmup_accs[name])} "
          f"(seeds: {', '.join(f'{a:.2%}' for a in warmup_accs[name])})")
gap, text = against_noise(warmup_accs["no warmup"], warmup_accs["warmup"])
print("warmup changes the mean accuracy by", text)
assert gap > 0, "warmup should help at this peak lr"
notebook.record("warmup_final_val_acc", {k: [round(a, 4) for a in v]
                                         for k, v in warmup_accs.items()})


# %% [markdown]
# ## 2. Warmup before ReduceLROnPlateau
#
# `ReduceLROnPlateau` decides from a metric, so its `step` needs one: `step(val_loss)`.
# `SequentialLR` and `ChainedScheduler` call `step()` without arguments. Since torch 2.13 (at
# least) they refuse it when built; torch 2.3 built it and failed at the first step without a
# metric. The cell shows your torch:

# %%
optimizer = sgd(LR)
try:
    scheduler = lr_scheduler.SequentialLR(optimizer, [
        lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=2),
        lr_scheduler.ReduceLROnPlateau(optimizer)], milestones=[2])
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    raise AssertionError("SequentialLR should not run ReduceLROnPlateau")
except (ValueError, TypeError) as error:
    print(f"{type(error).__name__}:", error)

# %% [markdown]
# The working pattern keeps two schedulers on one optimizer, each stepped at its own cadence: the
# warmup after every batch of the first epoch (it ends at the lr you chose), then the plateau
# scheduler once per epoch on the validation loss. The plateau scheduler sees metrics only once
# the warmup is over, so the warmup's rising lr never counts as a bad epoch. Checked below: the
# warmup follows `LinearLR`'s formula, and then every epoch's lr is what
# `plateau_replay.replay_plateau` (notebook 03's rule, tested against torch) gives for these
# validation losses, starting from `LR`. To save such a run, save both schedulers' states.

# %%
model = new_lenet()
optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
warmup = lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=steps_per_epoch)
plateau = lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0)
epoch_lrs, val_losses, warmup_lrs = [], [], []
for epoch in range(EPOCHS + 1):
    epoch_lrs.append(optimizer.param_groups[0]["lr"])
    # 1. one epoch; the warmup steps after each optimizer step, in the first epoch only
    _, _, lrs = training.train_one_epoch(model, train_loader, optimizer,
                                         batch_scheduler=warmup if epoch == 0 else None)
    warmup_lrs += lrs if epoch == 0 else []
    # 2. validation, then the plateau scheduler on its metric
    val_losses.append(training.evaluate(model, val_loader)[0])
    plateau.step(val_losses[-1])
print("lr of the warmup's steps:", [round(lr, 4) for lr in warmup_lrs[:4]], "...",
      round(warmup_lrs[-1], 4))
print("lr of each epoch:        ", [round(lr, 5) for lr in epoch_lrs])
print("validation loss:         ", [round(loss, 4) for loss in val_losses])
for t, lr in enumerate(warmup_lrs):
    assert math.isclose(lr, LR * (0.1 + 0.9 * t / steps_per_epoch), rel_tol=1e-9)
replay = plateau_replay.replay_plateau(val_losses, lr=LR, factor=0.5, patience=0)
assert all(math.isclose(step.lr_after, lr, rel_tol=1e-9)
           for step, lr in zip(replay, epoch_lrs[1:]))
print(f"warmup: as LinearLR; then {len(replay.reductions)} reduction(s), as the replay says")

# %% [markdown]
# ## 3. Restarts and cycles
#
# ### `CosineAnnealingWarmRestarts`
#
# A cosine from the lr you chose down to `eta_min` over `T_0` epochs, then a restart at the top;
# with `T_mult=2` each cycle is twice as long as the one before. To move after every batch, its
# `step` takes a fractional epoch: after batch i (from 0) of epoch e, `e + (i + 1) /
# steps_per_epoch` epochs are done. That is the schedule of stepping it per batch with `T_0`
# counted in batches:

# %%
RESTART_EPOCHS, ITERS = 14, 10                    # a preview: 14 epochs of 10 batches
optimizer = sgd(0.1)
restarts = lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=2, T_mult=2)
fractional = []
for epoch in range(RESTART_EPOCHS):
    for i in range(ITERS):
        fractional.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        restarts.step(epoch + (i + 1) / ITERS)    # epochs done so far, as a fraction
in_batches = schedulers.lr_trace(
    lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2 * ITERS, T_mult=2),
    epochs=RESTART_EPOCHS, lr=0.1, steps_per_epoch=ITERS, step_per="batch")
assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(fractional, in_batches))
restart_at = [s / ITERS for s in range(1, len(fractional)) if fractional[s] > fractional[s - 1]]
print("restarts at epochs:", restart_at)
assert restart_at == [2.0, 6.0]                  # cycles of 2, then 4, then 8 epochs

# %% [markdown]
# ### `CyclicLR`
#
# `CyclicLR` goes up and down between `base_lr` and `max_lr`, `step_size_up` batches each way.
# Its `mode` decides the height of later cycles: `"triangular"` keeps it, `"triangular2"` halves
# it every cycle, `"exp_range"` multiplies the lr's excursion by `gamma` at every step. With an
# optimizer that has momentum it also cycles the momentum, the other way round: high momentum when
# the lr is low (`cycle_momentum=True`, between `base_momentum=0.8` and `max_momentum=0.9`).

# %%
def cyclic(mode, **kwargs):
    return lambda opt: lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=10,
                                             mode=mode, **kwargs)


cycles = {mode: schedulers.lr_trace(cyclic(mode, **kw), epochs=6, lr=0.1, steps_per_epoch=10,
                                    step_per="batch")
          for mode, kw in (("triangular", {}), ("triangular2", {}),
                           ("exp_range", {"gamma": 0.99}))}
optimizer = sgd(0.1)
scheduler = cyclic("triangular")(optimizer)
momenta = []
for _ in range(60):
    momenta.append(optimizer.param_groups[0]["momentum"])
    optimizer.step()
    scheduler.step()
# the momentum mirrors the lr: where the lr is a fraction x of the way up, momentum is x down
for lr, momentum in zip(cycles["triangular"], momenta):
    x = (lr - 0.01) / (0.1 - 0.01)
    assert math.isclose(momentum, 0.9 - x * (0.9 - 0.8), rel_tol=1e-9)
assert max(cycles["triangular2"][40:]) < max(cycles["triangular"][40:]) / 3   # third cycle
plotting.plot_schedules({
    "CosineAnnealingWarmRestarts\n(T_0=2, T_mult=2)": ([s / ITERS for s in range(140)],
                                                       fractional),
    **{f"CyclicLR {mode}": ([s / 10 for s in range(60)], lrs) for mode, lrs in cycles.items()}},
    ncols=4, xlabel="epoch (10 batches each)", title="Restarts and cycles, stepped per batch")
plt.show()

# %% [markdown]
# ### Trained against one cosine
#
# Same LeNet and budget, stepped per batch: one cosine over the run, warm restarts every epoch,
# `CyclicLR` `"triangular2"` with a half-epoch rise. One seed each: ranking needs more (Exercise 3).

# %%
schedules = {
    "one cosine": lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps),
    "warm restarts": lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=steps_per_epoch),
    "cyclic": lambda opt: lr_scheduler.CyclicLR(opt, base_lr=LR / 10, max_lr=LR,
                                                step_size_up=max(1, steps_per_epoch // 2),
                                                mode="triangular2"),
}
sgd_at_lr = lambda params: torch.optim.SGD(params, lr=LR, momentum=0.9)  # noqa: E731
cycle_histories = {name: train_run(SEED, sgd_at_lr, make) for name, make in schedules.items()}
for name, history in cycle_histories.items():
    print(f"{name:>13}: final validation accuracy {history.val_acc[-1]:.2%}, "
          f"lr of the last step {history.batch_lrs[-1]:.2e}")
notebook.record("cycles_final_val_acc", {k: round(h.val_acc[-1], 4)
                                         for k, h in cycle_histories.items()})

# %% [markdown]
# ## 4. Resuming any scheduler
#
# A run interrupted (a crash, a time limit) and resumed should be the run you would have had.
# `checkpoint.save_checkpoint` writes model, optimizer, scheduler, history and RNG states;
# `load_checkpoint` puts them back. A real run, warmup then cosine per batch, interrupted after
# one epoch, loaded into objects built with another seed (all must come from the file), finished:

# %%
def warmup_cosine_run(seed):
    model = new_lenet(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    return model, optimizer, warmup_then_cosine(optimizer, steps_per_epoch, total_steps)


def go_on(model, optimizer, scheduler, epochs, history=None):
    return training.fit(model, train_loader, val_loader, optimizer, epochs=epochs,
                        scheduler=scheduler, step_per="batch", history=history, progress=False)


def without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history.records]


straight_run = warmup_cosine_run(SEED)
straight = go_on(*straight_run, EPOCHS)
first_half = warmup_cosine_run(SEED)
halfway = go_on(*first_half, 1)
path = Path(tempfile.mkdtemp()) / "run.pt"
checkpoint.save_checkpoint(path, model=first_half[0], optimizer=first_half[1],
                           scheduler=first_half[2], history=halfway)
resumed_run = warmup_cosine_run(seed=99)
state = checkpoint.load_checkpoint(path, model=resumed_run[0], optimizer=resumed_run[1],
                                   scheduler=resumed_run[2])
resumed = go_on(*resumed_run, EPOCHS - 1, history=state["history"])
same_weights = all(torch.equal(a, b) for a, b in zip(straight_run[0].state_dict().values(),
                                                     resumed_run[0].state_dict().values()))
print("history the same:", without_seconds(resumed) == without_seconds(straight),
      "| lr of every step the same:", resumed.batch_lrs == straight.batch_lrs,
      "| weights bit for bit the same:", same_weights)
if device.type == "cpu":                 # a GPU may add up in another order: close, not equal
    assert same_weights and without_seconds(resumed) == without_seconds(straight)
notebook.record("resumed_equals_uninterrupted", same_weights)

# %% [markdown]
# Now the same checkpoint loaded without the scheduler's state (`scheduler=None`: the model and
# optimizer come back, the scheduler is new). The new `SequentialLR` counts from 0 again, so its
# warmup runs again, in the middle of training, and multiplies the restored lr by its rising
# factor: the lr climbs far above the peak.

# %%
lost_run = warmup_cosine_run(seed=99)
state = checkpoint.load_checkpoint(path, model=lost_run[0], optimizer=lost_run[1])
lost = go_on(*lost_run, EPOCHS - 1, history=state["history"])
k = steps_per_epoch
print("lr of the first steps after resuming:", [round(lr, 4) for lr in lost.batch_lrs[k:k + 3]],
      "instead of", [round(lr, 4) for lr in straight.batch_lrs[k:k + 3]])
print(f"highest lr after resuming: {max(lost.batch_lrs[k:]) / LR:.1f}x the peak; final "
      f"validation accuracy {final_acc(straight):.2%} uninterrupted, {final_acc(lost):.2%} "
      "with the scheduler state lost")
assert max(lost.batch_lrs[k:]) > 2 * LR

# %% [markdown]
# ### Every scheduler of the series
#
# The same question for each scheduler, on a throwaway optimizer (only the lr differs, so no
# training is needed): 10 steps uninterrupted, against 5 steps, a save, and 5 more after
# resuming in four ways. **state saved**: build the scheduler as for a fresh start, then load
# the optimizer's and the scheduler's `state_dict()` (what `load_checkpoint` does). **state
# lost**: load the optimizer's state only. **last_epoch=k-1**: load the optimizer's state, then
# build the scheduler with `last_epoch=4` (its constructor adds the fifth step), an older way to
# resume. **no optimizer state**: `last_epoch=4` on a fresh optimizer. "same" means every
# remaining lr equal bit for bit; otherwise the first step that differs is shown.
# `tests/test_lesson06.py` checks the table for every interruption point, on torch 2.3 too.

# %%
def with_last_epoch(cls, **kwargs):
    return lambda opt, last_epoch=-1: cls(opt, last_epoch=last_epoch, **kwargs)


RESUMABLE = {
    "StepLR": with_last_epoch(lr_scheduler.StepLR, step_size=2, gamma=0.5),
    "MultiStepLR": with_last_epoch(lr_scheduler.MultiStepLR, milestones=[3, 6]),
    "ExponentialLR": with_last_epoch(lr_scheduler.ExponentialLR, gamma=0.8),
    "CosineAnnealingLR": with_last_epoch(lr_scheduler.CosineAnnealingLR, T_max=10),
    "LambdaLR": with_last_epoch(lr_scheduler.LambdaLR, lr_lambda=lambda t: 0.9**t),
    "LinearLR": with_last_epoch(lr_scheduler.LinearLR, start_factor=0.1, total_iters=7),
    "OneCycleLR": with_last_epoch(lr_scheduler.OneCycleLR, max_lr=0.1, total_steps=10),
    "CosineAnnealingWarmRestarts": with_last_epoch(lr_scheduler.CosineAnnealingWarmRestarts,
                                                   T_0=3, T_mult=2),
    "CyclicLR": with_last_epoch(lr_scheduler.CyclicLR, base_lr=0.01, max_lr=0.1,
                                step_size_up=3),
    "SWALR": with_last_epoch(swa_utils.SWALR, swa_lr=0.01, anneal_epochs=7),
    # no last_epoch argument (ChainedScheduler, ReduceLROnPlateau) or none of its own
    "SequentialLR": lambda opt, last_epoch=-1: warmup_then_cosine(opt, 3, 10),
    "ChainedScheduler": lambda opt, last_epoch=-1: warmup_times_cosine(opt, 3, 10),
    "ReduceLROnPlateau": lambda opt, last_epoch=-1: lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.5, patience=1),
}
NO_LAST_EPOCH = {"SequentialLR", "ChainedScheduler", "ReduceLROnPlateau"}
LOSSES = [1.0, 0.9, 0.95, 0.96, 0.85, 0.9, 0.91, 0.92, 0.8, 0.85]   # for ReduceLROnPlateau


def lrs_of_steps(optimizer, scheduler, start, stop):
    """The lr of steps start..stop-1 (a loop lr_trace cannot do: it never resumes)."""
    lrs = []
    for t in range(start, stop):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
            scheduler.step(LOSSES[t])
        else:
            scheduler.step()
    return lrs


def resume(name, how, k=5, n=10):
    """The lrs of steps k..n-1 after stopping at step k and resuming `how`."""
    make, optimizer = RESUMABLE[name], sgd(0.1)
    scheduler = make(optimizer)
    lrs_of_steps(optimizer, scheduler, 0, k)
    # deep copies: CyclicLR's load_state_dict takes entries out of the dict it is given
    saved_optimizer, saved_scheduler = copy.deepcopy([optimizer.state_dict(),
                                                      scheduler.state_dict()])
    optimizer = sgd(0.1)
    if how in ("state saved", "state lost"):
        scheduler = make(optimizer)             # built as for a fresh start, then loaded
    if how != "no optimizer state":
        optimizer.load_state_dict(saved_optimizer)
    if how == "state saved":
        scheduler.load_state_dict(saved_scheduler)
    if how in ("last_epoch=k-1", "no optimizer state"):
        scheduler = make(optimizer, last_epoch=k - 1)
    return lrs_of_steps(optimizer, scheduler, k, n)


def verdict(name, how, k=5, n=10):
    if how != "state saved" and how != "state lost" and name in NO_LAST_EPOCH:
        return "-"
    optimizer = sgd(0.1)
    uninterrupted = lrs_of_steps(optimizer, RESUMABLE[name](optimizer), 0, n)[k:]
    try:
        lrs = resume(name, how, k, n)
    except KeyError as error:
        return f"KeyError {error.args[0].split()[1]}"
    if lrs == uninterrupted:
        return "same"
    t = next(i for i, (a, b) in enumerate(zip(lrs, uninterrupted)) if a != b)
    got, want = f"{lrs[t]:.3g}", f"{uninterrupted[t]:.3g}"
    return f"step {k + t}: " + (f"{got} not {want}" if got != want else "last digits off")


HOWS = ("state saved", "state lost", "last_epoch=k-1", "no optimizer state")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")              # deprecation notes of older torch versions
    matrix = {name: {how: verdict(name, how) for how in HOWS} for name in RESUMABLE}
print(f"torch {torch.__version__}\n{'':27}" + "".join(f"  {how:>25}" for how in HOWS))
for name, row in matrix.items():
    print(f"{name:27}" + "".join(f"  {row[how]:>25}" for how in HOWS))
assert all(row["state saved"] == "same" for row in matrix.values())
notebook.record("resume_matrix", {how: sorted(name for name, row in matrix.items()
                                              if row[how] == "same") for how in HOWS})

# %% [markdown]
# What the table says (asserted below): with the state saved, every scheduler continues exactly.
# With it lost, only `ExponentialLR` does (it multiplies whatever lr the optimizer holds); the
# others restart their count, and a warmup multiplies the restored lr by its rising factor and
# **overshoots the peak**, as in the run above. `last_epoch=k-1`, given the optimizer's state,
# is fragile: at this k most schedulers continue on torch 2.13 and later, `SWALR` does not (it
# anneals from the lr it finds), and on 2.3 `ExponentialLR`, `LinearLR` and `CosineAnnealingLR`
# are off too; stopped right at a decay step, `StepLR` decays twice (below), as do `MultiStepLR`
# and `CosineAnnealingWarmRestarts` near a milestone or restart (`tests/test_lesson06.py` has
# every k). Without the optimizer's state, `last_epoch` raises `KeyError: 'initial_lr'`.

# %%
assert [name for name, row in matrix.items() if row["state lost"] == "same"] == ["ExponentialLR"]
assert max(resume("SequentialLR", "state lost")) > 2 * 0.1          # overshoots the peak
off_by_one = {name for name, row in matrix.items() if row["last_epoch=k-1"].startswith("step")}
if TORCH_VERSION >= (2, 13) or TORCH_VERSION == (2, 3):
    assert off_by_one == ({"SWALR"} if TORCH_VERSION >= (2, 13) else
                          {"SWALR", "ExponentialLR", "LinearLR", "CosineAnnealingLR"})
print("StepLR(step_size=2) stopped after 4 steps, resumed with last_epoch=3:",
      [round(lr, 4) for lr in resume("StepLR", "last_epoch=k-1", k=4)[:3]], "instead of",
      [round(lr, 4) for lr in resume("StepLR", "state saved", k=4)[:3]])

# %% [markdown]
# ### OneCycleLR when the run is extended
#
# `OneCycleLR` is sized to a number of steps (`total_steps`, or `epochs * steps_per_epoch`) and
# refuses to go beyond: extend a finished run by an epoch and the first step past the end raises.
# Building a longer one and loading the saved state does not help: the state holds
# `total_steps`, and loading it brings back the old length. So decide the length before the run
# starts; to train on after it ended, keep the final lr without a scheduler, or start a second
# cycle on purpose.

# %%
optimizer = sgd(0.1)
one_cycle = lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
lrs_of_steps(optimizer, one_cycle, 0, 10)           # the 10 steps it was built for: fine
try:
    lrs_of_steps(optimizer, one_cycle, 10, 11)      # one more
    raise AssertionError("OneCycleLR should refuse an 11th step")
except ValueError as error:
    print("ValueError:", error)
longer = lr_scheduler.OneCycleLR(sgd(0.1), max_lr=0.1, total_steps=20)
longer.load_state_dict(one_cycle.state_dict())
print("total_steps after loading the state into a 20-step OneCycleLR:", longer.total_steps)
assert longer.total_steps == 10

# %% [markdown]
# ## 5. Mixed precision: the step that `GradScaler` skips
#
# Training in float16 on a GPU (`torch.autocast`), `GradScaler` scales the loss up before
# `backward()` so that small gradients do not vanish, and divides them back before the step. When
# a gradient comes out infinite or NaN (the scale was too high: common in the first steps),
# `scaler.step(optimizer)` **skips** `optimizer.step()` and `scaler.update()` lowers the scale. A
# scheduler stepped right after moves on although the weights did not, and torch warns that it
# was stepped before the optimizer. On a CPU a gradient made infinite on purpose reproduces it; on
# a GPU the cell after also runs the real thing, float16 from a high starting scale.

# %%
AMP_DEVICE = device if device.type == "cuda" else torch.device("cpu")   # GradScaler's devices


def amp_run(batches, *, poison_first, only_after_real_step, dtype=None, init_scale=2.0**16):
    model = new_lenet().to(AMP_DEVICE)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    scaler = torch.amp.GradScaler(AMP_DEVICE.type, init_scale=init_scale)
    used, skipped = [], 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i, (X, y) in enumerate(batches):
            with torch.autocast(AMP_DEVICE.type, dtype=dtype, enabled=dtype is not None):
                loss = F.cross_entropy(model(X.to(AMP_DEVICE)), y.to(AMP_DEVICE))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if poison_first and i == 0:
                model.classifier.fc.bias.grad[0] = math.inf        # an overflow, on purpose
            scale, lr = scaler.get_scale(), optimizer.param_groups[0]["lr"]
            scaler.step(optimizer)          # skips optimizer.step() on inf/NaN gradients
            scaler.update()                 # ... and then lowers the scale
            stepped = scaler.get_scale() >= scale
            used, skipped = used + ([lr] if stepped else []), skipped + (not stepped)
            if stepped or not only_after_real_step:
                scheduler.step()
    order_warnings = [w for w in caught if "before `optimizer.step()`" in str(w.message)]
    return used, skipped, order_warnings


batches = [batch for _, batch in zip(range(6), train_loader)]
used, skipped, order_warnings = amp_run(batches, poison_first=True, only_after_real_step=False)
print(f"skipped steps: {skipped}; warning: {str(order_warnings[0].message)[:75]}...")
print("lr of the real optimizer steps:", [round(lr, 5) for lr in used])
assert skipped == 1 and len(order_warnings) == 1 and used[0] == LR * 0.9   # LR itself: never

# %% [markdown]
# The schedule lost its first value: the lr `LR` was never used. **The fix**: step the scheduler
# only after a real step; `scaler.update()` lowers the scale exactly when it skipped one.

# %%
used, skipped, order_warnings = amp_run(batches, poison_first=True, only_after_real_step=True)
print(f"skipped steps: {skipped}; warnings: {len(order_warnings)}; lr of the real optimizer "
      f"steps: {[round(lr, 5) for lr in used]}")
assert skipped == 1 and not order_warnings
assert used == schedulers.lr_trace(lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.9),
                                   epochs=len(used), lr=LR)
if device.type == "cuda":        # the real thing: float16, starting from a scale of 2**24
    for fixed in (False, True):
        used, skipped, order_warnings = amp_run(batches, poison_first=False, dtype=torch.float16,
                                                only_after_real_step=fixed, init_scale=2.0**24)
        print(f"float16, fix {fixed}: {skipped} skipped, {len(order_warnings)} warning(s)")

# %% [markdown]
# ## 6. Weight averaging (SWA) and stale BatchNorm statistics
#
# Stochastic weight averaging trains on at a constant or cyclic lr (`SWALR`) and averages the
# weights the model passes through (`swa_utils.AveragedModel`). It averages parameters, not
# BatchNorm's running statistics: each `update_parameters(model)` copies the model's, those of
# the *last* weights. Until `swa_utils.update_bn(train_loader, swa_model)` recomputes them in
# one pass over the training data, the averaged model normalizes with statistics not its own.
# Over `SEEDS` seeds: `EPOCHS` epochs of SGD, then `EPOCHS` more at `SWALR`'s constant lr.

# %%
swa_accs = {"last weights": [], "SWA, before update_bn": [], "SWA, after update_bn": []}
for seed in range(SEEDS):
    model = new_lenet(seed)
    swa_model = swa_utils.AveragedModel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    training.fit(model, train_loader, val_loader, optimizer, epochs=EPOCHS, progress=False)
    swa_scheduler = swa_utils.SWALR(optimizer, swa_lr=LR, anneal_epochs=1)
    for epoch in range(EPOCHS):
        training.train_one_epoch(model, train_loader, optimizer)
        swa_model.update_parameters(model)          # the running average of the weights
        swa_scheduler.step()
    bn1, last_bn1 = swa_model.module.features.bn1, model.features.bn1
    assert torch.equal(bn1.running_mean, last_bn1.running_mean)     # the last weights' statistics
    swa_accs["last weights"].append(training.evaluate(model, val_loader)[1])
    swa_accs["SWA, before update_bn"].append(training.evaluate(swa_model, val_loader)[1])
    swa_utils.update_bn(train_loader, swa_model, device=device)
    moved = (bn1.running_mean - last_bn1.running_mean).abs().max().item()
    swa_accs["SWA, after update_bn"].append(training.evaluate(swa_model, val_loader)[1])
for name, accs in swa_accs.items():
    print(f"{name:>22}: validation accuracy {spread(accs)}")
print(f"update_bn moved bn1.running_mean by up to {moved:.3g} (last seed) and changes the mean "
      "accuracy by", against_noise(
    swa_accs["SWA, before update_bn"], swa_accs["SWA, after update_bn"])[1])
assert moved > 0
notebook.record("swa_val_acc", {k: [round(a, 4) for a in v] for k, v in swa_accs.items()})

# %% [markdown]
# The averaged model's statistics were measurably not its own (`update_bn` moved them); what
# that cost in accuracy here is printed above, with its noise. The SWA paper recomputes them for
# this reason. Call `update_bn` before evaluating or saving an averaged model with BatchNorm.
#
# ## 7. Schedules with Adam and AdamW
#
# The second recipe of this series trains with Adam: why would an adaptive optimizer need a
# schedule? Adam and AdamW at lr 0.001, constant vs a warmup over the first tenth of the steps
# then a cosine to zero, on the same budget, over `SEEDS` seeds:

# %%
ADAM_LR = 1e-3
adam_warmup = max(1, total_steps // 10)
optimizers = {"Adam": lambda params: torch.optim.Adam(params, lr=ADAM_LR),
              "AdamW": lambda params: torch.optim.AdamW(params, lr=ADAM_LR, weight_decay=0.01)}
adam_accs = {}
for name, make_optimizer in optimizers.items():
    for schedule in ("constant", "warmup + cosine"):
        make = None if schedule == "constant" else (
            lambda opt: warmup_then_cosine(opt, adam_warmup, total_steps))
        adam_accs[f"{name}, {schedule}"] = [final_acc(train_run(seed, make_optimizer, make))
                                            for seed in range(SEEDS)]
for name, accs in adam_accs.items():
    print(f"{name:>23}: final validation accuracy {spread(accs)}")
for name in optimizers:
    print(f"{name}: the schedule changes the mean accuracy by", against_noise(
        adam_accs[f"{name}, constant"], adam_accs[f"{name}, warmup + cosine"])[1])
notebook.record("adam_final_val_acc", {k: [round(a, 4) for a in v] for k, v in adam_accs.items()})

# %% [markdown]
# Adam scales each weight's step by its gradient's history, not by where training is: the lr
# still bounds the steps. What this network and budget show is printed above, with its noise.

# %% [markdown]
# ## Summary
#
# - `SequentialLR([LinearLR(...), main], milestones=[W])` hands over at exactly the peak lr; keep
#   the warmup's `total_iters` equal to the milestone. `ChainedScheduler` multiplies the factors:
#   another schedule, below the peak. At a high peak lr, warmup helped LeNet (section 1).
# - Warm up before `ReduceLROnPlateau` by hand: a warmup per batch, then the plateau scheduler per
#   epoch on the validation loss, on the same optimizer.
# - `CosineAnnealingWarmRestarts` takes fractional epochs; `CyclicLR` cycles the momentum too.
# - Resume with every `state_dict()`, the scheduler's included: bit for bit, for every scheduler.
#   Without it schedules restart and warmups overshoot; `last_epoch` is fragile and needs the
#   optimizer's state. OneCycleLR cannot be extended.
# - With `GradScaler`, step the scheduler only after a real optimizer step.
# - After SWA, call `update_bn`: the averaged model holds the last weights' BN statistics.
# - Adam with and without a schedule: section 7, with its noise.
#
# ## Exercises
#
# Each exercise has a check cell: replace `None` with your answer and run the cell.
#
# **1.** A warmup `LinearLR(start_factor=0.25, total_iters=4)` followed by a cosine through
# `SequentialLR(milestones=[4])`, peak lr 0.2. What lr does step 2 (the third step, counting from
# 0) train with? Work it out from the formula, then check.

# %%
answer_1 = None
notebook.check_answer(answer_1, schedulers.lr_trace(
    lambda opt: warmup_then_cosine(opt, 4, 12, start_factor=0.25), epochs=12, lr=0.2)[2])

# %% [markdown]
# **2.** `CosineAnnealingWarmRestarts(T_0=3, T_mult=2)`, stepped once per epoch. After which epoch
# does the third restart come (the lr jumps back up for the third time)?

# %%
answer_2 = None
trace = schedulers.lr_trace(lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(
    opt, T_0=3, T_mult=2), epochs=50, lr=0.1)
notebook.check_answer(answer_2, [e for e in range(1, 50) if trace[e] > trace[e - 1]][2])

# %% [markdown]
# **3.** (Open.) Section 3 trained each schedule once. Rank them over `SEEDS` seeds, as section 1
# does for warmup: is any difference beyond the seed-to-seed spread?
#
# ## References
#
# - PyTorch documentation: `torch.optim.lr_scheduler`, `torch.amp`, `torch.optim.swa_utils`:
#   https://docs.pytorch.org/docs/stable/optim.html
# - PyTorch issues #185872 (a milestone of 0), #68978 (warmup with `ReduceLROnPlateau`), #44511
#   (`GradScaler` and the step-order warning), #160626 (`KeyError: 'initial_lr'`);
#   deepseek-ai/DeepSpec #32 (a warmup wrapper overshooting the peak); Lightning-AI/
#   pytorch-lightning #14866 (SWA without `update_bn`).
# - P. Goyal et al., "Accurate, Large Minibatch SGD", arXiv:1706.02677, 2017 (gradual warmup).
# - I. Loshchilov, F. Hutter, "SGDR: SGD with Warm Restarts", ICLR 2017, arXiv:1608.03983.
# - L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", arXiv:1506.01186.
# - P. Micikevicius et al., "Mixed Precision Training", ICLR 2018, arXiv:1710.03740.
# - P. Izmailov et al., "Averaging Weights Leads to Wider Optima ...", arXiv:1803.05407 (SWA).
# - I. Loshchilov, F. Hutter, "Decoupled Weight Decay Regularization", arXiv:1711.05101 (AdamW).
# - L. Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", arXiv:1908.03265.
# - H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset ...", arXiv:1708.07747.
