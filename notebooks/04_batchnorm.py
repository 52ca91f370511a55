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
# # 04 · BatchNorm: train vs eval, by hand, and why it helps
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lr-course/lr-schedulers-regularization/blob/main/notebooks/04_batchnorm.ipynb)
#
# **What you will learn**
#
# - what `BatchNorm2d` computes in train mode and in eval mode, checked number by number
#   against PyTorch: batch statistics, running statistics, the momentum convention, the
#   unbiased `running_var`, `momentum=None`, `track_running_stats=False`, the batch of one;
# - why BatchNorm sits between the convolution and the ReLU, and why that convolution needs
#   no bias;
# - how fast the running statistics follow a change, for each momentum.
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
import copy
import inspect
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import data, models, notebook, plotting, training
from course_utils.widgets import regularization

device = notebook.report_device()   # a GPU when there is one

# %% tags=["parameters"]
FAST = notebook.fast_mode()                   # COURSE_FAST=1: small defaults for tests
TRAIN_SIZE = 1500 if FAST else 10000          # training images
VAL_SIZE = 500 if FAST else 5000              # images held out for validation
TEST_SIZE = 500 if FAST else None             # test images (None: all 10,000)
BATCH_SIZE = 64
LR = 0.05                                     # SGD with momentum 0.9, constant lr
SEED = 0                                      # the first seed; the others are SEED+1, ...

# %% [markdown]
# ## The data and the chapter's network
#
# Fashion-MNIST with a validation split (for the curves) and the test set (for the final
# table). `TensorLoader` keeps the images on the device and cuts normalized batches from them.

# %%
train_full, test = data.load_fashion_mnist()
train, val = data.lesson_split(train_full, val_size=VAL_SIZE, train_size=TRAIN_SIZE,
                               seed=SEED)
if TEST_SIZE is not None:
    test = data.stratified_subset(test, TEST_SIZE, seed=SEED)
# Training accuracy is measured on as many training images as there are validation images, so
# that both accuracies carry the same sampling noise.
train_sample = data.stratified_subset(train, VAL_SIZE, seed=SEED)
train_sample_loader = data.TensorLoader(train_sample, 1000, device=device)
val_loader = data.TensorLoader(val, 1000, device=device)
test_loader = data.TensorLoader(test, 1000, device=device)
print(f"{len(train):,} training, {len(val):,} validation, {len(test):,} test images")

# %% [markdown]
# The Regularization chapter's LeNet has two switches. `batch_norm=True` puts a `BatchNorm2d`
# between each convolution and its ReLU; `dropout=p` sets the probability of the `Dropout` at
# the end of the convolutional body (with `p = 0` it is an identity). The layers, in order:

# %% tags=["nbval-check-output"]
for batch_norm, dropout in [(False, 0.0), (True, 0.0), (False, 0.5), (True, 0.5)]:
    model = models.LeNet(batch_norm=batch_norm, dropout=dropout)
    names = " ".join(name for name, _ in model.features.named_children())
    print(f"LeNet(batch_norm={batch_norm!s:5}, dropout={dropout}): "
          f"{models.count_parameters(model):,} parameters | {names}")

# %% [markdown]
# What each layer of `LeNet(batch_norm=True, dropout=0.5)` makes of one batch of images:

# %% tags=["nbval-check-output"]
model = models.LeNet(batch_norm=True, dropout=0.5).eval()
X = torch.zeros(2, 1, 28, 28)                  # (N, 1, 28, 28)
for name, layer in list(model.features.named_children()) + list(model.classifier.named_children()):
    X = layer(X)
    print(f"{name:8} -> {tuple(X.shape)}")

# %% [markdown]
# BatchNorm adds 2 learnable numbers per channel (γ `weight` and β `bias`: 2 × (16 + 32 + 64)
# = 224) and three buffers. Buffers are not parameters, so the optimizer never sees them, but
# `state_dict()` saves them with the weights:

