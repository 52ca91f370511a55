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
# # 05 · Dropout: an ensemble in one network, measured
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lr-course/lr-schedulers-regularization/blob/main/notebooks/05_dropout.ipynb)
#
# **What you will learn**
#
# - where dropout comes from (averaging many networks), and why eval mode's single pass stands
#   in for that average;
# - what `Dropout` and `Dropout2d` compute, the `F.dropout` trap, and `eval()` and `no_grad()`
#   as two independent switches;
# - none / BatchNorm / Dropout / both on the chapter's LeNet over seeds, with the
#   train-validation gap and an honest noise scale;
# - dropout as an ensemble: eval mode against the average of T sampled masks; MC dropout for
#   uncertainty (without the `model.train()` trap) and calibration;
# - the variance shift when Dropout feeds a BatchNorm, and what the other order still shifts;
# - the source's claims about features, quoted and measured on this network.
#
# The whole notebook runs on a CPU. The exhaustive checks behind section 2 are in
# `tests/test_lesson05.py`, those of the MC and calibration code in `tests/test_uncertainty.py`;
# here each claim gets one illustrative check.

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
import contextlib
import copy
import inspect
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import data, models, notebook, plotting, training, uncertainty
from course_utils.widgets import regularization

device = notebook.report_device()   # a GPU when there is one

# %% tags=["parameters"]
FAST = notebook.fast_mode()                   # COURSE_FAST=1: small defaults for tests
EPOCHS = 2 if FAST else 10                    # epochs of every training run
NUM_SEEDS = 2 if FAST else 3                  # seeds per network, to see the spread
TRAIN_SIZE = 1500 if FAST else 10000          # training images
VAL_SIZE = 500 if FAST else 2000              # images held out for validation
TEST_SIZE = 1000 if FAST else 5000            # test images (None: all 10,000)
MC_SAMPLES = 100 if FAST else 200             # the most dropout masks averaged (section 4)
SHIFT_SAMPLES = 20 if FAST else 50            # masks per image on shifted images (section 5)
BATCH_SIZE = 64
LR = 0.05                                     # SGD with momentum 0.9, constant lr
DROPOUT = 0.5                                 # the p of every Dropout layer
SEED = 0                                      # the first seed; the others are SEED+1, ...

# %% [markdown]
# Full mode trains 4 networks × 3 seeds for 10 epochs on 10,000 images **once**; every later
# section reuses them. Fast mode (`COURSE_FAST=1`) is a smoke test, its numbers not evidence.
# On a CPU the runs use one thread: it fixes the rounding, so reruns match however busy the
# machine is (this small network loses little; on a GPU this does nothing).

# %%
if device.type == "cpu":
    torch.set_num_threads(1)
train_full, test = data.load_fashion_mnist()
train, val = data.lesson_split(train_full, val_size=VAL_SIZE, train_size=TRAIN_SIZE, seed=SEED)
if TEST_SIZE is not None:
    test = data.stratified_subset(test, TEST_SIZE, seed=SEED)
# Training accuracy on as many training images as there are validation images: same noise.
train_sample_loader = data.TensorLoader(data.stratified_subset(train, len(val), seed=SEED), 1000,
                                        device=device)
val_loader = data.TensorLoader(val, 1000, device=device)
test_loader = data.TensorLoader(test, 1000, device=device)
seeds = [SEED + i for i in range(NUM_SEEDS)]
print(f"{len(train):,} training, {len(val):,} validation, {len(test):,} test images; "
      f"seeds {seeds}; threads {torch.get_num_threads()}")

# %% [markdown]
# ## 1. Where dropout comes from: averaging many networks
#
# The source's Dropout paragraph starts from Bayesian model averaging, in the words of
# Srivastava et al. (2014), which it quotes: "With unlimited computation, the best way to
# “regularize” a fixed-sized model is to average the predictions of all possible settings of the
# parameters, weighting each setting by its posterior probability given the training data."
#
# Dropout is a cheap stand-in: each training step zeroes each unit with probability p and so
# trains one **thinned network**, one of 2ⁿ for n droppable units, all sharing their weights
# (2¹⁰²⁴ here: the chapter's Dropout acts on 1,024 values). Averaging them all is impossible;
# eval mode runs the whole network once instead. Section 4 measures how close that comes.
#
# ## 2. Dropout by hand
#
# `nn.Dropout(p)` zeroes each value with probability p in train mode and multiplies the
# survivors by 1/(1 − p) ("inverted" dropout), so every output keeps its input's expected value;
# in eval mode it is the identity. On a constant input the train-mode output has exactly two
# values (the statistics for many p and inputs are checked in `tests/test_lesson05.py`):

# %% tags=["nbval-check-output"]
ones = torch.ones(1000)
for p in (0.25, 0.5, 0.8):
    train_values = sorted(round(v, 4) for v in nn.Dropout(p)(ones).unique().tolist())
    print(f"p = {p}: train mode {train_values}, eval mode "
          f"{nn.Dropout(p).eval()(ones).unique().tolist()}")

# %% [markdown]
# **`Dropout` or `Dropout2d` on feature maps.** On (N, C, H, W) maps `nn.Dropout` zeroes single
# values, `nn.Dropout2d` whole channels. Tompson et al. (2015) argue that when neighbouring
# values of a feature map are strongly correlated, zeroing single ones regularizes little (a zero
# is filled in from its neighbours), while a whole dropped map cannot be.

# %%
def whole(values):
    """The fraction of (sample, channel) maps that are all 0 or all 2.0 = 1/(1 - 0.5)."""
    return ((values == 0).all(dim=2) | (values == 2.0).all(dim=2)).double().mean().item()


