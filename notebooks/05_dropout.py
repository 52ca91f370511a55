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
# # 05 · Dropout: train vs eval, order, features, measured
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lr-course/lr-schedulers-regularization/blob/main/notebooks/05_dropout.ipynb)
#
# **What you will learn**
#
# - what `Dropout` computes: the 1/(1-p) scaling, the identity in eval mode, `Dropout2d`,
#   the `F.dropout` trap, and the variance shift when Dropout feeds a BatchNorm;
# - what the orderings and the two switches of the chapter's `LeNet(batch_norm=..., dropout=...)`
#   do on Fashion-MNIST, over several seeds, with the spread reported honestly;
# - that `model.eval()` and `torch.no_grad()` are two independent switches, and what goes
#   wrong when you flip only one;
# - whether dropout changes the features a network learns, measured.
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
EPOCHS = 2 if FAST else 10                    # epochs of every training run
NUM_SEEDS = 2 if FAST else 3                  # seeds per network, to see the spread
TRAIN_SIZE = 1500 if FAST else 10000          # training images
VAL_SIZE = 500 if FAST else 5000              # images held out for validation
TEST_SIZE = 500 if FAST else None             # test images (None: all 10,000)
BATCH_SIZE = 64
LR = 0.05                                     # SGD with momentum 0.9, constant lr
DROPOUT = 0.5                                 # the p of every Dropout layer
SEED = 0                                      # the first seed; the others are SEED+1, ...

# %% [markdown]
# Full mode trains 6 networks × 3 seeds for 10 epochs on 10,000 images (180 epochs of
# training in all; a GPU helps). Fast mode (`COURSE_FAST=1`) trains on 1,500 images for 2
# epochs: its numbers are a smoke test that the code runs, not evidence about regularization.
#
# Why 10,000 images and not all 55,000 in full mode: regularizers act on the gap between how
# well a network does on its training images and on new ones. A small training set leaves that
# gap room to open within 10 epochs, and keeps 180 epochs of training affordable. Section 2
# measures the gap.

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
seeds = [SEED + i for i in range(NUM_SEEDS)]
print(f"{len(train):,} training, {len(val):,} validation, {len(test):,} test images; "
      f"seeds {seeds}")

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
# ## 1. Dropout by hand
#
# `nn.Dropout(p)` zeroes each value with probability p in train mode and multiplies the
# survivors by 1/(1 − p) ("inverted" dropout), so the expected value of every output equals its
# input. In eval mode it is the identity: no rescaling is needed at test time. The statistical
# checks below allow 4 standard errors; the others hold to float32 precision.

# %%
p = 0.25
torch.manual_seed(SEED)
X = torch.rand(100_000) + 0.5                  # (n,) values in [0.5, 1.5): none is 0
dropout = nn.Dropout(p)
y = dropout.train()(X)
kept = y != 0
n = len(X)
dropped_fraction = 1 - kept.double().mean().item()
print(f"dropped fraction {dropped_fraction:.4f} (p = {p})")
print(f"mean of the inputs {X.mean():.4f}, mean of the outputs {y.mean():.4f}")
print(f"mean square of the inputs / (1 - p) {(X ** 2).mean() / (1 - p):.4f}, "
      f"of the outputs {(y ** 2).mean():.4f}")
# The survivors are the inputs times 1/(1 - p), to float32 precision:
assert torch.allclose(y[kept], X[kept] / (1 - p), rtol=1e-6, atol=0)
assert abs(dropped_fraction - p) < 4 * math.sqrt(p * (1 - p) / n)
assert abs(y.mean() - X.mean()) < 4 * y.std() / math.sqrt(n)              # same expectation
# ... but a larger second moment, E[y²] = E[x²] / (1 - p): the variance grows in train mode.
assert abs((y ** 2).mean() - (X ** 2).mean() / (1 - p)) < 4 * (y ** 2).std() / math.sqrt(n)
assert torch.equal(dropout.eval()(X), X)                                   # eval: identity

# %% [markdown]
# On a constant input the train-mode output has exactly two values, 0 and 1/(1 − p):

# %% tags=["nbval-check-output"]
ones = torch.ones(1000)
print("p = 0.25:", sorted(round(v, 4) for v in nn.Dropout(0.25)(ones).unique().tolist()))
print("p = 0.5: ", sorted(round(v, 4) for v in nn.Dropout(0.5)(ones).unique().tolist()))
print("p = 0.8: ", sorted(round(v, 4) for v in nn.Dropout(0.8)(ones).unique().tolist()))

# %% [markdown]
# ### `Dropout` or `Dropout2d` on feature maps
#
# On a feature map (N, C, H, W), `nn.Dropout` zeroes single pixels, while `nn.Dropout2d` zeroes
# whole channels: each (sample, channel) map is kept entirely (and scaled) or zeroed entirely.
# Neighbouring pixels of a feature map are strongly correlated (measured below on the first
# convolution of an untrained LeNet), and Tompson et al. (2015) argue that zeroing single
# pixels then regularizes little, since each zero can be filled in from its neighbours;
# dropping whole maps cannot be.