# %% tags=["nbval-check-output"]
with_bn = models.LeNet(batch_norm=True)
extra = models.count_parameters(with_bn) - models.count_parameters(models.LeNet())
buffers = [name for name, _ in with_bn.features.bn1.named_buffers()]
print("extra parameters:", extra)
print("parameters of bn1:", [name for name, _ in with_bn.features.bn1.named_parameters()])
print("buffers of bn1:   ", buffers)
assert extra == 2 * (16 + 32 + 64)
assert set(buffers) <= set(with_bn.features.bn1.state_dict())

# %% [markdown]
# ## 1. BatchNorm by hand
#
# `BatchNorm2d(C)` keeps one mean and one variance **per channel**, computed over the batch and
# both spatial dimensions: for an input of shape (N, C, H, W) each statistic averages N·H·W
# numbers. We check every formula on a small random batch, with γ and β set to values other
# than their defaults (1 and 0) so that the affine part is checked too. Tolerances (float32
# rounding): outputs agree with PyTorch within `1e-5` absolute, running statistics within
# `1e-6` absolute plus `1e-6` relative.

# %%
ATOL_OUTPUT, TOL_STATS = 1e-5, 1e-6


def stats_close(actual, expected):
    return torch.allclose(actual, expected, rtol=TOL_STATS, atol=TOL_STATS)


def per_channel(values):
    """(C,) -> (1, C, 1, 1), so that it broadcasts over (N, C, H, W)."""
    return values[None, :, None, None]


torch.manual_seed(SEED)
X = torch.randn(8, 3, 5, 5) * 2 + 1            # (N=8, C=3, H=5, W=5): 200 values per channel
bn = nn.BatchNorm2d(3)
with torch.no_grad():
    bn.weight.copy_(torch.tensor([1.5, 0.5, 2.0]))     # γ
    bn.bias.copy_(torch.tensor([0.1, -0.3, 1.0]))      # β
print(bn)
print("before any batch: running_mean", bn.running_mean.tolist(), "running_var",
      bn.running_var.tolist(), "num_batches_tracked", bn.num_batches_tracked.item())

# %% [markdown]
# ### Train mode: the batch's own statistics, with the biased variance
#
# y = γ · (x − mean) / √(var + eps) + β, where mean and var are this batch's, and var divides
# by N·H·W (the *biased* variance, `correction=0`), not by N·H·W − 1.

# %%
bn.train()
y_train = bn(X)
mean = X.mean(dim=(0, 2, 3))                              # (C,)
var_biased = X.var(dim=(0, 2, 3), correction=0)           # divides by 200
var_unbiased = X.var(dim=(0, 2, 3), correction=1)         # divides by 199


def normalize(X, mean, var, bn):
    return (per_channel(bn.weight) * (X - per_channel(mean)) / torch.sqrt(per_channel(var) + bn.eps)
            + per_channel(bn.bias))


with torch.no_grad():
    by_hand = normalize(X, mean, var_biased, bn)
    with_unbiased = normalize(X, mean, var_unbiased, bn)
print(f"max |torch - by hand|, biased variance:   {(y_train - by_hand).abs().max():.1e}")
print(f"max |torch - by hand|, unbiased variance: {(y_train - with_unbiased).abs().max():.1e}")
assert torch.allclose(y_train, by_hand, atol=ATOL_OUTPUT)
assert not torch.allclose(y_train, with_unbiased, atol=ATOL_OUTPUT)

# %% [markdown]
# ### The running statistics: momentum is the weight of the *new* batch
#
# In train mode every forward pass also updates two buffers:
#
#     running_mean = (1 − momentum) · running_mean + momentum · batch mean
#     running_var  = (1 − momentum) · running_var  + momentum · batch var (UNBIASED)
#
# They start at 0 and 1, and PyTorch's default `momentum=0.1` gives the newest batch a weight
# of 10 %. Note the unbiased variance: the forward pass normalizes with the biased one, but the
# buffer stores the unbiased one (the estimate of the population variance the original paper
# uses at inference).