torch.manual_seed(SEED)
maps = torch.ones(64, 16, 8, 8)                          # (N, C, H, W)
pixelwise = nn.Dropout(0.5)(maps).flatten(2)             # (N, C, H·W)
channelwise = nn.Dropout2d(0.5)(maps).flatten(2)
print(f"maps that are all zero or all 2.0: Dropout {whole(pixelwise):.3f}, "
      f"Dropout2d {whole(channelwise):.3f}")
assert whole(channelwise) == 1.0 and whole(pixelwise) == 0.0

# %% [markdown]
# **The `F.dropout` trap.** `nn.Dropout` reads its module's `training` flag. The function
# `F.dropout` cannot: its `training` argument defaults to `True`, so a `forward` that calls
# `F.dropout(x, 0.5)` keeps dropping after `model.eval()`. Pass `training=self.training`.

# %%
assert inspect.signature(F.dropout).parameters["training"].default is True
X = torch.randn(4, 20)
flag = nn.Linear(20, 20).eval().training         # what self.training is after model.eval()
trap, right = F.dropout(X, p=0.5), F.dropout(X, p=0.5, training=flag)
print(f"after eval(): F.dropout(X, 0.5) is the identity: {torch.equal(trap, X)}; "
      f"F.dropout(X, 0.5, training=self.training): {torch.equal(right, X)}")
assert not torch.equal(trap, X) and torch.equal(right, X)

# %% [markdown]
# **`model.eval()` and `torch.no_grad()` are two independent switches.** `eval()` sets
# `training = False` in every submodule (BatchNorm uses its running statistics, Dropout is the
# identity); `no_grad()` stops autograd from recording a graph. Neither does the other's job:

# %% tags=["nbval-check-output"]
torch.manual_seed(SEED)
tiny = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
X = torch.randn(8, 4)
print(f"{'mode':6} {'no_grad':8} {'BN stats updated':17} {'Dropout drops':14} {'graph recorded'}")
for train_mode in (True, False):
    for no_grad in (False, True):
        tiny.train(train_mode)
        tracked = tiny[1].num_batches_tracked.item()
        with torch.set_grad_enabled(not no_grad):
            first, second = tiny(X), tiny(X)
        updated = tiny[1].num_batches_tracked.item() > tracked
        print(f"{'train' if train_mode else 'eval':6} {no_grad!s:8} {updated!s:17} "
              f"{not torch.equal(first, second)!s:14} {first.requires_grad}")

# %% [markdown]
# `no_grad()` without `eval()` is the dangerous row: the numbers are not the network's (Dropout
# drops, BatchNorm uses each batch's statistics) and the running statistics move. `eval()`
# without `no_grad()` gives the right numbers and only wastes memory on a graph. The habit
# (and what `training.evaluate` does): `model.eval()`, then `with torch.no_grad():`, then
# `model.train()` before training again.
#
# ## 3. Four networks, trained once
#
# The chapter's `LeNet(batch_norm=..., dropout=p)` has two switches: BatchNorm between each
# convolution and its ReLU, and a Dropout at the end of the body, after the last BatchNorm,
# acting on the 1,024 values the classifier reads. The four combinations, each with every seed;
# for one seed all four see the same batches in the same order and start from the same
# convolution and linear weights (BatchNorm and Dropout draw no random numbers when built).

# %%
NETWORKS = {"no regularization": {}, "BN": {"batch_norm": True}, "Dropout": {"dropout": DROPOUT},
            "BN + Dropout": {"batch_norm": True, "dropout": DROPOUT}}


def train_network(settings, seed):
    """A fresh LeNet(**settings), seeded with `seed`, trained for EPOCHS epochs, in eval mode."""
    training.set_seed(seed)
    model = models.LeNet(**settings).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    train_loader = data.TensorLoader(train, BATCH_SIZE, shuffle=True, device=device, seed=seed)
    history = training.fit(model, train_loader, val_loader, optimizer, epochs=EPOCHS)
    assert history.stopped is None, history.stopped
    return {"model": model.eval(), "history": history}


starts = [training.set_seed(SEED) or models.LeNet(**s).state_dict() for s in NETWORKS.values()]
assert all(torch.equal(start[k], starts[0][k]) for start in starts for k in starts[0])  # one start
start_time = time.perf_counter()
runs = {name: [train_network(settings, seed) for seed in seeds]
        for name, settings in NETWORKS.items()}
print(f"{len(NETWORKS) * len(seeds)} networks trained in {time.perf_counter() - start_time:.0f} s")

# %% [markdown]
# The table measures, after the last epoch and in eval mode: accuracy on a sample of the
# training images, on the validation images, their **gap** (how much better the network fits its
# own training images), and the test accuracy; mean ± standard deviation over the seeds.

# %%
def mean_and_spread(values):
    values = torch.tensor(values, dtype=torch.float64)
    return values.mean().item(), (values.std().item() if len(values) > 1 else 0.0)


def percent(values):
    mean, spread = mean_and_spread(values)
    return f"{100 * mean:6.2f} ± {100 * spread:4.2f}"


per_run = {name: [] for name in runs}
for name, results in runs.items():
    for run in results:
        row = {key: training.evaluate(run["model"], loader)[1] for key, loader in
               (("train_acc", train_sample_loader), ("val_acc", val_loader),
                ("test_acc", test_loader))}
        per_run[name].append({**row, "gap": row["train_acc"] - row["val_acc"]})


def column(name, key):
    return [row[key] for row in per_run[name]]


