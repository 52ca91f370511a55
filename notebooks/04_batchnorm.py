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
# # 04 · BatchNorm: by hand, and why it helps, measured
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lr-course/lr-schedulers-regularization/blob/main/notebooks/04_batchnorm.ipynb)
#
# **What you will learn**
#
# - what `BatchNorm2d` computes in train and eval mode, checked against PyTorch: batch and
#   running statistics, the momentum convention, the unbiased `running_var`, `momentum=None`,
#   `track_running_stats=False`, the batch of one;
# - why BatchNorm sits between the convolution and the ReLU, and why that convolution needs no
#   bias;
# - whether BatchNorm does what the chapter says it does, measured on Fashion-MNIST with the
#   chapter's LeNet over several seeds: higher learning rates, badly scaled initial weights,
#   sigmoid units, and "internal covariate shift" (and the later finding that questions it);
# - where BatchNorm bites: small batches (GroupNorm and LayerNorm normalize each image on its
#   own), and fine-tuning, where `requires_grad_(False)` does not freeze it.
#
# The whole notebook runs on a CPU. The exhaustive by-hand-vs-torch checks behind section 1 are
# in `tests/test_lesson04.py`; here each claim gets one illustrative check.

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
import itertools
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import data, models, notebook, plotting, training
from course_utils.widgets import regularization

device = notebook.report_device()   # a GPU when there is one

# %% tags=["parameters"]
FAST = notebook.fast_mode()                   # COURSE_FAST=1: small defaults for tests
TRAIN_SIZE = 1500 if FAST else 10000          # training images the runs draw from
VAL_SIZE = 500 if FAST else 2000              # validation images (final accuracies)
PROBE_SIZE = 200 if FAST else 500             # validation images watched during a run
STEPS = 12 if FAST else 100                   # SGD steps of batch 64 in every run
NUM_SEEDS = 2 if FAST else 3                  # seeds per setting, to see the spread
BATCH_SIZE = 64
LR = 0.05                                     # SGD with momentum 0.9
SEED = 0                                      # the first seed; the others are SEED+1, ...

# %% [markdown]
# Sections 4-6 train about 90 small runs in full mode, each of `STEPS` steps of 64 images
# (6,400 images, two thirds of a pass over the 10,000-image subset). That tells a run that
# trains from one that does not, and compares accuracies early in training, not after many
# epochs: the verdicts below are verdicts at this budget. Fast mode (`COURSE_FAST=1`) is a
# smoke test whose numbers are not evidence.

# %%
train_full, _ = data.load_fashion_mnist()
train, val = data.lesson_split(train_full, val_size=VAL_SIZE, train_size=TRAIN_SIZE, seed=SEED)
val_loader = data.TensorLoader(val, 1000, device=device)
probe_loader = data.TensorLoader(data.stratified_subset(val, PROBE_SIZE, seed=SEED), PROBE_SIZE,
                                 device=device)
X_probe, y_probe = next(iter(probe_loader))                # (PROBE_SIZE, 1, 28, 28), labels
seeds = [SEED + i for i in range(NUM_SEEDS)]
print(f"{len(train):,} training and {len(val):,} validation images; seeds {seeds}")

# %% [markdown]
# ## 1. BatchNorm by hand
#
# `BatchNorm2d(C)` keeps one mean and one variance **per channel**, over the batch and both
# spatial dimensions: for an input (N, C, H, W) each statistic averages N·H·W numbers. It has
# two learnable vectors (γ `weight`, β `bias`) and three buffers, which `state_dict()` saves
# but the optimizer never sees. We check it on a small random batch, with γ and β away from
# their defaults (1 and 0); outputs agree with PyTorch within `1e-5`, statistics within `1e-6`.

# %%
def per_channel(values):
    """(C,) -> (1, C, 1, 1), so that it broadcasts over (N, C, H, W)."""
    return values[None, :, None, None]


def normalize(X, mean, var, bn):
    return (per_channel(bn.weight) * (X - per_channel(mean)) / torch.sqrt(per_channel(var) + bn.eps)
            + per_channel(bn.bias))


torch.manual_seed(SEED)
X = torch.randn(8, 3, 5, 5) * 2 + 1            # (N=8, C=3, H=5, W=5): 200 values per channel
bn = nn.BatchNorm2d(3)
with torch.no_grad():
    bn.weight.copy_(torch.tensor([1.5, 0.5, 2.0]))     # γ
    bn.bias.copy_(torch.tensor([0.1, -0.3, 1.0]))      # β
print("parameters:", list(dict(bn.named_parameters())), "buffers:", list(dict(bn.named_buffers())))

# %% [markdown]
# **Train mode** normalizes with the batch's own mean and its *biased* variance (divided by
# N·H·W, not N·H·W − 1): y = γ · (x − mean) / √(var + eps) + β. It also updates the buffers,
# and PyTorch's `momentum` (default 0.1) is the weight of the **new** batch:
#
#     running_mean = (1 − momentum) · running_mean + momentum · batch mean
#     running_var  = (1 − momentum) · running_var  + momentum · batch var (UNBIASED)
#
# starting from 0 and 1. The buffer stores the *unbiased* variance, the forward pass uses the
# biased one.