# %% tags=["nbval-check-output"]
momentum = bn.momentum
print(f"momentum {momentum}")
print("batch mean     ", [f"{v:.4f}" for v in mean.tolist()])
print("running_mean   ", [f"{v:.4f}" for v in bn.running_mean.tolist()])
print("unbiased var   ", [f"{v:.4f}" for v in var_unbiased.tolist()])
print("running_var    ", [f"{v:.4f}" for v in bn.running_var.tolist()])
print("num_batches_tracked", bn.num_batches_tracked.item())

# %%
assert stats_close(bn.running_mean, (1 - momentum) * 0.0 + momentum * mean)
assert stats_close(bn.running_var, (1 - momentum) * 1.0 + momentum * var_unbiased)
assert not stats_close(bn.running_var, (1 - momentum) * 1.0 + momentum * var_biased)
assert bn.num_batches_tracked.item() == 1


# %% [markdown]
# Keras names the same number the other way round: its `momentum` is the weight of the *old*
# value (`moving = moving · momentum + batch · (1 − momentum)`), default 0.99. So PyTorch's 0.1
# is Keras' 0.9, and Keras' 0.99 is PyTorch's 0.01. Copy `momentum=0.99` from a Keras model
# into PyTorch and the running statistics become, almost entirely, the last batch's.

# %%
def keras_update(moving, batch_value, keras_momentum):
    """Keras' rule: `keras_momentum` is the weight of the OLD value."""
    return moving * keras_momentum + batch_value * (1 - keras_momentum)


# One batch from running_mean = 0: PyTorch's momentum m is Keras' momentum 1 - m.
assert stats_close(bn.running_mean, keras_update(torch.zeros(3), mean, 1 - momentum))

# %% tags=["nbval-check-output"]
print(f"{'PyTorch momentum':>16} {'Keras momentum':>15} {'batches until a batch weighs half':>34}")
half_lives = {}
for torch_momentum in (0.99, 0.5, 0.1, 0.01):
    half_life = math.log(0.5) / math.log(1 - torch_momentum)
    print(f"{torch_momentum:>16} {1 - torch_momentum:>15.2f} {half_life:>34.2f}")
    half_lives[torch_momentum] = round(half_life, 2)
notebook.record("batches_until_half", half_lives)

# %% [markdown]
# ### Eval mode: the running statistics, and no updates
#
# `bn.eval()` switches to y = γ · (x − running_mean) / √(running_var + eps) + β and freezes the
# buffers. Each sample's output now depends only on that sample; in train mode it depends on
# its batchmates too.

# %%
running_mean, running_var = bn.running_mean.clone(), bn.running_var.clone()
bn.eval()
y_eval = bn(X)
with torch.no_grad():
    by_hand = normalize(X, running_mean, running_var, bn)
print(f"max |torch - by hand| in eval mode: {(y_eval - by_hand).abs().max():.1e}")
assert torch.allclose(y_eval, by_hand, atol=ATOL_OUTPUT)
assert torch.equal(bn.running_mean, running_mean) and torch.equal(bn.running_var, running_var)
assert bn.num_batches_tracked.item() == 1
assert not torch.allclose(y_eval, y_train, atol=ATOL_OUTPUT)     # the same X, other numbers

# In eval mode the first sample gives the same output alone or in the batch ...
assert torch.allclose(bn(X[:1]), y_eval[:1], atol=ATOL_OUTPUT)
# ... in train mode it does not: its batchmates change the statistics.
bn_copy = copy.deepcopy(bn).train()
assert not torch.allclose(bn_copy(X[:4])[:1], bn_copy(X)[:1], atol=ATOL_OUTPUT)

# %% [markdown]
# ### `momentum=None`: a plain average of all batches
#
# With `momentum=None` the weight of the k-th batch is 1/k (`num_batches_tracked` counts
# them), so the running statistics are the plain averages of all batch statistics seen so far.