KEYS = ("train_acc", "val_acc", "gap", "test_acc")
print(f"{'network':18} " + " ".join(f"{key:>15}" for key in KEYS) + "   (percent)")
for name in runs:
    print(f"{name:18} " + " ".join(f"{percent(column(name, key)):>15}" for key in KEYS))
notebook.record("test_acc", {name: round(mean_and_spread(column(name, "test_acc"))[0], 4)
                             for name in runs})
notebook.record("train_val_gap", {name: round(mean_and_spread(column(name, "gap"))[0], 4)
                                  for name in runs})
assert all(min(column(name, "test_acc")) > 0.5 for name in runs)   # far above chance, 10 %

# %% [markdown]
# **How large is the noise?** A seed pairs the runs, so we compare seed by seed. An accuracy
# measured on n images has a standard error √(a(1 − a)/n); a *difference* of two independent
# such accuracies has √2 times that, and the gap difference (four accuracies) twice that. The
# noise of a comparison is the larger of this and the spread of the per-seed differences; a
# difference counts only beyond 2 × noise.

# %%
def compare(values, reference_values, *, accuracies=0, images=1, level=None):
    """Paired over seeds: mean difference, noise and verdict. The noise is the spread of the
    per-seed differences, or, if larger, the standard error of a sum of `accuracies`
    independent accuracies (each about `level`, default: the reference's) on `images` images."""
    difference, spread = mean_and_spread([a - b for a, b in zip(values, reference_values)])
    level = mean_and_spread(reference_values)[0] if level is None else level
    sampling = math.sqrt(accuracies * level * (1 - level) / images) if 0 < level < 1 else 0.0
    noise = max(spread, sampling)
    verdict = ("within noise" if abs(difference) < 2 * noise else
               "higher" if difference > 0 else "lower")
    return difference, noise, verdict


verdicts, val_level = {}, mean_and_spread(column("no regularization", "val_acc"))[0]
print(f"{'vs no regularization':20} {'test acc (points)':>34} {'gap (points)':>34}")
for name in ("BN", "Dropout", "BN + Dropout"):
    cells = []
    for key, accuracies, images, level in (("test_acc", 2, len(test), None),
                                           ("gap", 4, len(val), val_level)):
        difference, noise, verdict = compare(column(name, key), column("no regularization", key),
                                             accuracies=accuracies, images=images, level=level)
        verdicts[f"{name}: {key}"] = verdict
        cells.append(f"{100 * difference:+6.2f} ± {100 * noise:4.2f} {verdict:>14}")
    print(f"{name:20} " + " ".join(f"{cell:>34}" for cell in cells))
notebook.record("verdicts", verdicts)

# %% [markdown]
# Read the gap column for what a regularizer against overfitting should do, and the test column
# for whether it also helps on new images: one can come without the other, and "within noise"
# means "no clear difference at this budget", not a ranking. In fast mode both read mostly
# "within noise".
#
# ## 4. Dropout as an ensemble, measured
#
# Each mask picks one thinned member; the ensemble's prediction is the average of its members',
# estimated from T sampled masks: **MC averaging**. Eval mode instead keeps every unit (the
# *weight scaling rule*; inverted dropout applied the scale in training). Srivastava et al.
# (2014, section 7.5) compare the two on MNIST; in our paraphrase, the MC average needs about 50
# sampled networks to match the test error of weight scaling.
#
# The chapter's Dropout comes right before the classifier, so all members share the body: we run
# it once per image and sample masks on the head only. With the same seed that gives exactly the
# whole network's samples:

# %%
def body_and_head(model):
    """(body, head): the layers before the Dropout, and the Dropout with the classifier."""
    return model.features[:-1], nn.Sequential(model.features.dropout, model.classifier)


def hidden_values(model, loader):
    """The body's output (N, 64, 4, 4) for every image of `loader`, in eval mode."""
    body, _ = body_and_head(model)
    with torch.no_grad():
        return torch.cat([body.eval()(X) for X, _ in loader])


model = runs["BN + Dropout"][0]["model"]
X_test, y_test = next(iter(test_loader))
torch.manual_seed(SEED)
whole = uncertainty.mc_probabilities(model, X_test[:64], samples=3)        # (3, 64, 10)
torch.manual_seed(SEED)
shared = uncertainty.mc_probabilities(body_and_head(model)[1],
                                      hidden_values(model, [(X_test[:64], None)]), samples=3)
print(f"whole network vs shared body: max difference {(whole - shared).abs().max():.1e}; the "
      f"Dropout acts on {model.classifier.fc.in_features:,} values per image")
assert torch.allclose(whole, shared, atol=1e-5)

# %% [markdown]
# Two ways to average members' probabilities: the **arithmetic mean**, and the **geometric
# mean** (renormalized), the softmax of the members' mean logits. For a Dropout right before
# one linear layer, the mean logits over all masks are exactly eval mode's logits
# (E[mask / (1 − p)] = 1, and the layer is linear): eval mode *is* the geometric mean of all
# members here, and only the arithmetic mean is approximated. Each curve: the mean over the seeds
# of the Dropout network, on the test images, T from 1 to `MC_SAMPLES`.

# %%
def eval_and_mc(model, loader, samples):
    """Eval-mode probabilities (N, C), those of `samples` masks (T, N, C), the labels (N,)."""
    hidden, labels = hidden_values(model, loader), torch.cat([y for _, y in loader]).cpu()
    _, head = body_and_head(model)
    with torch.no_grad():
        eval_probabilities = head.eval()(hidden).softmax(dim=1).cpu()
    return eval_probabilities, uncertainty.mc_probabilities(head, hidden, samples), labels