# %%
bn.train()
y_train = bn(X)
mean = X.mean(dim=(0, 2, 3))                              # (C,)
var_biased = X.var(dim=(0, 2, 3), correction=0)           # divides by 200
var_unbiased = X.var(dim=(0, 2, 3), correction=1)         # divides by 199
with torch.no_grad():
    assert torch.allclose(y_train, normalize(X, mean, var_biased, bn), atol=1e-5)
    assert not torch.allclose(y_train, normalize(X, mean, var_unbiased, bn), atol=1e-5)
momentum = bn.momentum
assert torch.allclose(bn.running_mean, momentum * mean, atol=1e-6)
assert torch.allclose(bn.running_var, (1 - momentum) + momentum * var_unbiased, atol=1e-6)
assert not torch.allclose(bn.running_var, (1 - momentum) + momentum * var_biased, atol=1e-6)
print(f"output, running_mean and running_var (unbiased) match by hand; momentum {momentum}")

# %% [markdown]
# Keras names the same number the other way round: its `momentum` is the weight of the *old*
# value, default 0.99. PyTorch's 0.1 is Keras' 0.9; copy Keras' 0.99 into PyTorch and the
# running statistics become, almost entirely, the last batch's.
#
# How long does a batch count? When it arrives its weight is `momentum`; each later batch
# multiplies it by (1 − momentum), so k batches later it is momentum · (1 − momentum)ᵏ. It has
# halved when (1 − momentum)ᵏ = 1/2, that is after **k = ln 0.5 / ln(1 − momentum)** batches:
# the last column below (0.69/momentum for a small momentum).

# %%
# One batch with mean 1, then k batches with mean 0, with a momentum whose k is 5 exactly:
impulse_momentum = 1 - 2 ** (-1 / 5)
k = math.log(0.5) / math.log(1 - impulse_momentum)
bn_impulse = nn.BatchNorm1d(1, momentum=impulse_momentum)
bn_impulse(torch.tensor([[0.0], [2.0]]))                  # mean 1: its weight is the momentum
for _ in range(round(k)):
    bn_impulse(torch.tensor([[-1.0], [1.0]]))             # mean 0
print(f"momentum {impulse_momentum:.4f}: k = {k:.2f}; after {round(k)} more batches the first "
      f"batch weighs {bn_impulse.running_mean.item():.4f} = momentum / 2")
assert abs(bn_impulse.running_mean.item() - impulse_momentum / 2) < 1e-6

# %% tags=["nbval-check-output"]
print(f"{'PyTorch momentum':>16} {'Keras momentum':>15} {'batches until a batch weighs half':>34}")
half_lives = {}
for torch_momentum in (0.99, 0.5, 0.1, 0.01):
    half_life = math.log(0.5) / math.log(1 - torch_momentum)
    half_lives[torch_momentum] = round(half_life, 2)
    print(f"{torch_momentum:>16} {1 - torch_momentum:>15.2f} {half_life:>34.2f}")
notebook.record("batches_until_half", half_lives)

# %% [markdown]
# **Eval mode** uses the running statistics and updates nothing, so each sample's output
# depends on that sample alone; in train mode it depends on its batchmates. Two options change
# the running statistics. With **`momentum=None`** the k-th batch gets weight 1/k: the buffers
# are the plain average of all batch statistics so far. With **`track_running_stats=False`**
# there are no buffers (they are `None`), and eval mode uses the batch's statistics too.

# %%
running_mean, running_var = bn.running_mean.clone(), bn.running_var.clone()
bn.eval()
y_eval = bn(X)
with torch.no_grad():
    assert torch.allclose(y_eval, normalize(X, running_mean, running_var, bn), atol=1e-5)
assert torch.equal(bn.running_mean, running_mean) and bn.num_batches_tracked.item() == 1
assert torch.allclose(bn(X[:1]), y_eval[:1], atol=1e-5)                 # alone = in the batch
bn_copy = copy.deepcopy(bn).train()
assert not torch.allclose(bn_copy(X[:4])[:1], bn_copy(X)[:1], atol=1e-5)   # train: it differs

bn_average = nn.BatchNorm2d(3, momentum=None)
batches = [torch.randn(8, 3, 5, 5) * scale + scale for scale in (1.0, 2.0, 3.0)]
for batch in batches:
    bn_average(batch)
mean_of_means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(dim=0)
assert torch.allclose(bn_average.running_mean, mean_of_means, atol=1e-6)

bn_batch_only = nn.BatchNorm2d(3, track_running_stats=False).eval()
assert bn_batch_only.running_mean is None and bn_batch_only.running_var is None
expected = (X - per_channel(mean)) / torch.sqrt(per_channel(var_biased) + bn_batch_only.eps)
assert torch.allclose(bn_batch_only(X), expected, atol=1e-5)
print("eval mode: running statistics, no update, each sample on its own; momentum=None: the "
      "average of the batch means; track_running_stats=False: batch statistics in eval mode")

# %% [markdown]
# **A batch of one.** Train mode needs more than one value per channel to compute a variance,
# and raises `ValueError: Expected more than 1 value per channel when training` otherwise. What
# counts is N·H·W, not N: one image of 5 × 5 maps is fine for `BatchNorm2d`, while
# `BatchNorm1d` after a linear layer fails on a batch of one (for example a last, incomplete
# batch of one image: `drop_last=True` in the loader avoids it). Eval mode never raises.