# %%
bn_average = nn.BatchNorm2d(3, momentum=None)
torch.manual_seed(SEED)
batches = [torch.randn(8, 3, 5, 5) * scale + scale for scale in (1.0, 2.0, 3.0)]
for batch in batches:
    bn_average(batch)
mean_of_means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(dim=0)
mean_of_vars = torch.stack([b.var(dim=(0, 2, 3), correction=1) for b in batches]).mean(dim=0)
assert stats_close(bn_average.running_mean, mean_of_means)
assert stats_close(bn_average.running_var, mean_of_vars)
print("running_mean:", [f"{v:.4f}" for v in bn_average.running_mean.tolist()],
      "= the average of the 3 batch means")

# %% [markdown]
# ### `track_running_stats=False`: batch statistics always
#
# Without running statistics there is nothing to use in eval mode, so BatchNorm normalizes with
# the batch's statistics in eval mode too (and the buffers are `None`).

# %%
bn_batch_only = nn.BatchNorm2d(3, track_running_stats=False).eval()
assert bn_batch_only.running_mean is None and bn_batch_only.running_var is None
with torch.no_grad():
    expected = (X - per_channel(mean)) / torch.sqrt(per_channel(var_biased) + bn_batch_only.eps)
assert torch.allclose(bn_batch_only(X), expected, atol=ATOL_OUTPUT)
print("eval mode output == batch-normalized X: True")

# %% [markdown]
# ### A batch of one
#
# In train mode BatchNorm needs more than one value per channel to compute a variance, and
# raises `ValueError: Expected more than 1 value per channel when training` otherwise. What
# counts is N·H·W, not the batch size N: a single image of 5 × 5 feature maps is fine for
# `BatchNorm2d` (its statistics are those of one image, a poor estimate, but no error), while
# `BatchNorm1d` after a linear layer fails on a batch of one. Eval mode never raises.

# %% tags=["nbval-check-output"]
def outcome(layer, shape, train):
    layer.train(train)
    try:
        layer(torch.randn(*shape))
        return "works"
    except ValueError:
        return "ValueError"


cases = [(nn.BatchNorm1d(3), (1, 3)), (nn.BatchNorm1d(3), (2, 3)),
         (nn.BatchNorm2d(3), (1, 3, 5, 5)), (nn.BatchNorm2d(3), (1, 3, 1, 1)),
         (nn.BatchNorm2d(3), (2, 3, 1, 1))]
print(f"{'layer':12} {'input shape':14} {'values/channel':>14} {'train mode':>11} "
      f"{'eval mode':>10}")
for layer, shape in cases:
    values = math.prod(shape) // shape[1]
    print(f"{type(layer).__name__:12} {str(shape):14} {values:>14} "
          f"{outcome(layer, shape, True):>11} {outcome(layer, shape, False):>10}")

# %% [markdown]
# Where this bites: a classifier head with `BatchNorm1d`, and a training set whose size leaves
# a last batch of exactly one image (here 129 = 64 + 64 + 1). The epoch crashes on that last
# batch. `drop_last=True` skips the incomplete batch.

# %%
head_model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 32), nn.BatchNorm1d(32), nn.ReLU(),
                           nn.Linear(32, 10))
odd_split = data.stratified_subset(train, 2 * BATCH_SIZE + 1, seed=SEED)   # 64 + 64 + 1
optimizer = torch.optim.SGD(head_model.parameters(), lr=LR)
try:
    training.train_one_epoch(head_model, data.TensorLoader(odd_split, BATCH_SIZE), optimizer)
    crashed = False
except ValueError as error:
    crashed = True
    print("drop_last=False: ValueError:", error)
training.train_one_epoch(head_model, data.TensorLoader(odd_split, BATCH_SIZE, drop_last=True),
                         optimizer)
print("drop_last=True: the epoch finishes")
assert crashed