def ensemble_curves(model, loader, Ts):
    """Agreement with eval mode, accuracy, NLL and ECE of eval mode and of the T-mask means."""
    eval_probabilities, samples, labels = eval_and_mc(model, loader, max(Ts))
    arithmetic = samples.cumsum(dim=0)                                   # (T, N, C)
    geometric = samples.clamp_min(torch.finfo(samples.dtype).tiny).log().cumsum(dim=0)
    curves = {"eval": eval_probabilities}
    for T in Ts:
        curves["arithmetic", T] = arithmetic[T - 1] / T
        curves["geometric", T] = (geometric[T - 1] / T).softmax(dim=1)
    agree = eval_probabilities.argmax(1)
    return {**{key: {"agreement": (p.argmax(1) == agree).double().mean().item(),
                     "accuracy": (p.argmax(1) == labels).double().mean().item(),
                     "nll": F.nll_loss(p.clamp_min(1e-12).log(), labels).item(),
                     "ece": uncertainty.expected_calibration_error(p, labels)}
               for key, p in curves.items()},
            "probabilities": (eval_probabilities, curves["arithmetic", max(Ts)], labels)}


Ts = sorted({t for t in (1, 2, 5, 10, 20, 50, 100, 200) if t < MC_SAMPLES} | {MC_SAMPLES})
start_time = time.perf_counter()
ensembles = {name: [ensemble_curves(run["model"], test_loader, Ts) for run in runs[name]]
             for name in ("Dropout", "BN + Dropout")}
print(f"{len(Ts)} ensemble sizes, {MC_SAMPLES} masks, {len(test):,} test images: "
      f"{time.perf_counter() - start_time:.0f} s")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), constrained_layout=True)
for ax, metric, label in zip(axes, ("agreement", "accuracy", "nll"),
                             ("agreement with eval mode's class (fraction)",
                              "test accuracy (fraction)",
                              "test NLL (nats per image)")):
    for index, kind in enumerate(("arithmetic", "geometric")):
        ax.plot(Ts, [mean_and_spread([e[kind, T][metric] for e in ensembles["Dropout"]])[0]
                     for T in Ts], marker="o", label=f"{kind} mean of T masks",
                **plotting.style(index))
    ax.axhline(mean_and_spread([e["eval"][metric] for e in ensembles["Dropout"]])[0],
               label="eval mode (weight scaling)", **plotting.style(2))
    ax.set(xscale="log", xlabel="T, dropout masks averaged (log scale)", ylabel=label)
    ax.legend(fontsize=8)
fig.suptitle(f"Dropout network, mean of {len(seeds)} seeds: how many masks does the average "
             "need to match eval mode?")
plt.show()

# %%
def at(name, key, metric):
    return [e[key][metric] for e in ensembles[name]]


ensemble_record = {}
for name in ensembles:
    print(f"{name} (test set, {len(seeds)} seeds; MC = arithmetic mean of {MC_SAMPLES} masks)")
    for metric in ("accuracy", "nll", "ece"):
        mc, eval_mode = at(name, ("arithmetic", MC_SAMPLES), metric), at(name, "eval", metric)
        difference, noise, verdict = compare(mc, eval_mode, images=len(test),
                                             accuracies=2 if metric == "accuracy" else 0)
        means = [mean_and_spread(values)[0] for values in (eval_mode, mc)]
        print(f"  {metric:8}: eval {means[0]:.4f}, MC {means[1]:.4f}, MC - eval "
              f"{difference:+.4f} ± {noise:.4f}: {verdict}")
        ensemble_record[f"{name}: {metric}"] = {"eval": round(means[0], 4),
                                                "mc": round(means[1], 4), "verdict": verdict}
    one = mean_and_spread(at(name, ("arithmetic", 1), "agreement"))[0]
    geometric = mean_and_spread(at(name, ("geometric", MC_SAMPLES), "agreement"))[0]
    print(f"  one mask agrees with eval mode on {one:.1%} of the images; the geometric mean "
          f"of {MC_SAMPLES} masks on {geometric:.1%}")
notebook.record("ensemble", ensemble_record)

# %% [markdown]
# What to look for: T = 1 is a single thinned member (the curves' first points); as T grows both
# means approach eval mode, and the geometric one converges to it (the same prediction, in the
# limit). Whether the arithmetic mean of many masks ends up better or worse than eval mode, in
# accuracy, NLL or ECE, is the verdict printed above for this run.
#
# ## 5. MC dropout: uncertainty and calibration
#
# Gal and Ghahramani (2016) read the spread of the members as the network's *uncertainty*: keep
# dropout on at test time, predict with T masks, and use the average (and its entropy). With
# BatchNorm in the network, **do not call `model.train()` for this**: it also switches BatchNorm
# to batch statistics, so each prediction depends on its batchmates, and every call moves the
# running statistics. `uncertainty.mc_dropout(model)` turns on only the dropout layers (every
# subclass of `_DropoutNd`, so `Dropout2d` too) and restores every flag afterwards:

# %%
model = copy.deepcopy(runs["BN + Dropout"][0]["model"])
bn1 = model.features.bn1
running_mean = bn1.running_mean.clone()
with uncertainty.mc_dropout(model):
    print(f"inside: BN {bn1.training}, Dropout {model.features.dropout.training} (training flags)")