# %% tags=["nbval-check-output"]
def outcome(layer, shape, train_mode):
    layer.train(train_mode)
    try:
        layer(torch.randn(*shape))
        return "works"
    except ValueError:
        return "ValueError"


cases = [(nn.BatchNorm1d(3), (1, 3)), (nn.BatchNorm1d(3), (2, 3)),
         (nn.BatchNorm2d(3), (1, 3, 5, 5)), (nn.BatchNorm2d(3), (1, 3, 1, 1))]
print(f"{'layer':12} {'input shape':14} {'values/channel':>14} {'train mode':>11} "
      f"{'eval mode':>10}")
for layer, shape in cases:
    values = math.prod(shape) // shape[1]
    print(f"{type(layer).__name__:12} {str(shape):14} {values:>14} "
          f"{outcome(layer, shape, True):>11} {outcome(layer, shape, False):>10}")

# %% [markdown]
# ## 2. Why BatchNorm sits between the convolution and the ReLU
#
# Ioffe and Szegedy (2015) normalize x = Wu + b, the convolution's output, right before the
# nonlinearity, as the chapter's `LeNet(batch_norm=True)` does. Two consequences, checked here.
#
# **The convolution before BatchNorm needs no bias.** BatchNorm subtracts each channel's mean,
# and a per-channel bias b shifts that mean by exactly b: it cancels, and its gradient is zero
# (β takes over its role). In float64 both hold to rounding error. (In eval mode the bias
# cancels only once the running mean has taken it in; `tests/test_lesson04.py` checks that.)

# %%
X_images = X_probe[:64].cpu().double()                      # (64, 1, 28, 28) real images
torch.manual_seed(SEED)
conv_with_bias = nn.Conv2d(1, 16, 5).double()
conv_without_bias = nn.Conv2d(1, 16, 5, bias=False).double()
with torch.no_grad():
    conv_without_bias.weight.copy_(conv_with_bias.weight)
    conv_with_bias.bias.uniform_(-3, 3)                     # a large bias, to make the point
out_with = nn.BatchNorm2d(16).double()(conv_with_bias(X_images))     # (64, 16, 24, 24)
out_without = nn.BatchNorm2d(16).double()(conv_without_bias(X_images))
(out_with * torch.randn_like(out_with)).sum().backward()    # any loss will do
bias_grad = conv_with_bias.bias.grad.abs().max().item()
weight_grad = conv_with_bias.weight.grad.abs().max().item()
print(f"max |output with bias - output without|: {(out_with - out_without).abs().max():.1e}; "
      f"largest bias gradient {bias_grad:.1e}, largest weight gradient {weight_grad:.1e}")
assert torch.allclose(out_with, out_without, rtol=0, atol=1e-10)
assert bias_grad < 1e-8 * weight_grad

# %% [markdown]
# **A symmetric signal to normalize.** The paper's second argument: a convolution's output is
# roughly symmetric, a ReLU's is not (a spike of zeros, a long positive tail). Normalized to
# mean 0 and cut by the ReLU, a symmetric channel keeps about half its values. After the ReLU,
# BatchNorm would instead normalize the lopsided signal, and all its zeros would land on one
# negative value. The skewness (0 for a symmetric distribution), at the second convolution of
# an untrained LeNet, on real images:

# %%
def skewness(values):
    """Per-channel skewness of (N, C, H, W) values, averaged over channels."""
    mean, std = values.mean(dim=(0, 2, 3), keepdim=True), values.std(dim=(0, 2, 3), keepdim=True)
    return ((values - mean) / std).pow(3).mean().item()


training.set_seed(SEED)
body = models.LeNet(batch_norm=True).features.train()
with torch.no_grad():
    u = body.relu1(body.bn1(body.conv1(X_probe.cpu())))     # input of the second block
    pre_activation = body.conv2(u)                          # (N, 32, 20, 20): Wu + b
    relu_output = torch.relu(pre_activation)
    kept_by_relu = (body.relu2(body.bn2(pre_activation)) > 0).double().mean().item()
print(f"skewness of the convolution's output {skewness(pre_activation):+.2f}, of the ReLU's "
      f"output {skewness(relu_output):+.2f}; conv -> BN -> ReLU keeps {kept_by_relu:.1%}")
assert abs(skewness(pre_activation)) < 0.5 < skewness(relu_output)
assert 0.4 < kept_by_relu < 0.6

# %% [markdown]
# These are arguments, not laws: both orders train, and published comparisons disagree about
# which is better; notebook 05 measures both orders on this network.
#
# ## 3. The momentum explorer
#
# The input's mean jumps from 0 to 3 at batch 40. With momentum m, k batches after the jump the
# running mean has covered 1 − (1 − m)ᵏ of the jump (ignoring each batch's noise); with
# `momentum=None` it is a plain average and covers only k / (40 + k). Batches until it covers
# 90 %:

# %% tags=["nbval-check-output"]
for momentum in (0.01, 0.1, 0.5, 0.9, None):
    print(f"momentum {momentum!s:5}: {regularization.batches_to_follow(momentum, 0.9, 40):4d} "
          "batches")