# %%
def neighbour_correlation(maps):
    """Correlation between horizontally adjacent values of (N, C, H, W) maps, mean over C."""
    left = maps[..., :-1].transpose(0, 1).flatten(1)           # (C, N·H·(W-1))
    right = maps[..., 1:].transpose(0, 1).flatten(1)
    return torch.stack([torch.corrcoef(torch.stack([a, b]))[0, 1]
                        for a, b in zip(left, right)]).mean().item()


training.set_seed(SEED)
X_images, _ = next(iter(val_loader))
with torch.no_grad():
    feature_maps = models.LeNet().features.conv1(X_images[:256].cpu())   # (256, 16, 24, 24)
print(f"correlation of neighbouring values in conv1's maps: "
      f"{neighbour_correlation(feature_maps):.2f}")
assert neighbour_correlation(feature_maps) > 0.5

# %%
torch.manual_seed(SEED)
maps = torch.ones(64, 16, 8, 8)                          # (N, C, H, W)
pixelwise = nn.Dropout(0.5)(maps).flatten(2)             # (N, C, H·W)
channelwise = nn.Dropout2d(0.5)(maps).flatten(2)
whole_maps = ((channelwise == 0).all(dim=2) | (channelwise == 2.0).all(dim=2)).all()
empty_pixelwise = (pixelwise == 0).all(dim=2).double().mean().item()
empty_channelwise = (channelwise == 0).all(dim=2).double().mean().item()
print(f"fraction of maps zeroed entirely: Dropout {empty_pixelwise:.3f}, "
      f"Dropout2d {empty_channelwise:.3f}")
print(f"fraction of single values zeroed: Dropout {(pixelwise == 0).double().mean():.3f}, "
      f"Dropout2d {(channelwise == 0).double().mean():.3f}")
assert whole_maps                                        # every map all 0 or all 1/(1-p)
assert empty_pixelwise == 0.0                            # 64 coin flips all heads: ~5e-20
assert abs(empty_channelwise - 0.5) < 4 * math.sqrt(0.25 / (64 * 16))

fig, axes = plt.subplots(2, 8, figsize=(10, 3), constrained_layout=True)
for row, (name, values) in enumerate((("Dropout", pixelwise), ("Dropout2d", channelwise))):
    for channel, ax in enumerate(axes[row]):
        ax.imshow(values[0, channel].view(8, 8), cmap="gray", vmin=0, vmax=2)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"channel {channel}", fontsize=8)
    axes[row, 0].set_ylabel(name)
fig.suptitle("The same 8 channels of one sample (white: kept ×2, black: zeroed): "
             "Dropout drops pixels, Dropout2d drops whole maps")
plt.show()


# %% [markdown]
# ### The `F.dropout` trap
#
# `nn.Dropout` reads its module's `training` flag. The function `F.dropout` cannot: it has a
# `training` argument, and its default is `True`. A `forward` that calls `F.dropout(x, 0.5)`
# keeps dropping after `model.eval()`.

# %%
class Head(nn.Module):
    def __init__(self, pass_training_flag: bool):
        super().__init__()
        self.pass_training_flag = pass_training_flag
        self.fc = nn.Linear(20, 20)

    def forward(self, X):
        hidden = torch.relu(self.fc(X))
        if self.pass_training_flag:
            return F.dropout(hidden, p=0.5, training=self.training)   # right
        return F.dropout(hidden, p=0.5)                               # the trap


assert inspect.signature(F.dropout).parameters["training"].default is True
torch.manual_seed(SEED)
X = torch.randn(4, 20)
for flag in (False, True):
    head = Head(flag).eval()
    same = torch.equal(head(X), head(X))
    print(f"pass training=self.training: {flag!s:5} -> two eval-mode calls agree: {same}")
    assert same == flag

# %% [markdown]
# ### Dropout before BatchNorm: the variance shift
#
# Dropout makes its output's variance larger in train mode than in eval mode (the second
# moment grows by 1/(1 − p), as checked above). A BatchNorm *after* it learns its running
# variance from the train-mode signal, then in eval mode divides the smaller eval-mode signal by
# that too-large variance. Li et al. (2019) call this the variance shift. The simplest case:
# x ~ N(0, 1), Dropout(0.5), then a BatchNorm1d without γ and β whose running variance averages
# 200 batches.

# %%
def variance_shift(dropout_first: bool, p: float = 0.5, seed: int = SEED):
    dropout, bn = nn.Dropout(p), nn.BatchNorm1d(64, affine=False, momentum=None)
    block = nn.Sequential(dropout, bn) if dropout_first else nn.Sequential(bn, dropout)
    torch.manual_seed(seed)
    block.train()
    with torch.no_grad():
        for _ in range(200):
            train_output = block(torch.randn(256, 64))            # (256, 64)
        block.eval()
        eval_output = block(torch.randn(4096, 64))
    return bn.running_var.mean().item(), train_output.std().item(), eval_output.std().item()