right = uncertainty.mc_probabilities(model, X_test, samples=20).mean(dim=0)
assert torch.equal(bn1.running_mean, running_mean) and not model.training
with torch.no_grad():
    model.train()                                        # the trap
    wrong = torch.stack([torch.cat([model(X_test[i:i + 8]).softmax(dim=1)   # batches of 8
                                    for i in range(0, len(X_test), 8)]) for _ in range(20)]).cpu()
    model.eval()
moved = (bn1.running_mean - running_mean).abs().max().item()
accuracy = {"mc_dropout": (right.argmax(1) == y_test.cpu()).double().mean().item(),
            "model.train()": (wrong.mean(0).argmax(1) == y_test.cpu()).double().mean().item()}
print(f"20 masks on {len(X_test)} test images in batches of 8: accuracy {accuracy}; "
      f"model.train() moved bn1's running mean by up to {moved:.3f}")
assert moved > 0
notebook.record("mc_dropout_vs_train_mode_acc", {k: round(v, 4) for k, v in accuracy.items()})

# %% [markdown]
# **Uncertainty on shifted images.** The test images as they are, rotated by 90°, inverted and
# noised. A useful uncertainty is higher where the network is more often wrong. Predictive
# entropy in nats (0: one class; ln 10 ≈ 2.30: uniform) of eval mode and of the average of
# `SHIFT_SAMPLES` masks, for the two networks with dropout over the seeds:

# %%
noise_generator = torch.Generator().manual_seed(SEED)
noise = torch.randn(test.images.shape, generator=noise_generator) * 80
SHIFTS = {"clean": test.images, "rotated 90°": test.images.rot90(1, dims=(1, 2)),
          "inverted": 255 - test.images,
          "noise (σ = 80 of 255)": (test.images.float() + noise).clamp(0, 255).to(torch.uint8)}
shifted_loaders = {name: data.TensorLoader(data.Split(images, test.labels, test.classes,
                                                      test.mean, test.std), 1000, device=device)
                   for name, images in SHIFTS.items()}
first_images = torch.stack([images[0] for images in SHIFTS.values()])       # (4, 28, 28)
plotting.show_images(data.Split(first_images, test.labels[:1].repeat(4), test.classes, 0, 1),
                     count=4, ncols=4, title="One test image: " + ", ".join(SHIFTS))
plt.show()

shift_table = {}
for name in ("Dropout", "BN + Dropout"):
    for shift, loader in shifted_loaders.items():
        rows = []
        for run in runs[name]:
            eval_p, samples, labels = eval_and_mc(run["model"], loader, SHIFT_SAMPLES)
            mc_p = samples.mean(dim=0)                                     # (N, C)
            rows.append({"accuracy": (mc_p.argmax(1) == labels).double().mean().item(),
                         "entropy, eval": uncertainty.predictive_entropy(eval_p).mean().item(),
                         "entropy, MC": uncertainty.predictive_entropy(mc_p).mean().item()})
        shift_table[name, shift] = {key: [row[key] for row in rows] for key in rows[0]}
print(f"{'network':13} {'test images':22} {'MC accuracy %':>15} {'entropy, eval':>15} "
      f"{'entropy, MC':>15}   (uniform over 10 classes: ln 10 = {math.log(10):.3f})")
for (name, shift), row in shift_table.items():
    print(f"{name:13} {shift:22} {percent(row['accuracy']):>15} " +
          " ".join(f"{mean_and_spread(row[k])[0]:7.3f} ± {mean_and_spread(row[k])[1]:.3f}"
                   for k in ("entropy, eval", "entropy, MC")))

# %%
entropy_verdicts = {}
for name in ("Dropout", "BN + Dropout"):
    for shift in list(SHIFTS)[1:]:
        clean, shifted = shift_table[name, "clean"], shift_table[name, shift]
        rise = {k: [s - c for s, c in zip(shifted[k], clean[k])]         # per seed
                for k in ("entropy, eval", "entropy, MC")}
        vs_clean = compare(shifted["entropy, MC"], clean["entropy, MC"])[2]
        difference, noise, vs_eval = compare(rise["entropy, MC"], rise["entropy, eval"])
        entropy_verdicts[f"{name}, {shift}"] = {"MC vs clean": vs_clean, "rise vs eval": vs_eval}
        print(f"{name:13} {shift:22} MC entropy vs clean: {vs_clean:12}; its rise minus eval "
              f"mode's: {difference:+.3f} ± {noise:.3f} ({vs_eval})")
notebook.record("entropy", {f"{name}, {shift}": round(mean_and_spread(row["entropy, MC"])[0], 4)
                            for (name, shift), row in shift_table.items()})
notebook.record("entropy_verdicts", entropy_verdicts)

# %% [markdown]
# The first verdict says whether MC dropout's entropy rises on that shift; the second, whether
# it rises more than eval mode's entropy does anyway. Read it with the accuracy column: an
# uncertainty that stays low where the accuracy collapses is no warning.
#
# **Calibration.** A network is calibrated when, among the images it predicts with confidence
# 0.8, about 80 % are right. The expected calibration error (Guo et al. 2017) groups the test
# predictions into 15 equal-width confidence bins and averages |accuracy − confidence| over the
# bins, weighted by their share of images (`uncertainty.expected_calibration_error`, checked on
# hand-made cases in `tests/test_uncertainty.py`). The networks without dropout in eval mode for
# reference, then eval mode and MC for those with dropout (section 4's "ece" verdict says
# whether MC lowers it beyond the noise):

# %%
calibration = {name: [uncertainty.expected_calibration_error(*eval_and_mc(
                   run["model"], test_loader, 1)[::2]) for run in runs[name]]   # eval p, labels
               for name in ("no regularization", "BN")}