# %% tags=["nbval-ignore-output"]
regularization.batchnorm_momentum_explorer()

# %% [markdown]
# ## 4. Does BatchNorm help? The chapter's claims, measured
#
# The chapter's BatchNorm paragraph says that without it, training "requires lower learning
# rates and careful parameter initialization, and makes it notoriously hard to train models
# with saturating nonlinearities" (Ioffe and Szegedy's words, who blame "internal covariate
# shift", the change of each layer's input distribution as the layers before it train), and
# that BatchNorm "reduces the problem of coordinating updates across many layers". Four
# claims, each measured below on the chapter's LeNet, with and without BatchNorm, over
# `NUM_SEEDS` seeds.
#
# One builder for every variant: `norm(channels)` (or nothing) between each convolution and its
# activation. With `nn.BatchNorm2d` and a seed it is `models.LeNet(batch_norm=True)`, exactly:

# %%
def lenet(norm=None, activation=nn.ReLU):
    """The chapter's LeNet as one nn.Sequential: conv -> norm -> activation (-> pool), x3."""
    layers = []
    for in_channels, out_channels, size, pool in ((1, 16, 5, False), (16, 32, 5, True),
                                                  (32, 64, 3, True)):
        layers.append(nn.Conv2d(in_channels, out_channels, size))
        layers += [norm(out_channels)] if norm is not None else []
        layers += [activation()] + ([nn.MaxPool2d(2)] if pool else [])
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * 4 * 4, 10))   # (N, 10) logits


training.set_seed(SEED)
reference = models.LeNet(batch_norm=True).eval()
training.set_seed(SEED)
assert torch.allclose(reference(X_probe.cpu()), lenet(nn.BatchNorm2d).eval()(X_probe.cpu()),
                      atol=1e-5)

# %% [markdown]
# On a CPU, the runs below use one thread. The thread count decides how sums are split, and so
# the last bits of the rounding; a run right at the edge of diverging can flip with it. Fixing the
# count keeps every rerun on this machine the same however busy it is (for a network this small
# one thread costs little; on a GPU this does nothing).

# %%
if device.type == "cpu":
    torch.set_num_threads(1)
print("threads:", torch.get_num_threads())

# %% [markdown]
# Every run: a fresh network seeded with its seed, SGD with momentum 0.9, `STEPS` steps on
# shuffled training batches. A run **trains** when its loss stays finite and its final
# validation accuracy (eval mode) is above 50 % (chance is 10 %). Some runs are also watched: at
# regular steps a copy of the network, in train mode as training sees it, is run on the probe
# images, and we keep the loss, the fraction of saturated sigmoid units and the per-channel mean
# and standard deviation of the third convolution's input.

# %%
def probe(model):
    """(loss, saturated fraction, conv3 input's per-channel mean and std) on the probe images."""
    model = copy.deepcopy(model).train()          # a copy: the real running statistics stay
    X, conv_inputs, saturated = X_probe, [], []
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Conv2d):
                conv_inputs.append(X)
            X = layer(X)
            if isinstance(layer, nn.Sigmoid):     # sigmoid'(x) < 0.05 there: a gradient trap
                saturated.append(((X < 0.05) | (X > 0.95)).double().mean().item())
    third = conv_inputs[2]                        # (N, 32, 10, 10)
    return {"loss": F.cross_entropy(X, y_probe).item(),
            "saturated": sum(saturated) / len(saturated) if saturated else float("nan"),
            "mean": third.mean(dim=(0, 2, 3)).cpu(), "std": third.std(dim=(0, 2, 3)).cpu()}