print(f"{'order':22} {'BN running_var':>15} {'output std, train':>18} {'output std, eval':>17}")
shift = {}
for dropout_first, name in ((True, "Dropout -> BatchNorm"), (False, "BatchNorm -> Dropout")):
    shift[name] = variance_shift(dropout_first)
    print(f"{name:22} {shift[name][0]:>15.3f} {shift[name][1]:>18.3f} {shift[name][2]:>17.3f}")

# %% [markdown]
# Dropout first: the running variance is 1/(1 − p) = 2 instead of 1, and in eval mode the
# BatchNorm's output has a standard deviation of √(1 − p) ≈ 0.707 instead of the 1 it had in
# training: every layer after it sees a signal 30 % weaker than the one it was trained on.
# BatchNorm first: both are 1. The checks, with tolerances of a few standard errors:

# %%
running_var_dropout_first, train_std_dropout_first, eval_std_dropout_first = \
    shift["Dropout -> BatchNorm"]
running_var_bn_first, _, eval_std_bn_first = shift["BatchNorm -> Dropout"]
assert abs(running_var_dropout_first - 1 / (1 - 0.5)) < 0.05
assert abs(train_std_dropout_first - 1.0) < 0.02
assert abs(eval_std_dropout_first - math.sqrt(1 - 0.5)) < 0.02
assert abs(running_var_bn_first - 1.0) < 0.03 and abs(eval_std_bn_first - 1.0) < 0.02

# %% [markdown]
# The chapter's LeNet puts its Dropout at the very end of the body, after the last BatchNorm,
# where this cannot happen. Section 2 measures the shift inside a trained network that does
# it the other way.
#
#
# ## 2. Six networks, trained side by side
#
# The chapter's `LeNet(batch_norm=True, dropout=p)` is this `nn.Sequential`; we check that it is
# the same network (same parameters, and with the same seed the same weights and outputs):

# %%
def paper_order():
    """Conv -> BN -> ReLU (-> pool) in each block, Dropout after the last BatchNorm."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(DROPOUT),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 10))


training.set_seed(SEED)
lenet = models.LeNet(batch_norm=True, dropout=DROPOUT).eval()
training.set_seed(SEED)
sequential = paper_order().eval()
X_images, _ = next(iter(val_loader))
X_images = X_images[:16].cpu()
assert models.count_parameters(lenet) == models.count_parameters(sequential)
assert torch.allclose(lenet(X_images), sequential(X_images), rtol=0, atol=1e-6)
print("models.LeNet(batch_norm=True, dropout=DROPOUT) == paper_order(): True")


# %% [markdown]
# The two alternatives each change one thing in it:

# %%
def bn_after_relu():
    """Conv -> ReLU -> BN (-> pool): BatchNorm after the nonlinearity."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.ReLU(), nn.BatchNorm2d(16),
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.BatchNorm2d(32), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.BatchNorm2d(64), nn.MaxPool2d(2),
        nn.Dropout(DROPOUT),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 10))