for name in ("Dropout", "BN + Dropout"):
    calibration[f"{name}, eval"] = at(name, "eval", "ece")
    calibration[f"{name}, MC"] = at(name, ("arithmetic", MC_SAMPLES), "ece")
for name, values in calibration.items():
    print(f"{name:20} ECE {percent(values)} %")
notebook.record("ece", {name: round(mean_and_spread(v)[0], 4) for name, v in calibration.items()})

eval_p, mc_p, labels = ensembles["Dropout"][0]["probabilities"]          # from section 4
fig, ax = plt.subplots(figsize=(5.5, 4.5), constrained_layout=True)
ax.plot([0, 1], [0, 1], color="gray", linewidth=1, label="perfectly calibrated")
for index, (name, probabilities) in enumerate((("eval mode", eval_p),
                                               (f"MC, {MC_SAMPLES} masks", mc_p))):
    count, accuracy, confidence = uncertainty.calibration_bins(probabilities, labels)
    ece = uncertainty.expected_calibration_error(probabilities, labels)
    ax.plot(confidence[count > 0], accuracy[count > 0], marker="o",
            label=f"{name}: ECE {ece:.3f}", **plotting.style(index))
ax.set(xlabel="confidence (top-class probability), 15 bins", ylabel="accuracy in the bin",
       title=f"Dropout network, seed {SEED}: below the diagonal = overconfident")
ax.legend(fontsize=8, title="accuracy and confidence as fractions", title_fontsize=8)
plt.show()

# %% [markdown]
# ## 6. Dropout before BatchNorm: the variance shift
#
# In train mode Dropout's output has a larger second moment than in eval mode (E[y²] =
# E[x²]/(1 − p)). A BatchNorm *after* it learns its running variance from the train-mode signal
# and then, in eval mode, divides the smaller signal by it (Li et al. 2019, "variance shift").
# The other order spares that BatchNorm, but not what follows the Dropout. Both orders, on
# x ~ N(0, 1), p = 0.5, with a BatchNorm1d without γ and β (the exact numbers for every p are
# checked in `tests/test_lesson05.py`):

# %%
def block_stds(dropout_first, p=0.5, seed=SEED):
    """(BN running_var, block output std in train mode, in eval mode) after 200 batches."""
    dropout, bn = nn.Dropout(p), nn.BatchNorm1d(64, affine=False, momentum=None)
    block = nn.Sequential(dropout, bn) if dropout_first else nn.Sequential(bn, dropout)
    torch.manual_seed(seed)
    with torch.no_grad():
        for _ in range(200):
            train_output = block.train()(torch.randn(256, 64))         # (256, 64)
        eval_output = block.eval()(torch.randn(4096, 64))
    return bn.running_var.mean().item(), train_output.std().item(), eval_output.std().item()


print(f"{'order':22} {'BN running_var':>15} {'output std, train':>18} {'output std, eval':>17}")
orders = {name: block_stds(first) for first, name in ((True, "Dropout -> BatchNorm"),
                                                      (False, "BatchNorm -> Dropout"))}
for name, (running_var, train_std, eval_std) in orders.items():
    print(f"{name:22} {running_var:>15.3f} {train_std:>18.3f} {eval_std:>17.3f}")
print(f"theory, p = 0.5: 1/(1 - p) = {1 / 0.5:.3f}, √(1 - p) = {0.5 ** 0.5:.3f}, "
      f"√(1/(1 - p)) = {2 ** 0.5:.3f}")
assert abs(orders["Dropout -> BatchNorm"][2] - math.sqrt(0.5)) < 0.02
assert abs(orders["BatchNorm -> Dropout"][1] - math.sqrt(2)) < 0.03
notebook.record("variance_shift_blocks", {k: [round(v, 3) for v in vs] for k, vs in orders.items()})

# %% [markdown]
# Dropout first: the BatchNorm's running variance is about 1/(1 − p) = 2, and in eval mode its
# output's standard deviation is about √(1 − p) ≈ 0.71 instead of the 1 of training. BatchNorm
# first: the BatchNorm's statistics are right, but the block's output still has a train-eval
# mismatch, about √(1/(1 − p)) ≈ 1.41 in train mode against 1.00 in eval mode. Inverted dropout
# keeps only the mean: a layer after it gets a wider spread in training than in eval mode, and a
# BatchNorm further on would learn that spread and see the shift again.
#
# **Measuring the shift in a network.** The variance of a BatchNorm's input with the dropout
# layers dropping, divided by its variance without, every BatchNorm in eval mode. Switching
# "only the dropout layers" is exactly `uncertainty.mc_dropout`. A check written as
# `isinstance(module, nn.Dropout)` misses `Dropout2d`, which is *not* a subclass of
# `nn.Dropout` (both derive from `_DropoutNd`): it would leave a Dropout2d in eval mode and
# report a ratio of exactly 1, "no shift".

# %%
def variance_shift_ratio(model, X, switch_on):
    """Variance of the last BatchNorm's input with dropout on / off (BatchNorm in eval mode);
    `switch_on(model)` is a context manager turning the dropout layers on."""
    last_bn = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)][-1]
    inputs = []
    hook = last_bn.register_forward_hook(lambda module, args, output: inputs.append(args[0]))
    with torch.no_grad():
        model.eval()(X)
        with switch_on(model):
            model(X)
    hook.remove()
    without, with_dropout = (values.var(dim=(0, 2, 3)) for values in inputs)   # (C,) each
    return (with_dropout / without).mean().item()