# %% [markdown]
# ## 2. Why BatchNorm sits between the convolution and the ReLU
#
# Ioffe and Szegedy (2015) normalize x = Wu + b, the convolution's output, right before the
# nonlinearity. Two reasons, both checked below.
#
# ### The convolution before BatchNorm needs no bias
#
# BatchNorm subtracts each channel's mean, and a per-channel bias b shifts that mean by exactly
# b: it cancels. A convolution with a bias and the same convolution without one give the same
# output after BatchNorm, and the bias's gradient is zero: it never learns anything (β takes
# over its role). In float64 both hold to rounding error.

# %%
X_images, _ = next(iter(val_loader))
X_images = X_images[:64].cpu().double()                     # (64, 1, 28, 28) real images
torch.manual_seed(SEED)
conv_with_bias = nn.Conv2d(1, 16, 5).double()
conv_without_bias = nn.Conv2d(1, 16, 5, bias=False).double()
with torch.no_grad():
    conv_without_bias.weight.copy_(conv_with_bias.weight)
    conv_with_bias.bias.uniform_(-3, 3)                     # a large bias, to make the point
bn_with, bn_without = nn.BatchNorm2d(16).double(), nn.BatchNorm2d(16).double()
out_with = bn_with(conv_with_bias(X_images))                # (64, 16, 24, 24)
out_without = bn_without(conv_without_bias(X_images))
(out_with * torch.randn_like(out_with)).sum().backward()    # any loss will do
bias_grad = conv_with_bias.bias.grad.abs().max().item()
weight_grad = conv_with_bias.weight.grad.abs().max().item()
print(f"max |output with bias - output without|: {(out_with - out_without).abs().max():.1e}")
print(f"largest bias gradient {bias_grad:.1e}, largest weight gradient {weight_grad:.1e}")
assert torch.allclose(out_with, out_without, rtol=0, atol=1e-10)
assert bias_grad < 1e-8 * weight_grad

# %% [markdown]
# In eval mode the bias is not subtracted by the batch mean but by the running mean, which
# takes it in a little with every batch: after one batch the two running means differ by
# exactly momentum × bias, and the eval-mode outputs agree only once the running mean has
# caught up.

# %%
assert torch.allclose(bn_with.running_mean - bn_without.running_mean,
                      bn_with.momentum * conv_with_bias.bias.detach(), rtol=0, atol=1e-12)
with torch.no_grad():
    conv_out_with, conv_out_without = conv_with_bias(X_images), conv_without_bias(X_images)
    for batches in (1, 250):
        for module in (bn_with, bn_without):
            module.reset_running_stats()
            module.train()
        for _ in range(batches):
            bn_with(conv_out_with)
            bn_without(conv_out_without)
        bn_with.eval()
        bn_without.eval()
        difference = (bn_with(conv_out_with) - bn_without(conv_out_without)).abs().max().item()
        print(f"eval mode after {batches:3d} train-mode batches: max difference {difference:.1e}")
        if batches == 1:
            assert difference > 0.1                 # not caught up: the bias still shows
assert difference < 1e-9

# %% [markdown]
# `nn.Conv2d(..., bias=False)` before a BatchNorm saves those parameters. The chapter's LeNet
# keeps the bias: 16 + 32 + 64 = 112 numbers that cost little and learn nothing (section 4
# checks that training leaves them where they started).


# %% [markdown]
# ### A more symmetric signal to normalize
#
# The paper's second argument: the output of a convolution tends to be symmetric and
# "more Gaussian", while the output of a ReLU is not (a spike of zeros and a long positive
# tail). Normalized to mean 0, a symmetric channel is cut by the ReLU in the middle: about
# half of it is kept. We measure the skewness (0 for a symmetric distribution) at the second
# convolution of an untrained LeNet, on real images.

# %%
def skewness(values):
    """Per-channel skewness of (N, C, H, W) values, averaged over channels."""
    standardized = ((values - values.mean(dim=(0, 2, 3), keepdim=True))
                    / values.std(dim=(0, 2, 3), keepdim=True))
    return standardized.pow(3).mean(dim=(0, 2, 3)).mean().item()