def train_run(make_model, *, lr=LR, seed=SEED, batch_size=BATCH_SIZE, weight_scale=1.0,
              watch=False):
    """Train a fresh make_model() on STEPS * 64 images; return its result as a dict."""
    training.set_seed(seed)
    model = make_model().to(device)
    with torch.no_grad():                         # weights scaled after the default init
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.mul_(weight_scale)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loader = data.TensorLoader(train, batch_size, shuffle=True, device=device, seed=seed,
                               drop_last=True)
    steps = STEPS * BATCH_SIZE // batch_size      # the same number of images for every batch size
    every = max(1, steps // 10)
    curve = [(0, probe(model))] if watch else []
    batches = (batch for _ in itertools.count() for batch in loader)
    for step, (X, y) in zip(range(1, steps + 1), batches):
        loss = F.cross_entropy(model(X), y)
        if not torch.isfinite(loss):
            return {"model": model, "trains": False, "val_acc": float("nan"), "curve": curve}
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if watch and step % every == 0:
            curve.append((step, probe(model)))
    val_loss, val_acc = training.evaluate(model, val_loader)
    trains = math.isfinite(val_loss) and val_acc > 0.5
    return {"model": model, "trains": trains, "val_acc": val_acc, "curve": curve}


def mean_and_spread(values):
    values = torch.tensor(values, dtype=torch.float64)
    return values.mean().item(), (values.std().item() if len(values) > 1 else 0.0)


def percent(values):
    mean, spread = mean_and_spread(values)
    return f"{100 * mean:5.1f} ± {100 * spread:4.1f} %"


def accuracies(runs):
    """Each run's validation accuracy; a run that does not train counts at chance, 10 %."""
    return [run["val_acc"] if run["trains"] else 0.1 for run in runs]


def compare(values, reference_values):
    """Paired over seeds: mean difference, noise (the larger of the differences' spread and one
    accuracy's standard error on the validation images) and a verdict."""
    difference, spread = mean_and_spread([a - b for a, b in zip(values, reference_values)])
    noise = max(spread, 0.5 / math.sqrt(len(val)))
    verdict = ("within noise" if abs(difference) < 2 * noise else
               "higher" if difference > 0 else "lower")
    return difference, noise, verdict


start_time = time.perf_counter()

# %% [markdown]
# ### 4.1 Higher learning rates
#
# The same network with and without BatchNorm, over a range of learning rates, every seed. Then
# the verdict seed by seed (a seed pairs the two networks: the loader's seed gives both the same
# batches in the same order): does BN still train at a larger lr? And the best accuracy each
# network reaches over the lrs.

# %%
LRS = (0.05, 1.0) if FAST else (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
NETWORKS = {"no BN": lambda: lenet(), "BN": lambda: lenet(nn.BatchNorm2d)}
sweep = {(name, lr): [train_run(make, lr=lr, seed=seed, watch=lr == LR) for seed in seeds]
         for name, make in NETWORKS.items() for lr in LRS}
print(f"{'lr':>5} " + " ".join(f"{name + ': trains, val acc':>32}" for name in NETWORKS))
for lr in LRS:
    cells = [f"{sum(run['trains'] for run in sweep[name, lr])}/{len(seeds)} seeds, "
             f"{percent([run['val_acc'] for run in sweep[name, lr] if run['trains']] or [0.1])}"
             for name in NETWORKS]
    print(f"{lr:>5} " + " ".join(f"{cell:>32}" for cell in cells))
largest = {name: [max([lr for lr in LRS if sweep[name, lr][i]["trains"]], default=0.0)
                  for i in range(len(seeds))] for name in NETWORKS}
bn_higher = sum(b > a for a, b in zip(largest["no BN"], largest["BN"]))
best = {name: [max(accuracies(sweep[name, lr])[i] for lr in LRS) for i in range(len(seeds))]
        for name in NETWORKS}
difference, noise, verdict = compare(best["BN"], best["no BN"])
print(f"largest lr that trains, per seed: {largest}; larger with BN in {bn_higher} of "
      f"{len(seeds)} seeds\nbest accuracy over the lrs, BN - no BN: {100 * difference:+.1f} ± "
      f"{100 * noise:.1f} points: {verdict}")
notebook.record("largest_lr_that_trains", largest)
notebook.record("lr_verdicts", {"bn_trains_at_larger_lr": bn_higher, "seeds": len(seeds),
                                "best_accuracy": verdict})

# %% [markdown]
# (A row where no seed trains shows chance, 10 %.) The count says in how many seeds it holds.
#
# ### 4.2 Initialization scaled badly
#
# Every convolution and linear weight multiplied by a factor after PyTorch's default
# initialization: too small (0.1), too large (10, 100). Without BatchNorm the factor can compound
# from layer to layer; with it, each convolution's scale is normalized away (checked first) and
# only the last linear layer's remains. Same lr (`LR`), same budget:

# %%
training.set_seed(SEED)
model = lenet(nn.BatchNorm2d)
model_x10 = copy.deepcopy(model)
with torch.no_grad():
    for module in model_x10.modules():
        if isinstance(module, nn.Conv2d):
            module.weight.mul_(10)                        # and its bias is cancelled anyway
assert torch.allclose(model(X_probe), model_x10(X_probe), atol=1e-3)    # up to eps

# %%
SCALES = (0.1, 10.0) if FAST else (0.1, 1.0, 10.0, 100.0)
scaled = {(name, scale): (sweep[name, LR] if scale == 1.0 else
                          [train_run(make, seed=seed, weight_scale=scale) for seed in seeds])
          for name, make in NETWORKS.items() for scale in SCALES}
print(f"{'weights x':>9} " + " ".join(f"{name + ': trains, val acc':>32}" for name in NETWORKS)
      + "   BN - no BN")
for scale in SCALES:
    cells = [f"{sum(run['trains'] for run in scaled[name, scale])}/{len(seeds)} seeds, "
             f"{percent(accuracies(scaled[name, scale]))}" for name in NETWORKS]
    verdict = compare(accuracies(scaled["BN", scale]), accuracies(scaled["no BN", scale]))[2]
    print(f"{scale:>9} " + " ".join(f"{cell:>32}" for cell in cells) + f"   {verdict}")
notebook.record("trains_by_weight_scale", {f"{name} x{scale}": sum(r["trains"] for r in runs)
                                           for (name, scale), runs in scaled.items()})

# %% [markdown]
# Runs that do not train count at chance (10 %). The last linear layer, which no BatchNorm
# follows, is where BatchNorm's rescue can end.
#
# ### 4.3 Saturating nonlinearities
#
# The same LeNet with sigmoid units instead of ReLUs. A sigmoid whose input is far from 0
# outputs nearly 0 or 1 and passes back almost no gradient; we count a unit as saturated when
# its output is below 0.05 or above 0.95.

# %%
sigmoid_runs = {"sigmoid, no BN": [train_run(lambda: lenet(None, nn.Sigmoid), seed=seed,
                                             watch=True) for seed in seeds],
                "sigmoid, BN": [train_run(lambda: lenet(nn.BatchNorm2d, nn.Sigmoid), seed=seed,
                                          watch=True) for seed in seeds]}
curves = {"ReLU, no BN": sweep["no BN", LR], "ReLU, BN": sweep["BN", LR], **sigmoid_runs}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), constrained_layout=True)
for index, (name, runs) in enumerate(curves.items()):
    length = min(len(run["curve"]) for run in runs)           # a diverged run stops early
    steps = [step for step, _ in runs[0]["curve"][:length]]
    for ax, key in zip(axes, ("loss", "saturated") if "sigmoid" in name else ("loss",)):
        ax.plot(steps, [mean_and_spread([run["curve"][i][1][key] for run in runs])[0]
                        for i in range(length)], label=name, **plotting.style(index))