def dropout_before_bn():
    """The paper's order, but the Dropout moves before the last block: it feeds conv -> BN."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(DROPOUT),
        nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 10))


# %% [markdown]
# Six networks: the chapter's four combinations of the two switches, and the two alternative
# orderings. Every network is trained with every seed; for a given seed all of them see the
# same batches in the same order and start from the same convolution and linear weights
# (BatchNorm, ReLU and Dropout draw no random numbers when they are built, and BatchNorm
# starts at γ = 1, β = 0). Same optimizer (SGD, momentum 0.9, lr `LR`), same budget.

# %%
NETWORKS = {
    "no regularization": lambda: models.LeNet(),
    "BN": lambda: models.LeNet(batch_norm=True),
    "Dropout": lambda: models.LeNet(dropout=DROPOUT),
    "BN + Dropout": lambda: models.LeNet(batch_norm=True, dropout=DROPOUT),
    "BN after ReLU": bn_after_relu,
    "Dropout before BN": dropout_before_bn,
}


def conv_and_linear_weights(model):
    return [module.weight for module in model.modules()
            if isinstance(module, (nn.Conv2d, nn.Linear))]


for seed in seeds:
    starts = []
    for make_model in NETWORKS.values():
        training.set_seed(seed)
        starts.append(conv_and_linear_weights(make_model()))
    assert all(torch.equal(first, other) for weights in starts[1:]
               for first, other in zip(starts[0], weights))
print("same seed -> all six networks start from the same convolution and linear weights")


def train_network(make_model, seed):
    """Train a fresh network, seeded with `seed`, for EPOCHS epochs; return it and its History."""
    training.set_seed(seed)
    model = make_model().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    train_loader = data.TensorLoader(train, BATCH_SIZE, shuffle=True, device=device, seed=seed)
    history = training.fit(model, train_loader, val_loader, optimizer, epochs=EPOCHS)
    return model, history


runs = {name: [train_network(make_model, seed) for seed in seeds]
        for name, make_model in NETWORKS.items()}
assert all(history.stopped is None for results in runs.values() for _, history in results)

# %% [markdown]
# First, a promise from notebook 04 (section 2): the bias of a convolution followed by a BatchNorm learns
# nothing. Compared with its own starting weights (same seed), the trained "BN" network:

# %%
for seed, (model, _) in zip(seeds, runs["BN"]):
    training.set_seed(seed)
    start = models.LeNet(batch_norm=True).features
    for conv in ("conv1", "conv2", "conv3"):
        trained_conv, start_conv = getattr(model.features, conv), getattr(start, conv)
        bias_moved = (trained_conv.bias.detach().cpu() - start_conv.bias).abs().max().item()
        weight_moved = (trained_conv.weight.detach().cpu() - start_conv.weight).abs().max().item()
        if seed == SEED:
            print(f"{conv}: the bias moved by at most {bias_moved:.1e}, "
                  f"the weights by up to {weight_moved:.2f}")
        assert bias_moved < 1e-3 * weight_moved


# %% [markdown]
# The curves, averaged over the seeds. The training loss is the one `fit` measures on the fly,
# in train mode: with Dropout it is the loss of the network *with* units dropped.

# %%
def mean_history(histories):
    """A History whose every number is the mean over the given runs."""
    records = []
    for epoch_records in zip(*(history.records for history in histories)):
        records.append({key: sum(r[key] for r in epoch_records) / len(epoch_records)
                        for key in epoch_records[0]})
    return training.History(records)


mean_histories = {name: mean_history([h for _, h in results]) for name, results in runs.items()}
chapter = ["no regularization", "BN", "Dropout", "BN + Dropout"]
plotting.plot_histories({name: mean_histories[name] for name in chapter},
                        ("train_loss", "val_loss", "val_acc"),
                        title=f"The chapter's four LeNets (mean of {NUM_SEEDS} seeds): "
                              "where do training and validation loss part?")
plt.show()
plotting.plot_histories({name: mean_histories[name]
                         for name in ("BN + Dropout", "BN after ReLU", "Dropout before BN")},
                        ("train_loss", "val_loss", "val_acc"),
                        title="Orderings: the paper's (BN + Dropout) against two alternatives")
plt.show()

# %% [markdown]
# The table measures, after the last epoch: accuracy on a sample of the training images (in
# eval mode, so with Dropout off: the same network the test set sees), on the validation
# images, the gap between the two (how much better the network fits its training images than
# new ones), and the test accuracy. Each cell is the mean ± the standard deviation over the
# seeds.

# %%
def mean_and_spread(values):
    values = torch.tensor(values, dtype=torch.float64)
    spread = values.std().item() if len(values) > 1 else float("nan")
    return values.mean().item(), spread


per_run = {}       # name -> one dict of measurements per seed
for name, results in runs.items():
    per_run[name] = []
    for model, history in results:
        _, train_acc = training.evaluate(model, train_sample_loader)
        _, test_acc = training.evaluate(model, test_loader)
        val_acc = history.val_acc[-1]
        per_run[name].append({"train_acc": train_acc, "val_acc": val_acc,
                              "gap": train_acc - val_acc, "test_acc": test_acc})
measures = {name: {key: mean_and_spread([row[key] for row in rows]) for key in rows[0]}
            for name, rows in per_run.items()}

print(f"{'network':20} {'train acc':>16} {'val acc':>16} {'gap (train-val)':>16} "
      f"{'test acc':>16}")
for name, measure in measures.items():
    cells = [f"{100 * m:6.2f} ± {100 * s:4.2f}" for m, s in
             (measure[key] for key in ("train_acc", "val_acc", "gap", "test_acc"))]
    print(f"{name:20} " + " ".join(f"{cell:>16}" for cell in cells))
print(f"(percent; {NUM_SEEDS} seeds, {EPOCHS} epochs, {len(train):,} training images)")
notebook.record("test_acc", {name: round(m["test_acc"][0], 4) for name, m in measures.items()})
notebook.record("train_val_gap", {name: round(m["gap"][0], 4) for name, m in measures.items()})

# %%
for name, measure in measures.items():
    assert measure["test_acc"][0] > 0.5, f"{name} should be far above chance (10 %)"

# %% [markdown]
# How to read it honestly: with a few seeds, a difference is only worth a sentence when it is
# larger than the noise. The next cell compares each network with its reference seed by seed
# (the seeds pair the runs: same batches, and the same starting weights where the layers
# match) and calls a difference "within noise" when it is smaller than twice the larger of two
# noise scales: the spread of the paired differences over the seeds, and the standard error of
# one accuracy measured on this many images.

# %%
def paired_difference(name, reference, key, images):
    """Mean over seeds of per_run[name][key] - per_run[reference][key], and its noise scale."""
    differences = [row[key] - reference_row[key]
                   for row, reference_row in zip(per_run[name], per_run[reference])]
    difference, spread = mean_and_spread(differences)
    accuracy = measures[reference]["test_acc"][0]
    noise = max(0.0 if math.isnan(spread) else spread,
                math.sqrt(accuracy * (1 - accuracy) / images))
    return difference, noise


COMPARISONS = [("BN", "no regularization"), ("Dropout", "no regularization"),
               ("BN + Dropout", "no regularization"), ("BN after ReLU", "BN + Dropout"),
               ("Dropout before BN", "BN + Dropout")]
verdicts = {}
print(f"{'network':18} {'reference':18} {'test acc (points)':>32} {'gap (points)':>32}")
for name, reference in COMPARISONS:
    cells = []
    for key, images, (up, down) in (("test_acc", len(test), ("higher", "lower")),
                                    ("gap", len(val), ("larger", "smaller"))):
        difference, noise = paired_difference(name, reference, key, images)
        verdict = ("within noise" if abs(difference) < 2 * noise else
                   up if difference > 0 else down)
        verdicts[f"{name} vs {reference}: {key}"] = verdict
        cells.append(f"{100 * difference:+6.2f} ± {100 * noise:4.2f} {verdict:>12}")
    print(f"{name:18} {reference:18} " + " ".join(f"{cell:>32}" for cell in cells))
notebook.record("verdicts", verdicts)

# %% [markdown]
# What to look for. In fast mode most verdicts read "within noise": 2 epochs on 1,500 images is
# a smoke test. In full mode, three questions, which the next cell answers for your run from
# the verdicts above:
#
# - **The gap**, where a regularizer against overfitting should show: does Dropout shrink it?
#   Does BatchNorm?
# - **Test accuracy**: does either raise it? A smaller gap and a higher accuracy are different
#   things; one can come without the other.
# - **The orderings**: with three seeds, "within noise", or a difference only just beyond it,
#   means "no clear difference on this network", not a ranking.

# %%
for name in ("BN", "Dropout", "BN + Dropout"):
    print(f"{name} vs no regularization: the gap is "
          f"{verdicts[f'{name} vs no regularization: gap']}, the test accuracy "
          f"{verdicts[f'{name} vs no regularization: test_acc']}")
for name in ("BN after ReLU", "Dropout before BN"):
    print(f"{name} vs the paper's order (BN + Dropout): the test accuracy is "
          f"{verdicts[f'{name} vs BN + Dropout: test_acc']}")

# %% [markdown]
# ### The variance shift inside a trained network
#
# In "Dropout before BN" the last BatchNorm's input passes through Dropout first. During
# training, its running variance tracks the variance of that input *with units dropped*; in
# eval mode the input arrives without dropping. To see the size of the shift in a trained
# network, we put the network in eval mode, switch only its Dropout layers back to train mode,
# and compare the variance of the last BatchNorm's input with and without dropping (same
# weights, same validation images; per channel, then averaged). A ratio above 1 is the factor
# by which that BatchNorm's running variance overestimates what it gets in eval mode. In the
# paper's order the Dropout comes after that BatchNorm, so its input cannot depend on it: the
# ratio is exactly 1.

# %%
def variance_shift_ratio(model):
    """Variance of the last BatchNorm's input with Dropout dropping divided by its variance
    without: every BatchNorm in eval mode, same weights, same images. Mean over channels."""
    model = copy.deepcopy(model).eval()
    last_bn = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)][-1]
    inputs = []
    hook = last_bn.register_forward_hook(lambda module, args, output: inputs.append(args[0]))
    variances = {}
    for dropping in (True, False):
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.train(dropping)
        inputs.clear()
        with torch.no_grad():
            for X, _ in val_loader:
                model(X)
        variances[dropping] = torch.cat(inputs).var(dim=(0, 2, 3))     # (64,)
    hook.remove()
    return (variances[True] / variances[False]).mean().item()


ratios = {name: [variance_shift_ratio(model) for model, _ in runs[name]]
          for name in ("BN + Dropout", "Dropout before BN")}
for name, values in ratios.items():
    print(f"{name:18}: variance with dropping / without = "
          + ", ".join(f"{v:.3f}" for v in values) + "  (one per seed)")
assert all(abs(ratio - 1) < 1e-6 for ratio in ratios["BN + Dropout"])
assert all(ratio > 1 for ratio in ratios["Dropout before BN"])
notebook.record("variance_shift_ratio", {name: [round(v, 3) for v in values]
                                         for name, values in ratios.items()})

# %% [markdown]
# ## 3. `model.eval()` and `torch.no_grad()` are two independent switches
#
# `model.eval()` sets `training = False` in every submodule: BatchNorm switches to its running
# statistics, Dropout to the identity. `torch.no_grad()` stops autograd from recording the
# computation: less memory, no gradients. Neither does the other's job. A small network shows
# all four combinations:

# %% tags=["nbval-check-output"]
torch.manual_seed(SEED)
tiny = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
X = torch.randn(8, 4)
bn_calls = []      # (input, output) of the BatchNorm, at every call
tiny[1].register_forward_hook(lambda module, inputs, output: bn_calls.append((inputs[0], output)))


def stats_used(bn, x, y, running_mean, running_var):
    """'running' if bn turned x into y with the given running statistics, else 'batch'."""
    with_running = F.batch_norm(x, running_mean, running_var, bn.weight, bn.bias,
                                training=False, eps=bn.eps)
    return "running" if torch.allclose(y, with_running) else "batch"


print(f"{'mode':6} {'no_grad':8} {'BN stats used':14} {'running stats updated':22} "
      f"{'Dropout active':15} {'graph recorded':14}")
for train_mode in (True, False):
    for no_grad in (False, True):
        tiny.train(train_mode)
        tracked = tiny[1].num_batches_tracked.item()
        running = tiny[1].running_mean.clone(), tiny[1].running_var.clone()
        bn_calls.clear()
        with torch.set_grad_enabled(not no_grad):
            first, second = tiny(X), tiny(X)
        used = stats_used(tiny[1], *bn_calls[0], *running)
        assert used == ("batch" if train_mode else "running")
        updated = tiny[1].num_batches_tracked.item() > tracked
        print(f"{'train' if train_mode else 'eval':6} {no_grad!s:8} "
              f"{used:14} {updated!s:22} "
              f"{not torch.equal(first, second)!s:15} {first.requires_grad!s:14}")

# %% [markdown]
# `eval()` without `no_grad()` gives exactly the right numbers; it only spends memory on a graph
# nobody will use:

# %%
tiny.eval()
with_graph = tiny(X)
with torch.no_grad():
    without_graph = tiny(X)
assert torch.equal(with_graph, without_graph)
assert with_graph.requires_grad and not without_graph.requires_grad
print("eval() alone and eval() + no_grad(): the same numbers; only the first recorded a graph")

# %% [markdown]
# `no_grad()` without `eval()` is the dangerous one: the numbers are wrong, and BatchNorm's
# running statistics change. We take the trained "BN + Dropout" network and "validate" it the
# wrong way, with `torch.no_grad()` only.

# %%
trained, _ = runs["BN + Dropout"][0]
model = copy.deepcopy(trained)
bn1 = model.features.bn1
_, right_acc = training.evaluate(model, val_loader)        # eval() + no_grad(), done right
running_mean_before = bn1.running_mean.clone()
tracked_before = bn1.num_batches_tracked.item()

X_val, y_val = next(iter(val_loader))                       # (1000, 1, 28, 28)
with torch.no_grad():
    right_logits = model.eval()(X_val)

model.train()                                               # forgot model.eval()
correct = 0
with torch.no_grad():
    wrong_logits = copy.deepcopy(model)(X_val)              # (a copy: keep bn1's counts clean)
    for X, y in val_loader:
        correct += (model(X).argmax(dim=1) == y).sum().item()
wrong_acc = correct / len(val)
moved = (bn1.running_mean - running_mean_before).abs().max().item()
_, right_acc_after = training.evaluate(model, val_loader)

print(f"validation accuracy, eval() + no_grad():         {right_acc:.2%}")
print(f"validation accuracy, no_grad() only:             {wrong_acc:.2%}")
print(f"bn1.num_batches_tracked went from {tracked_before} to "
      f"{bn1.num_batches_tracked.item()}; running_mean moved by up to {moved:.4f}")
print(f"validation accuracy, done right, afterwards:     {right_acc_after:.2%}")
assert not torch.allclose(wrong_logits, right_logits, atol=1e-3)
assert bn1.num_batches_tracked.item() == tracked_before + len(val_loader)
assert moved > 0

# %% [markdown]
# The accuracy measured without `eval()` is not the network's accuracy: Dropout was dropping
# and BatchNorm used each batch's statistics. And the network itself changed: its running
# statistics now follow the validation batches, so a correct evaluation afterwards measures a
# different network than the one you trained (whether its accuracy went up or down, the number
# no longer describes the trained network).
#
# Batches unlike the training batches do more damage. Here the same network predicts one
# image at a time without `eval()`, as a deployed model might: BatchNorm normalizes every image
# with that image's own statistics (and Dropout drops units), and predictions change. The cell
# counts how many.

# %%
model = copy.deepcopy(trained)
count = 200
with torch.no_grad():
    eval_predictions = model.eval()(X_val[:count]).argmax(dim=1)
    model.train()                                           # forgot model.eval() again
    one_at_a_time = torch.cat([model(X_val[i:i + 1]).argmax(dim=1) for i in range(count)])
single_acc = (one_at_a_time == y_val[:count]).double().mean().item()
eval_acc = (eval_predictions == y_val[:count]).double().mean().item()
changed = (one_at_a_time != eval_predictions).double().mean().item()
print(f"accuracy on {count} images: eval mode {eval_acc:.2%}, one at a time in train mode "
      f"{single_acc:.2%}; {changed:.1%} of the predictions differ")
assert changed > 0
notebook.record("eval_vs_no_grad", {"right": right_acc, "no_grad_only": wrong_acc,
                                    "right_afterwards": right_acc_after,
                                    "one_at_a_time_train_mode": single_acc})

# %% [markdown]
# Forgetting `eval()` with Dropout has a second symptom: the same images get different
# predictions from one call to the next.

# %%
dropout_model, _ = runs["Dropout"][0]
dropout_model = copy.deepcopy(dropout_model)
with torch.no_grad():
    dropout_model.train()
    first, second = dropout_model(X_val), dropout_model(X_val)
    changed = (first.argmax(dim=1) != second.argmax(dim=1)).double().mean().item()
    dropout_model.eval()
    assert torch.equal(dropout_model(X_val), dropout_model(X_val))
print(f"train mode: {changed:.1%} of {len(X_val)} predicted classes change between two calls")
print("eval mode: two calls agree exactly")
assert not torch.equal(first, second) and changed > 0

# %% [markdown]
# The habit that avoids all of this (and what `training.evaluate` does):
#
# ```python
# model.eval()
# with torch.no_grad():
#     ...            # validate or predict
# model.train()      # before the next training epoch
# ```
#
# ## 4. Does dropout change the features?
#
# The source says that dropout reduces co-adaptation (units that only work in combination with
# particular other units), that features look sharper and that hidden activations change. We
# compare "no regularization" with "Dropout", which differ only in the Dropout layer: with the
# same seed they even start from the same weights.

# %%
for seed in seeds:
    training.set_seed(seed)
    plain_start = models.LeNet().state_dict()
    training.set_seed(seed)
    dropout_start = models.LeNet(dropout=DROPOUT).state_dict()
    assert all(torch.equal(plain_start[key], dropout_start[key]) for key in plain_start)
print("same seed -> the same starting weights, with or without Dropout")


# %% [markdown]
# Three measurements, in eval mode on the validation images, averaged over the seeds:
#
# - **the hidden activations Dropout acts on** (the 1,024 values at the end of the body, which
#   the classifier reads): the fraction that is active (> 0); the fraction of units that are
#   never active on any validation image (dead units);
# - **co-adaptation**, for which we use a simple proxy: the mean absolute correlation between
#   pairs of hidden units over the validation images (units that fire together have high
#   correlation);
# - **the first-layer filters**: how far training moved them from their common start
#   (relative change of the weights), and how rough they are (mean squared difference between
#   neighbouring weights relative to the mean squared weight: a sharp edge detector is rough, a
#   smooth blob is not).

# %%
def hidden_activations(model):
    """The (N, 1024) values the classifier reads, on the validation images, in eval mode."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model.features(X).flatten(1) for X, _ in val_loader]).cpu()