torch.manual_seed(SEED)
spatial = nn.Sequential(nn.Conv2d(1, 16, 5), nn.ReLU(), nn.Dropout2d(0.5), nn.Conv2d(16, 32, 5),
                        nn.BatchNorm2d(32)).to(device)
found = [m for m in spatial.modules() if isinstance(m, nn.Dropout)]
print(f"isinstance(nn.Dropout2d(), nn.Dropout): {isinstance(nn.Dropout2d(), nn.Dropout)}; "
      f"layers an isinstance(m, nn.Dropout) switch finds: {found}")
for name, switch in (("isinstance(m, nn.Dropout)", lambda model: contextlib.nullcontext()),
                     ("uncertainty.mc_dropout", uncertainty.mc_dropout)):
    torch.manual_seed(SEED)
    print(f"{name:26}: ratio {variance_shift_ratio(spatial, X_test, switch):.3f}")
ratio = variance_shift_ratio(runs["BN + Dropout"][0]["model"], X_test, uncertainty.mc_dropout)
print(f"the chapter's BN + Dropout LeNet, Dropout after the last BatchNorm: ratio {ratio:.3f}")
assert ratio == 1.0

# %% [markdown]
# With the right switch the Dropout2d network shows its shift (a ratio well above 1); the
# broken one reports exactly 1.000. The chapter's LeNet puts its Dropout after the last
# BatchNorm, where no BatchNorm can see it: its ratio is exactly 1.
#
# ## 7. The source's claims about features, measured
#
# The source ends its Dropout paragraph with three claims (translated from Korean): dropout
# "minimizes the co-adaptation of weights", "feature visualization shows sharper features", and
# "that is, hidden cell activation **increases**". Srivastava et al. (2014) put the first as a
# hypothesis (section 7.1): "We hypothesize that for each hidden unit, dropout prevents
# co-adaptation by making the presence of other hidden units unreliable." On activations they
# report the opposite direction (section 7.2): "We found that as a side-effect of doing dropout,
# the activations of the hidden units become sparse, even when no sparsity inducing regularizers
# are present."
#
# We compare "no regularization" with "Dropout" (the same network but for the Dropout layer,
# the same starting weights and batches for a seed), in eval mode on the validation images, at
# the 1,024 hidden values the Dropout acts on:
#
# - **co-adaptation** (a proxy): the mean |correlation| between pairs of hidden units;
# - **sharper first-layer filters**: roughness of the 16 first-layer 5 × 5 filters (mean squared
#   difference between neighbouring weights over the mean squared weight: an edge detector is
#   rough, a smooth blob is not);
# - **activation**: the mean hidden activation (the source: it increases), and the fraction of
#   hidden values that are active, > 0 (Srivastava et al.: sparser, so fewer active).

# %%
def feature_measures(model):
    hidden = hidden_values(model, val_loader).flatten(1).cpu()       # (N, 1024)
    alive = hidden[:, (hidden > 0).any(dim=0)]                        # units active at least once
    correlation = torch.corrcoef(alive.T)                             # (units, units)
    off_diagonal = correlation[~torch.eye(len(correlation), dtype=torch.bool)]
    weights = model.features.conv1.weight.detach().cpu()              # (16, 1, 5, 5)
    roughness = (((weights[..., 1:, :] - weights[..., :-1, :]) ** 2).mean()
                 + ((weights[..., :, 1:] - weights[..., :, :-1]) ** 2).mean()) / (
        2 * (weights ** 2).mean())
    return {"mean |correlation|": off_diagonal.abs().mean().item(),
            "filter roughness": roughness.item(),
            "mean activation": hidden.mean().item(),
            "active fraction": (hidden > 0).double().mean().item()}


CLAIMS = {"mean |correlation|": ("co-adaptation minimized", "lower"),   # measure: (claim, the
          "filter roughness": ("sharper first-layer filters", "higher"),  # direction it predicts)
          "mean activation": ("hidden activation increases (the source)", "higher"),
          "active fraction": ("activations sparser (Srivastava et al.)", "lower")}
features = {name: [feature_measures(run["model"]) for run in runs[name]]
            for name in ("no regularization", "Dropout")}
claim_verdicts = {}
print(f"{'measure':19} {'no regularization':>17} {'Dropout':>17} {'Dropout - none':>17}  claim")
for key, (claim, direction) in CLAIMS.items():
    plain, dropped = ([m[key] for m in features[name]] for name in features)
    difference, noise, verdict = compare(dropped, plain)
    claim_verdicts[claim] = ("not shown (within noise)" if verdict == "within noise" else
                             "supported" if verdict == direction else "contradicted")
    print(f"{key:19} " + " ".join(f"{mean_and_spread(v)[0]:>8.4f} ± {mean_and_spread(v)[1]:.4f}"
                                  for v in (plain, dropped)) +
          f" {difference:+8.4f} ± {noise:.4f}  {claim}: {claim_verdicts[claim]}")
notebook.record("feature_measures", {name: {key: round(mean_and_spread([m[key] for m in ms])[0], 4)
                                            for key in ms[0]} for name, ms in features.items()})
notebook.record("feature_claims", claim_verdicts)

# %%
training.set_seed(SEED)
filters = {"common start": models.LeNet().features.conv1.weight,
           "no regularization": runs["no regularization"][0]["model"].features.conv1.weight,
           "Dropout": runs["Dropout"][0]["model"].features.conv1.weight}
fig, axes = plt.subplots(3, 16, figsize=(13, 3.3), constrained_layout=True)
for row, (name, weights) in enumerate(filters.items()):
    weights = weights.detach().cpu().reshape(16, 5, 5)
    for ax, weight in zip(axes[row], weights):
        ax.imshow(weight, cmap="RdBu_r", vmin=-weights.abs().max(), vmax=weights.abs().max())
        ax.set(xticks=[], yticks=[])
    axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