for ax, label in zip(axes, ("loss on the probe images", "fraction of saturated sigmoid units")):
    ax.set(xlabel="step", ylabel=label)
    ax.legend()
fig.suptitle(f"Mean of {len(seeds)} seeds: does the sigmoid network learn without BatchNorm?")
plt.show()

# %%
sigmoid_acc = {name: accuracies(runs) for name, runs in sigmoid_runs.items()}
saturation = {name: [run["curve"][-1][1]["saturated"] for run in runs]
              for name, runs in sigmoid_runs.items()}
for name in sigmoid_runs:
    print(f"{name:15} val acc {percent(sigmoid_acc[name])}, saturated units at the end "
          f"{percent(saturation[name])}")
difference, noise, verdict = compare(sigmoid_acc["sigmoid, BN"], sigmoid_acc["sigmoid, no BN"])
print(f"sigmoid, BN - no BN: {100 * difference:+.1f} ± {100 * noise:.1f} points: {verdict}")
notebook.record("sigmoid", {"val_acc": {k: round(mean_and_spread(v)[0], 4)
                                        for k, v in sigmoid_acc.items()},
                            "saturated": {k: round(mean_and_spread(v)[0], 4)
                                          for k, v in saturation.items()}, "verdict": verdict})

# %% [markdown]
# ### 4.4 Internal covariate shift, measured and questioned
#
# The story: as earlier layers train, the distribution of a later layer's inputs moves, so that
# layer chases a moving target; BatchNorm fixes each channel's mean and variance and so stops
# the chase. We measure how far the third convolution's input moves between two consecutive
# probes (per channel, |change of the mean| + |change of the standard deviation|, divided by the
# channels' average standard deviation at the earlier probe; averaged over channels and run).
#
# Santurkar, Tsipras, Ilyas and Madry (2018) questioned the story: they added random noise after
# each BatchNorm, which makes every layer's input distribution move at every step, more than
# without BatchNorm, and found that such networks still trained about as well as with plain
# BatchNorm. Their conclusion is that BatchNorm's benefit does not come from reducing internal
# covariate shift, and that it makes the loss landscape smoother instead. We repeat a simple
# version: after each BatchNorm, in train mode, a random per-channel scale (0.5 to 1.5) and shift
# (−1 to 1), drawn anew at every forward pass.