def feature_measures(model, seed):
    hidden = hidden_activations(model)                          # (N, 1024)
    active = hidden > 0
    alive = hidden[:, active.any(dim=0)]                        # units active at least once
    correlation = torch.corrcoef(alive.T)                       # (units, units)
    off_diagonal = correlation[~torch.eye(len(correlation), dtype=torch.bool)]
    weights = model.features.conv1.weight.detach().cpu()        # (16, 1, 5, 5)
    training.set_seed(seed)
    start = models.LeNet().features.conv1.weight.detach()
    roughness = (((weights[..., 1:, :] - weights[..., :-1, :]) ** 2).mean()
                 + ((weights[..., :, 1:] - weights[..., :, :-1]) ** 2).mean()) / (
        2 * (weights ** 2).mean())
    return {"active fraction": active.double().mean().item(),
            "dead units": 1 - active.any(dim=0).double().mean().item(),
            "mean |correlation|": off_diagonal.abs().mean().item(),
            "filter change": ((weights - start).norm() / start.norm()).item(),
            "filter roughness": roughness.item()}


feature_table, feature_verdicts = {}, {}
for name in ("no regularization", "Dropout"):
    per_seed = [feature_measures(model, seed) for (model, _), seed in zip(runs[name], seeds)]
    feature_table[name] = {key: mean_and_spread([m[key] for m in per_seed])
                           for key in per_seed[0]}