training.set_seed(SEED)
body = models.LeNet(batch_norm=True).features.train()
X_images, _ = next(iter(val_loader))
with torch.no_grad():
    X_images = X_images.cpu()[:256]                         # (256, 1, 28, 28)
    u = body.relu1(body.bn1(body.conv1(X_images)))          # input of the second block
    pre_activation = body.conv2(u)                          # (256, 32, 20, 20): Wu + b
    bn_then_relu = body.relu2(body.bn2(pre_activation))     # conv -> BN -> ReLU
    relu_output = torch.relu(pre_activation)                # conv -> ReLU ...
    relu_then_bn = nn.BatchNorm2d(32)(relu_output)          # ... -> BN
kept_by_relu = (bn_then_relu > 0).double().mean().item()
print(f"skewness of the convolution's output (Wu + b): {skewness(pre_activation):+.2f}")
print(f"skewness of the ReLU's output:                 {skewness(relu_output):+.2f}")
print(f"conv -> BN -> ReLU keeps {kept_by_relu:.1%} of the values")
assert abs(skewness(pre_activation)) < 0.5 < skewness(relu_output)
assert 0.4 < kept_by_relu < 0.6

# %% [markdown]
# Put BatchNorm after the ReLU instead and it normalizes that lopsided signal: all the zeros
# land on one negative value, −mean/std, and the next layer receives negative inputs. (A
# channel's zeros are its minimum, so they become its new minimum.)

# %%
zeros = relu_output == 0
channel_minimum = relu_then_bn.amin(dim=(0, 2, 3), keepdim=True)          # (1, 32, 1, 1)
where_zeros_land = -relu_output.mean(dim=(0, 2, 3), keepdim=True) / torch.sqrt(
    relu_output.var(dim=(0, 2, 3), correction=0, keepdim=True) + 1e-5)   # -mean / std
on_minimum = channel_minimum.expand_as(relu_then_bn)[zeros]
assert torch.allclose(relu_then_bn[zeros], on_minimum, rtol=0, atol=1e-6)   # to rounding
# BatchNorm sums over 256 x 20 x 20 values per channel in float32: equal up to about 1e-4.
assert torch.allclose(channel_minimum, where_zeros_land, rtol=0, atol=1e-3)
assert (channel_minimum < 0).all()
print(f"{zeros.double().mean():.1%} of the values are zeros after the ReLU; after "
      f"ReLU -> BN they all sit at the channel minimum "
      f"(average {channel_minimum.mean():.2f})")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), constrained_layout=True)
panels = (("convolution output (Wu + b)", pre_activation),
          ("conv -> BN -> ReLU (the paper's order)", bn_then_relu),
          ("conv -> ReLU -> BN", relu_then_bn))
for index, (ax, (title, values)) in enumerate(zip(axes, panels)):
    channel = values[:, 0].flatten()                         # channel 0 of every image
    ax.hist(channel.tolist(), bins=60, color=plotting.style(index)["color"])
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("value (channel 0)")
axes[0].set_ylabel("count (log scale)")
fig.suptitle("One channel of the second block: symmetric before the ReLU, lopsided after it")
plt.show()


# %% [markdown]
# These are arguments, not laws: both orders train, and published comparisons on other
# networks disagree about which is better (Mishkin's CaffeNet benchmark found BatchNorm after
# the ReLU better on one network and before it better on another). Notebook 05 measures both
# orders on this network.
#
# ## 3. The momentum explorer
#
# **BatchNorm momentum.** The input's mean jumps from 0 to 3 at batch 40. With momentum m, k
# batches after the jump the running mean has covered 1 − (1 − m)ᵏ of it (ignoring the noise of
# each batch's mean); with `momentum=None` it is a plain average and covers only
# k / (40 + k). The number of batches until it covers 90 %:

# %% tags=["nbval-check-output"]
for momentum in (0.01, 0.1, 0.5, 0.9, None):
    print(f"momentum {momentum!s:5}: {regularization.batches_to_follow(momentum, 0.9, 40):4d} "
          "batches")