# %%
class NoisyBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm, then (train mode only) a random per-channel scale and shift at every call."""

    def forward(self, X):
        X = super().forward(X)
        if not self.training:
            return X
        scale = torch.empty(1, X.shape[1], 1, 1, device=X.device).uniform_(0.5, 1.5)
        shift = torch.empty(1, X.shape[1], 1, 1, device=X.device).uniform_(-1.0, 1.0)
        return X * scale + shift


def covariate_shift(curve):
    """Mean over probe intervals and channels of (|Δmean| + |Δstd|) / the earlier mean std."""
    moves = [((later["mean"] - earlier["mean"]).abs() + (later["std"] - earlier["std"]).abs())
             / earlier["std"].mean() for (_, earlier), (_, later) in zip(curve, curve[1:])]
    return torch.stack(moves).mean().item()


shift_runs = {"no BN": sweep["no BN", LR], "BN": sweep["BN", LR],
              "noisy BN": [train_run(lambda: lenet(NoisyBatchNorm2d), seed=seed, watch=True)
                           for seed in seeds]}
shifts = {name: [covariate_shift(run["curve"]) for run in runs]
          for name, runs in shift_runs.items()}
shift_accuracies = {name: accuracies(runs) for name, runs in shift_runs.items()}
for name in shift_runs:
    print(f"{name:9} shift per interval {mean_and_spread(shifts[name])[0]:.3f} ± "
          f"{mean_and_spread(shifts[name])[1]:.3f}, val acc {percent(shift_accuracies[name])}")
shift_verdicts = {}
for name, reference in (("BN", "no BN"), ("noisy BN", "no BN"), ("noisy BN", "BN")):
    shift_difference, shift_spread = mean_and_spread(
        [a - b for a, b in zip(shifts[name], shifts[reference])])
    shift_verdict = ("within noise" if abs(shift_difference) < 2 * shift_spread else
                     "more shift" if shift_difference > 0 else "less shift")
    accuracy_verdict = compare(shift_accuracies[name], shift_accuracies[reference])[2]
    shift_verdicts[f"{name} vs {reference}"] = (shift_verdict, accuracy_verdict)
    print(f"{name} vs {reference}: {shift_verdict}, accuracy {accuracy_verdict}")
notebook.record("covariate_shift", {name: round(mean_and_spread(v)[0], 4)
                                    for name, v in shifts.items()})
notebook.record("covariate_shift_verdicts", shift_verdicts)

# %% [markdown]
# Two readings. If BatchNorm shows much less shift than no BatchNorm while their accuracies are
# within noise (at this lr), reducing the shift did not buy accuracy here. If noisy BatchNorm,
# with as much shift as no BatchNorm or more, still matches plain BatchNorm's accuracy, the
# benefit does not depend on the shift, as Santurkar et al. found; if it falls to or below the
# accuracy without BatchNorm, this simple test does not support their finding on this network
# and budget (a caveat: the noise is off in eval mode, so the evaluated network is not quite
# the trained one). The verdicts say which.
#
# ## 5. Small batches, and GroupNorm and LayerNorm
#
# With 2 images BatchNorm's statistics are noisy, and eval mode's running statistics may describe
# another network than the one training saw. GroupNorm (4 groups of channels) and LayerNorm
# (`GroupNorm(1, C)`) normalize each image on its own, with no running statistics. Every run
# sees `STEPS` × 64 images, with lr = `LR` × size / 64 (the linear scaling rule: the same step
# per image on average). The gap: train-mode accuracy on batches of the training size minus
# eval-mode accuracy.

# %%
NORMS = {"BN": nn.BatchNorm2d, "GroupNorm": lambda c: nn.GroupNorm(4, c),
         "LayerNorm": lambda c: nn.GroupNorm(1, c)}
SIZES = {"BN": (2, 4, 64) if FAST else (2, 4, 8, 64), "GroupNorm": (4, 64), "LayerNorm": (4, 64)}


def train_mode_accuracy(model, batch_size):
    model = copy.deepcopy(model).train()
    with torch.no_grad():
        predictions = torch.cat([model(X_probe[i:i + batch_size]).argmax(dim=1)
                                 for i in range(0, len(X_probe), batch_size)])
    return (predictions == y_probe).double().mean().item()


batch_table = {}
for name, norm in NORMS.items():
    for size in SIZES[name]:
        runs = (sweep["BN", LR] if (name, size) == ("BN", 64) else
                [train_run(lambda: lenet(norm), seed=seed, batch_size=size,
                           lr=LR * size / BATCH_SIZE) for seed in seeds])
        gap = [train_mode_accuracy(run["model"], size) - training.evaluate(run["model"],
               probe_loader)[1] for run in runs]
        batch_table[name, size] = {"val_acc": accuracies(runs), "gap": gap}
        print(f"{name:9} batch {size:2d}: val acc (eval mode) {percent(accuracies(runs))}, "
              f"train mode minus eval mode {percent(gap)}")
assert all(abs(g) < 1e-9 for name in ("GroupNorm", "LayerNorm") for size in SIZES[name]
           for g in batch_table[name, size]["gap"])      # no running statistics: no gap
for name, size, other, other_size in (("GroupNorm", 4, "BN", 4), ("LayerNorm", 4, "BN", 4),
                                      ("BN", 2, "BN", 64)):
    verdict = compare(batch_table[name, size]["val_acc"], batch_table[other, other_size]["val_acc"])
    print(f"{name} at batch {size} vs {other} at batch {other_size}: accuracy {verdict[2]}")
notebook.record("batch_size", {f"{name} {size}": round(mean_and_spread(v["val_acc"])[0], 4)
                               for (name, size), v in batch_table.items()})

# %% [markdown]
# `BatchNorm2d` averages over N·H·W values, not N (section 1), so even 2 images give each
# channel many values: where the verdicts read "within noise", the small-batch problem does not
# show on this network at this budget. The deployment trap does: a network trained with
# batches of 64, left in train mode, predicting small batches (each prediction then depends on
# the other images of its batch):

# %%
inference = {f"train mode, batches of {size}": [train_mode_accuracy(run["model"], size)
                                                for run in sweep["BN", LR]]
             for size in (1, 2, 8, 64, PROBE_SIZE)}
inference["eval mode, any batch size"] = [training.evaluate(run["model"], probe_loader)[1]
                                          for run in sweep["BN", LR]]
for name, values in inference.items():
    print(f"{name:28} accuracy {percent(values)}")
notebook.record("train_mode_inference_acc", {size: round(mean_and_spread(v)[0], 4)
                                             for size, v in inference.items()})

# %% [markdown]
# ## 6. Fine-tuning with BatchNorm
#
# A common recipe: freeze a trained body with `requires_grad_(False)` and train a new head.
# But running statistics are buffers, not parameters: `requires_grad` does not touch them, and
# every train-mode forward pass moves them. `bn.eval()` on the BatchNorm layers helps only until
# the next `model.train()` (which every training loop calls), as `train()` sets every
# submodule's mode. We fine-tune the last layer of each BN network of section 4.1 for 20 steps
# on a "new camera" (the same images, darker, less contrast), once each way.

# %%
def freeze_batchnorm(model):
    """Call after every model.train(): BatchNorm layers back to eval mode (statistics frozen)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def fine_tune(model, freeze_statistics, seed):
    model = copy.deepcopy(model)
    model.requires_grad_(False)
    model[-1].requires_grad_(True)                        # only the last linear layer learns
    optimizer = torch.optim.SGD(model[-1].parameters(), lr=0.01, momentum=0.9)
    loader = data.TensorLoader(train, BATCH_SIZE, shuffle=True, device=device, seed=seed)
    model.train()
    for step, (X, y) in zip(range(20), loader):
        if freeze_statistics:
            freeze_batchnorm(model)
        loss = F.cross_entropy(model(0.5 * X - 1.0), y)   # the new camera
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