print(f"{'measure':20} {'no regularization':>20} {'Dropout':>20}   verdict")
for key in feature_table["Dropout"]:
    (plain, plain_spread), (dropped, dropped_spread) = (feature_table["no regularization"][key],
                                                        feature_table["Dropout"][key])
    noise = max(plain_spread, dropped_spread) if NUM_SEEDS > 1 else 0.0
    verdict = ("within noise" if abs(dropped - plain) < 2 * noise else
               "higher with Dropout" if dropped > plain else "lower with Dropout")
    feature_verdicts[key] = verdict
    print(f"{key:20} {plain:>12.4f} ± {plain_spread:.4f} {dropped:>12.4f} ± "
          f"{dropped_spread:.4f}   {verdict}")
beyond_noise = [key for key, verdict in feature_verdicts.items() if verdict != "within noise"]
print("\nmeasures where Dropout differs beyond the noise:", ", ".join(beyond_noise) or "none")
notebook.record("feature_measures", {name: {key: round(value[0], 4)
                                            for key, value in table.items()}
                                     for name, table in feature_table.items()})

# %%
training.set_seed(SEED)
filters = {"common start": models.LeNet().features.conv1.weight.detach()[:, 0],   # (16, 5, 5)
           "no regularization": runs["no regularization"][0][0].features.conv1.weight,
           "Dropout": runs["Dropout"][0][0].features.conv1.weight}