# %%
trace = regularization.running_stats_trace(0.1)
print(f"simulated with nn.BatchNorm1d: {trace.batches_to(0.9)} batches, closed form "
      f"{regularization.batches_to_follow(0.1)}")
assert abs(trace.batches_to(0.9) - regularization.batches_to_follow(0.1)) <= 3
last_batch_only = regularization.running_stats_trace(1.0)
assert all(math.isclose(running, batch, abs_tol=1e-6) for running, batch
           in zip(last_batch_only.running_means, last_batch_only.batch_means))

# %% tags=["nbval-ignore-output"]
regularization.batchnorm_momentum_explorer()

# %% [markdown]
# A small momentum averages over many batches: stable, but slow to follow a change (such as
# the drift of a layer's inputs while the weights before it train). A large one follows the
# latest batches: fast, but noisy; `momentum=1` keeps nothing but the last batch. With the
# default 0.1, the last 22 batches make up 90 % of the running mean.
#
# ## Summary
#
# - `BatchNorm2d` in train mode normalizes each channel with the batch's mean and *biased*
#   variance over (N, H, W); it updates `running_mean` and `running_var` (unbiased) with
#   weight `momentum` for the new batch (Keras' momentum is the complement). In eval mode it
#   uses the running statistics and updates nothing. `momentum=None` averages all batches;
#   `track_running_stats=False` uses batch statistics always.
# - A batch with a single value per channel raises in train mode: `BatchNorm1d` with one
#   sample, not `BatchNorm2d` with one image of several pixels. `drop_last=True` avoids it.
# - BatchNorm right after the convolution cancels its bias exactly in train mode (`bias=False`
#   is free; in eval mode once the running mean has caught up) and normalizes a roughly
#   symmetric signal; after the ReLU it normalizes a lopsided one.
#
# ## Exercises
#
# Each exercise has a check cell: replace `None` with your answer and run the cell.
#
# **1.** A fresh `BatchNorm2d(1)` (default momentum) sees three batches in train mode, each
# with mean exactly 2.0. What is `running_mean` afterwards? Work it out by hand first.

# %%
answer_1 = None
bn_exercise = nn.BatchNorm2d(1)
for _ in range(3):
    bn_exercise(torch.tensor([1.0, 3.0]).view(2, 1, 1, 1))    # mean 2.0
notebook.check_answer(answer_1, bn_exercise.running_mean.item())

# %% [markdown]
# **2.** A Keras model uses `BatchNormalization(momentum=0.99)`. Which `momentum` gives a
# PyTorch `BatchNorm2d` the same running-statistics update?

# %%
answer_2 = None
moving, batch_value = torch.tensor([0.3]), torch.tensor([2.0])
keras_result = keras_update(moving, batch_value, 0.99)
notebook.check_answer(answer_2, 1 - 0.99)
if answer_2 is not None:
    print("your PyTorch update:", ((1 - answer_2) * moving + answer_2 * batch_value).item(),
          "Keras:", keras_result.item())

# %% [markdown]
# **3.** Over how many numbers does `BatchNorm2d` average to compute one channel's mean for an
# input of shape (32, 16, 10, 10)?

# %%
answer_3 = None
notebook.check_answer(answer_3, 32 * 10 * 10)

# %% [markdown]
# ## References
#
# - S. Ioffe, C. Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
#   Internal Covariate Shift", ICML 2015, arXiv:1502.03167.
# - PyTorch documentation: `torch.nn.BatchNorm2d`: https://docs.pytorch.org/docs/stable/nn.html
# - Keras documentation, `BatchNormalization` (its momentum convention):
#   https://keras.io/api/layers/normalization_layers/batch_normalization/
# - D. Mishkin, "CaffeNet benchmark: BatchNorm", ImageNet experiments with BatchNorm before and
#   after the ReLU: https://github.com/ducha-aiki/caffenet-benchmark/blob/master/batchnorm.md
# - H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
#   Machine Learning Algorithms", arXiv:1708.07747, 2017.