fig.suptitle(f"The 16 first-layer 5 × 5 filters (seed {SEED}; red positive, blue negative "
             "weights, each row on its own scale): do the Dropout filters look sharper?")
plt.show()

# %% [markdown]
# The claim column above is this run's answer; "not shown" means these seeds show no
# difference, not that there is none. Keep in mind: here the Dropout sits after the *last*
# convolution, so the first-layer filters feel it only through gradients passed back through
# two more layers; a correlation is a crude stand-in for co-adaptation; and a larger mean
# activation and a smaller active fraction can hold at once (fewer units, more strongly).
#
# ## 8. The dropout explorer
#
# Move p: in train mode the output keeps the input's mean, with a larger variance and a spike
# of zeros; in eval mode it is the input (histograms from `nn.Dropout` itself).

# %%
stats = regularization.dropout_outputs(0.5, inputs="ReLU activations").stats()
assert abs(stats["train"]["mean"] - stats["eval"]["mean"]) < 0.02 < stats["train"]["var"] - \
    stats["eval"]["var"]                           # the same mean, a larger variance

# %% tags=["nbval-ignore-output"]
regularization.dropout_explorer()

# %% [markdown]
# ## Summary
#
# - Dropout trains a different thinned network at every step, all sharing their weights: an
#   ensemble of 2ⁿ members. `Dropout(p)` zeroes with probability p and scales the rest by
#   1/(1 − p); eval mode is the identity; `Dropout2d` zeroes whole channels. `F.dropout` needs
#   `training=self.training`; `eval()` and `no_grad()` are independent switches.
# - Eval mode is the geometric mean of all members when the Dropout feeds one linear layer (the
#   chapter's LeNet); section 4 measures the arithmetic mean of T masks against it.
# - MC dropout: `uncertainty.mc_dropout`, never `model.train()` with BatchNorm present; section 5
#   measures its entropy on shifted images and its calibration (ECE) against eval mode.
# - Dropout before a BatchNorm shifts that BatchNorm's variance; after it, the block's output
#   still differs between train and eval mode. A dropout switch must cover every `_DropoutNd`.
# - The source's feature claims each get a verdict over seeds in section 7, with directions.
#
# ## Exercises
#
# **1.** `nn.Dropout(p=0.2)` in train mode receives a tensor full of 5.0. Which nonzero value
# appears in its output?

# %%
answer_1 = None
notebook.check_answer(answer_1, nn.Dropout(0.2).train()(torch.full((100,), 5.0)).max().item())

# %% [markdown]
# **2.** Dropout(p = 0.2) feeds a BatchNorm1d without γ and β, on inputs x ~ N(0, 1). In theory,
# what is the standard deviation of the BatchNorm's output in eval mode? (The cell measures it.)

# %%
answer_2 = None
print(f"measured: eval-mode std {block_stds(True, p=0.2)[2]:.3f}")
notebook.check_answer(answer_2, math.sqrt(1 - 0.2), digits=2)   # the measurement passes too

# %% [markdown]
# **3.** A network predicts 10 images, all with confidence 0.9; 6 of them are right. What is its
# expected calibration error?

# %%
answer_3 = None
probabilities = torch.tensor([[0.9, 0.1]]).repeat(10, 1)
notebook.check_answer(answer_3, uncertainty.expected_calibration_error(
    probabilities, torch.tensor([0] * 6 + [1] * 4)))

# %% [markdown]
# **4.** A `Dropout2d(0.25)` feeds a `BatchNorm2d` directly, on inputs with mean 0. Which ratio
# should `variance_shift_ratio` with the right switch report, in theory? (The cell measures it.)

# %%
answer_4 = None
torch.manual_seed(SEED)
measured = variance_shift_ratio(nn.Sequential(nn.Dropout2d(0.25), nn.BatchNorm2d(8)),
                                torch.randn(512, 8, 6, 6), uncertainty.mc_dropout)
print(f"measured ratio {measured:.3f}")
notebook.check_answer(answer_4, 1 / (1 - 0.25))

# %% [markdown]
# ## References
#
# - N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever, R. Salakhutdinov, "Dropout: A Simple
#   Way to Prevent Neural Networks from Overfitting", JMLR 15(56):1929-1958, 2014 (sections 7.1
#   effect on features, 7.2 effect on sparsity, 7.5 Monte-Carlo model averaging vs weight
#   scaling).
# - Y. Gal, Z. Ghahramani, "Dropout as a Bayesian Approximation: Representing Model Uncertainty
#   in Deep Learning", ICML 2016, arXiv:1506.02142.
# - C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On Calibration of Modern Neural Networks",
#   ICML 2017, arXiv:1706.04599.
# - X. Li, S. Chen, X. Hu, J. Yang, "Understanding the Disharmony between Dropout and Batch
#   Normalization by Variance Shift", CVPR 2019, arXiv:1801.05134.
# - J. Tompson, R. Goroshin, A. Jain, Y. LeCun, C. Bregler, "Efficient Object Localization
#   Using Convolutional Networks", CVPR 2015 (spatial dropout, `Dropout2d`).
# - PyTorch documentation: `torch.nn.Dropout`, `torch.nn.Dropout2d`, `torch.nn.functional.dropout`,
#   `torch.nn.Module.eval`: https://docs.pytorch.org/docs/stable/nn.html
# - H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
#   Machine Learning Algorithms", arXiv:1708.07747, 2017.