fig, axes = plt.subplots(3, 16, figsize=(13, 3.3), constrained_layout=True)
for row, (name, weights) in enumerate(filters.items()):
    weights = weights.detach().cpu().reshape(16, 5, 5)
    for ax, weight in zip(axes[row], weights):
        ax.imshow(weight, cmap="RdBu_r", vmin=-weights.abs().max(), vmax=weights.abs().max())
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
fig.suptitle(f"First-layer filters (seed {SEED}; red positive, blue negative, each row on its "
             "own scale): do the Dropout filters look different?")
plt.show()

# %% [markdown]
# What the measurement shows is in the verdict column, for this run. Where every measure reads
# "within noise", the measurements do not show less co-adaptation or sharper first-layer
# filters on this network and budget: the source's claim is then not confirmed (nor refuted;
# a few seeds can only miss a small effect). Where a measure differs beyond the noise, it says
# which way, and only that: fewer active hidden values, for example, is not by itself "sharper
# features". Two caveats when you read your own numbers: in the chapter's
# LeNet the Dropout sits after the *last* convolution, so the first-layer filters feel it only
# through gradients that flow back through two more layers; and a mean correlation is a crude
# stand-in for co-adaptation.
#
# ## 5. The dropout explorer
#
# **Dropout.** Move p: in train mode the output has the same mean as the input, a larger
# variance and a spike of zeros; in eval mode it is the input. (The histograms come from
# `nn.Dropout` itself, on a private random stream.)