trained = sweep["BN", LR][0]["model"]
trained[1].eval()
trained.train()
assert trained[1].training                               # train() undid the layer's eval()
moved, old_accuracy = {}, {}
for freeze in (False, True):
    tuned = [fine_tune(run["model"], freeze, seed) for run, seed in zip(sweep["BN", LR], seeds)]
    moved[freeze] = max((a.running_mean - b.running_mean).abs().max().item()
                        for a, b in zip(trained.modules(), tuned[0].modules())
                        if isinstance(a, nn.BatchNorm2d))
    old_accuracy[freeze] = [training.evaluate(model, val_loader)[1] for model in tuned]
    print(f"freeze_batchnorm {freeze!s:5}: running_mean moved by up to {moved[freeze]:.4f}; "
          f"accuracy on the original images afterwards {percent(old_accuracy[freeze])}")
assert moved[False] > 0 and moved[True] == 0
print(f"requires_grad only vs really frozen: {compare(old_accuracy[False], old_accuracy[True])[2]}")
notebook.record("fine_tune_original_acc", {str(k): round(mean_and_spread(v)[0], 4)
                                           for k, v in old_accuracy.items()})
print(f"sections 4-6 took {time.perf_counter() - start_time:.0f} s")

# %% [markdown]
# With `requires_grad_(False)` alone, the body's statistics followed the new camera: the body
# is no longer the one you trained (its accuracy on the original images shows what that did
# here). `freeze_batchnorm(model)` after every `model.train()` keeps them. Adapting the
# statistics to new data can be done on purpose; the point is to choose it.
#
# ## Summary
#
# - `BatchNorm2d` in train mode normalizes each channel with the batch's mean and *biased*
#   variance and gives the new batch weight `momentum` in the (unbiased) running statistics, a
#   weight that halves in ln 0.5 / ln(1 − momentum) batches. Eval mode uses the running ones.
# - Right after the convolution, BatchNorm cancels its bias and normalizes a symmetric signal.
# - The chapter's claims (larger learning rates, badly scaled weights, sigmoid units, internal
#   covariate shift) each get a verdict at a small budget, printed by the cells of section 4.
# - Whether small batches hurt `BatchNorm2d` here: section 5's verdicts (GroupNorm and LayerNorm
#   have no train/eval difference). Left in train mode, each prediction depends on its batch.
# - `requires_grad_(False)` does not freeze running statistics and `model.train()` undoes a
#   layer's `eval()`: put BatchNorm layers back in eval mode after every `model.train()`.
#
# ## Exercises
#
# Each exercise has a check cell: replace `None` with your answer and run the cell.
#
# **1.** A fresh `BatchNorm2d(1)` sees three train-mode batches of mean 2.0: its `running_mean`?

# %%
answer_1 = None
bn_exercise = nn.BatchNorm2d(1)
for _ in range(3):
    bn_exercise(torch.tensor([1.0, 3.0]).view(2, 1, 1, 1))    # mean 2.0
notebook.check_answer(answer_1, bn_exercise.running_mean.item())

# %% [markdown]
# **2.** A Keras model uses `BatchNormalization(momentum=0.99)`. Which `momentum` gives a
# PyTorch `BatchNorm2d` the same update, and after how many batches does a batch weigh half?

# %%
answer_2_momentum, answer_2_batches = None, None
notebook.check_answer(answer_2_momentum, 1 - 0.99)
notebook.check_answer(answer_2_batches, math.log(0.5) / math.log(0.99), digits=2)

# %% [markdown]
# ## References
#
# - S. Ioffe, C. Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
#   Internal Covariate Shift", ICML 2015, arXiv:1502.03167.
# - S. Santurkar, D. Tsipras, A. Ilyas, A. Madry, "How Does Batch Normalization Help
#   Optimization?", NeurIPS 2018, arXiv:1805.11604.
# - Y. Wu, K. He, "Group Normalization", ECCV 2018, arXiv:1803.08494.
# - J. L. Ba, J. R. Kiros, G. E. Hinton, "Layer Normalization", arXiv:1607.06450, 2016.
# - PyTorch documentation: `torch.nn.BatchNorm2d`, `torch.nn.GroupNorm`:
#   https://docs.pytorch.org/docs/stable/nn.html
# - Keras documentation, `BatchNormalization` (its momentum convention):
#   https://keras.io/api/layers/normalization_layers/batch_normalization/
# - H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
#   Machine Learning Algorithms", arXiv:1708.07747, 2017.