# %%
sample = regularization.dropout_outputs(0.5, inputs="ReLU activations")
stats = sample.stats()
standard_error = math.sqrt(stats["train"]["var"] / len(sample.inputs))
assert abs(stats["train"]["mean"] - stats["eval"]["mean"]) < 4 * standard_error    # same mean
assert stats["train"]["var"] > stats["eval"]["var"]
assert torch.equal(sample.eval, sample.inputs)

# %% tags=["nbval-ignore-output"]
regularization.dropout_explorer()

# %% [markdown]
# ## Summary
#
# - `Dropout(p)` zeroes with probability p and scales the rest by 1/(1-p) in train mode; it is
#   the identity in eval mode. `Dropout2d` zeroes whole channels. `F.dropout` needs
#   `training=self.training`.
# - Dropout before a BatchNorm shifts the variance between train and eval mode; put Dropout
#   after the last BatchNorm, as the chapter's LeNet does.
# - Over a few seeds, with a noise scale: whether Dropout shrinks the train-validation gap,
#   whether BatchNorm raises the test accuracy, and whether dropout changes the features are
#   separate questions with separate answers; the verdicts of sections 2 and 4 give them for
#   your run. A few seeds only show large effects.
# - `model.eval()` and `torch.no_grad()` are independent. Evaluate with both; `no_grad()` alone
#   gives wrong numbers and changes BatchNorm's running statistics.
#
# ## Exercises
#
# Each exercise has a check cell: replace `None` with your answer and run the cell.
#
# **1.** `nn.Dropout(p=0.2)` in train mode receives a tensor full of 5.0. Which nonzero value
# appears in its output?

# %%
answer_1 = None
notebook.check_answer(answer_1,
                      nn.Dropout(0.2).train()(torch.full((100,), 5.0)).max().item())

# %% [markdown]
# **2.** (Open.) Write a `dropout_everywhere()` variant of `paper_order()` with a `Dropout2d`
# after every block, train it with `train_network`, and add it to the table. Then measure its
# `variance_shift_ratio`: what does Dropout2d before a BatchNorm do to its input's variance?
#
# ## References
#
# - S. Ioffe, C. Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
#   Internal Covariate Shift", ICML 2015, arXiv:1502.03167.
# - N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever, R. Salakhutdinov, "Dropout: A Simple
#   Way to Prevent Neural Networks from Overfitting", JMLR 15, 2014.
# - J. Tompson, R. Goroshin, A. Jain, Y. LeCun, C. Bregler, "Efficient Object Localization
#   Using Convolutional Networks", CVPR 2015 (spatial dropout, `Dropout2d`).
# - X. Li, S. Chen, X. Hu, J. Yang, "Understanding the Disharmony between Dropout and Batch
#   Normalization by Variance Shift", CVPR 2019, arXiv:1801.05134.
# - PyTorch documentation: `torch.nn.BatchNorm2d`, `torch.nn.Dropout`, `torch.nn.Dropout2d`,
#   `torch.nn.Module.eval`: https://docs.pytorch.org/docs/stable/nn.html
# - D. Mishkin, "CaffeNet benchmark: BatchNorm", ImageNet experiments with BatchNorm before and
#   after the ReLU: https://github.com/ducha-aiki/caffenet-benchmark/blob/master/batchnorm.md
# - H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
#   Machine Learning Algorithms", arXiv:1708.07747, 2017.
