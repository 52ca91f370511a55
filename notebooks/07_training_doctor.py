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
# # 07 · The training doctor: silent failures, found and fixed
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lr-course/lr-schedulers-regularization/blob/main/notebooks/07_training_doctor.ipynb)
#
# **What you will learn**
#
# - four mistakes with regularizers and schedulers that crash nothing, each reproduced on the
#   course's LeNet and Fashion-MNIST, with what it costs (accuracy, lr, BatchNorm statistics):
#   dropout alive in eval, BatchNorm statistics moving in a "frozen" backbone, a scheduler on
#   another optimizer, and a schedule sized for a shorter run;
# - how `course_utils.doctor.examine` finds each of them before you train, and names the layer
#   or object at fault;
# - the fix of each, checked;
# - how to run the doctor on your own model and training set-up, and what it cannot see.
#
# The whole notebook runs on a CPU.

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
import warnings

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import lr_scheduler

from course_utils import data, doctor, models, notebook, plotting, schedulers, training

device = notebook.report_device()   # a GPU when there is one

# %% tags=["parameters"]
FAST = notebook.fast_mode()                   # COURSE_FAST=1: small defaults for tests
EPOCHS = 2 if FAST else 5                     # epochs of the baseline run
TRAIN_SIZE = 2000 if FAST else 20000          # training images (None: all that remain)
VAL_SIZE = 1000 if FAST else 5000             # images held out for validation, at most
FINETUNE_SIZE = 1000 if FAST else 10000       # images of the "new camera" (section 2), at most
BATCH_SIZE = 64
LR = 0.05
DROPOUT = 0.25
SEED = 0

# %% [markdown]
# ## 0. A healthy baseline, and the doctor's first look
#
# Fashion-MNIST with a validation split, as in the earlier notebooks, and the chapter's LeNet with
# BatchNorm and Dropout, trained with SGD + momentum and a cosine schedule. Before training we
# call `doctor.examine(model, X, optimizer=..., scheduler=..., steps_per_epoch=..., epochs=...)`:
# `X` is a batch of inputs the model accepts. It returns a list of findings; an empty list means
# it found nothing.

# %%
train_full, test = data.load_fashion_mnist()
train, val = data.lesson_split(train_full, val_size=VAL_SIZE, train_size=TRAIN_SIZE, seed=SEED)
finetune_split = data.stratified_subset(train, FINETUNE_SIZE, seed=SEED + 1)
train_loader = data.TensorLoader(train, BATCH_SIZE, shuffle=True, device=device, seed=SEED)
val_loader = data.TensorLoader(val, 1000, device=device)
finetune_loader = data.TensorLoader(finetune_split, BATCH_SIZE, shuffle=True, device=device,
                                    seed=SEED)
X_check = next(iter(val_loader))[0][:256]     # the batch the doctor runs models on
print(f"{len(train):,} training images, {len(val):,} validation images, "
      f"{len(finetune_split):,} for fine-tuning")


# %%
def new_lenet():
    training.set_seed(SEED)
    return models.LeNet(batch_norm=True, dropout=DROPOUT).to(device)


model = new_lenet()
optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
findings = doctor.examine(model, X_check, optimizer=optimizer, scheduler=scheduler,
                          steps_per_epoch=len(train_loader), epochs=EPOCHS)
print("findings before training:", findings)
assert findings == []
history = training.fit(model, train_loader, val_loader, optimizer, epochs=EPOCHS,
                       scheduler=scheduler)
val_acc = training.evaluate(model, val_loader)[1]
print(f"baseline validation accuracy: {val_acc:.2%}")
notebook.record("baseline_val_acc", round(val_acc, 4))

# %% [markdown]
# `examine` changes nothing in the model it examines: weights, buffers, each layer's train/eval
# flag and the random number generator are as before (`tests/test_doctor.py` checks this, also for
# models it finds something in). Here is the illustrative check:

# %%
before = copy.deepcopy(model.state_dict())
rng = torch.get_rng_state()
model.train()
doctor.examine(model, X_check)
assert model.training and all(m.training for m in model.modules())
assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
assert torch.equal(torch.get_rng_state(), rng)
model.eval()
print("weights, buffers, train/eval flags and the RNG state: unchanged")

# %% [markdown]
# ## 1. Dropout alive in evaluation
#
# Many tutorials write dropout as a function call, `F.dropout(x, p)`. Its `training` argument
# defaults to `True`, and `model.eval()` cannot reach a function call: it only switches layers
# registered in `__init__`. So the dropout stays on when the model is evaluated. Below, the same
# trained weights in a LeNet whose dropout is written that way: training would be exactly the
# same, only evaluation differs.

# %%
class FunctionalDropoutLeNet(models.LeNet):
    """The course's LeNet with its dropout written as a function call."""

    def forward(self, X):
        features = self.features[:-1](X)                        # all but the Dropout layer
        return self.classifier(F.dropout(features, self.dropout))   # training=True: the bug


leaky = FunctionalDropoutLeNet(batch_norm=True, dropout=DROPOUT).to(device)
leaky.load_state_dict(model.state_dict())
# In train mode it computes exactly what the baseline computes, random masks included (on
# copies: a train-mode pass moves the BatchNorm statistics).
outputs = []
for net in (model, leaky):
    torch.manual_seed(SEED)
    outputs.append(copy.deepcopy(net).train()(X_check))
assert torch.equal(*outputs)
leaky.eval()
leaky_accs = [training.evaluate(leaky, val_loader)[1] for _ in range(5)]
print(f"the same weights, dropout off in eval: {val_acc:.2%}")
print("dropout alive in eval, five evaluations:", ", ".join(f"{a:.2%}" for a in leaky_accs))
assert len(set(leaky_accs)) > 1                          # the same data, different answers
assert sum(leaky_accs) / len(leaky_accs) < val_acc       # and worse on average
notebook.record("dropout_in_eval_acc", {"off": round(val_acc, 4),
                                        "alive_mean": round(sum(leaky_accs) / 5, 4)})

# %% [markdown]
# The doctor runs the model twice in eval mode on the same batch. A model in eval mode should give
# the same answer twice; this one does not, and the doctor says where the randomness sits.

# %%
findings = doctor.examine(leaky, X_check)
for finding in findings:
    print(finding)
assert [f.check for f in findings] == ["random evaluation"]
assert "FunctionalDropoutLeNet" in findings[0].message

# %% [markdown]
# The same happens with an `nn.Dropout` built inside `forward` (a new layer, in train mode, at
# every call): the doctor names the layer whose forward does it.

# %%
class DropoutHead(nn.Module):
    def forward(self, X):
        return nn.Dropout(0.5)(X)                 # built here, so eval() never reaches it


built_inside = nn.Sequential(models.LeNet(batch_norm=True), DropoutHead()).to(device)
findings = doctor.examine(built_inside, X_check)
print(findings[0])
assert "'1' (DropoutHead)" in findings[0].message

# %% [markdown]
# **The fix**: pass the flag, `F.dropout(x, p, training=self.training)`, or create `nn.Dropout`
# in `__init__`. With the same weights, the fixed model evaluates exactly like the baseline.

# %%
class FixedDropoutLeNet(models.LeNet):
    def forward(self, X):
        features = self.features[:-1](X)
        return self.classifier(F.dropout(features, self.dropout, training=self.training))


fixed = FixedDropoutLeNet(batch_norm=True, dropout=DROPOUT).to(device)
fixed.load_state_dict(model.state_dict())
fixed.eval()
assert doctor.examine(fixed, X_check) == []
assert training.evaluate(fixed, val_loader)[1] == val_acc
print("fixed: no findings, validation accuracy", f"{val_acc:.2%}", "as the baseline")

# %% [markdown]
# ## 2. BatchNorm statistics moving in a "frozen" backbone
#
# A common recipe: keep a trained backbone, freeze it with `requires_grad_(False)`, and train only
# a new head on new data. Here the new data comes from a "new camera": the same kind of clothes,
# at half the contrast and darker. `requires_grad_(False)` stops the optimizer; it does not stop
# BatchNorm. In train mode every forward pass still moves `running_mean` and `running_var`
# towards the batch, so the "frozen" backbone changes. The fine-tuning loop, written out:

# %%
def new_camera(X):
    """The same images at half the contrast and darker (in normalized units)."""
    return 0.5 * X - 0.5


def finetune(model, *, batchnorm_in_eval):
    """Train the classifier (only) for one epoch on the new camera's images; the backbone
    (`features`) is frozen. Returns the doctor's findings, taken as the loop starts."""
    model.features.requires_grad_(False)
    optimizer = torch.optim.SGD(model.classifier.parameters(), lr=LR, momentum=0.9)
    model.train()
    if batchnorm_in_eval:                       # the fix: after model.train(), not before
        for module in model.features.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
    findings = doctor.examine(model, X_check, optimizer=optimizer)
    for X, y in finetune_loader:
        loss = F.cross_entropy(model(new_camera(X)), y)        # 1. forward pass and loss
        optimizer.zero_grad(set_to_none=True)                  # 2. clear old gradients
        loss.backward()                                        # 3. backward pass
        optimizer.step()                                       # 4. update the head only
    return findings


drifted = copy.deepcopy(model)
findings = finetune(drifted, batchnorm_in_eval=False)
for finding in findings:
    print(finding)
assert [f.check for f in findings] == ["frozen batchnorm in train mode"]
assert "'features.bn1'" in findings[0].message

# %% [markdown]
# What it cost. The backbone's weights did not move, but its BatchNorm statistics did, so the
# backbone computes something else. To measure that on the original task, we put the original
# head back on each backbone and evaluate on the original validation images.

# %%
def with_original_head(finetuned):
    probe = copy.deepcopy(finetuned).eval()
    probe.classifier.load_state_dict(model.classifier.state_dict())
    return probe


assert all(torch.equal(p, q) for p, q in zip(drifted.features.parameters(),
                                             model.features.parameters()))
shift = (drifted.features.bn1.running_mean - model.features.bn1.running_mean).abs().max().item()
drifted_acc = training.evaluate(with_original_head(drifted), val_loader)[1]
print(f"backbone weights: unchanged; largest move of bn1.running_mean: {shift:.3f}")
print(f"original task, original head: {val_acc:.2%} before, {drifted_acc:.2%} after fine-tuning")
assert shift > 0 and drifted_acc < val_acc
notebook.record("frozen_backbone_acc", {"before": round(val_acc, 4),
                                        "after_drift": round(drifted_acc, 4)})

# %% [markdown]
# **The fix**: put the BatchNorm layers in eval mode *after* `model.train()` (which switches every
# layer back to train mode). Then the doctor finds nothing, and the backbone is exactly the one we
# started from.

# %%
frozen = copy.deepcopy(model)
assert finetune(frozen, batchnorm_in_eval=True) == []
assert all(torch.equal(a, b) for a, b in zip(frozen.features.state_dict().values(),
                                             model.features.state_dict().values()))
frozen_acc = training.evaluate(with_original_head(frozen), val_loader)[1]
assert frozen_acc == val_acc
print(f"original task, original head, backbone really frozen: {frozen_acc:.2%}")

# %% [markdown]
# On the new camera's images the picture can differ: statistics re-estimated on the new data are
# a known way to adapt a network to a new domain (AdaBN, in the references). That is a choice you
# can make on purpose; the mistake is making it without knowing. Both fine-tuned models, with
# their new heads, on the validation images seen through the new camera:

# %%
class NewCameraLoader:
    def __iter__(self):
        return ((new_camera(X), y) for X, y in val_loader)


for name, finetuned in (("statistics moved", drifted), ("really frozen", frozen)):
    print(f"{name:>16}: {training.evaluate(finetuned.eval(), NewCameraLoader())[1]:.2%} "
          "on the new camera")

# %% [markdown]
# ## 3. A scheduler on another optimizer
#
# A scheduler changes the lr of the optimizer it was built on. Re-create the optimizer (a cell run
# twice, a model rebuilt) and the scheduler keeps changing the old one: the optimizer that trains
# keeps its lr. The lr each epoch would train with, the lr the scheduler reports, and any warning
# torch gives on the way:

# %%
model_3 = new_lenet()
optimizer = torch.optim.SGD(model_3.parameters(), lr=LR, momentum=0.9)
scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
optimizer = torch.optim.SGD(model_3.parameters(), lr=LR, momentum=0.9)   # re-created
used, reported = [], []
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for epoch in range(5):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()                      # (no gradients here: only the lrs matter)
        scheduler.step()
        reported.append(scheduler.get_last_lr()[0])
print("lr used:     ", used)
print("lr reported: ", [round(lr, 5) for lr in reported])
print("warnings from torch:", [str(w.message)[:70] for w in caught] or "none")
assert used == [LR] * 5 and reported[-1] == LR * 0.5**5

# %%
findings = doctor.examine(model_3, X_check, optimizer=optimizer, scheduler=scheduler)
print(findings[0])
assert [f.check for f in findings] == ["scheduler on another optimizer"]
try:
    training.fit(model_3, train_loader, val_loader, optimizer, epochs=1, scheduler=scheduler)
except ValueError as error:
    print("training.fit:", error)
else:
    raise AssertionError("fit should refuse a scheduler on another optimizer")
scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)             # the fix
assert doctor.examine(model_3, X_check, optimizer=optimizer, scheduler=scheduler) == []

# %% [markdown]
# `training.fit` refuses this set-up with an error (the cell above shows it); a hand-written
# loop does not.
#
# ## 4. A schedule sized for a shorter run
#
# **OneCycleLR sized in epochs.** OneCycleLR steps after every batch, so it needs
# `steps_per_epoch * epochs` steps. Sized with `total_steps=EPOCHS`, it runs out within the first
# epoch. That one is not silent, only late: it raises an error in the middle of training. The
# doctor says so before training starts.

# %%
model_4 = new_lenet()
optimizer = torch.optim.SGD(model_4.parameters(), lr=LR, momentum=0.9)
scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=LR, total_steps=EPOCHS)
findings = doctor.examine(model_4, X_check, optimizer=optimizer, scheduler=scheduler,
                          steps_per_epoch=len(train_loader), epochs=EPOCHS)
print(findings[0])
stopped = None
try:
    training.fit(model_4, train_loader, val_loader, optimizer, epochs=EPOCHS,
                 scheduler=scheduler, step_per="batch", progress=False)
except ValueError as error:
    stopped = str(error)
print("training stopped:", stopped)
assert stopped is not None and EPOCHS + 1 <= len(train_loader)   # within the first epoch
scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=LR, epochs=EPOCHS,
                                    steps_per_epoch=len(train_loader))          # the fix
assert doctor.examine(model_4, X_check, optimizer=optimizer, scheduler=scheduler,
                      steps_per_epoch=len(train_loader), epochs=EPOCHS) == []

# %% [markdown]
# **A cosine sized for an earlier plan.** `CosineAnnealingLR(T_max=10)` written for a 10-epoch
# run, then the run is made 20 epochs long. No error: after epoch 10 the lr climbs back up, and
# the last epochs, which should polish the model with a tiny lr, train with the largest. The lr of
# each epoch, computed without training:

# %%
planned, run = 10, 20
short = schedulers.lr_trace(lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=planned),
                            epochs=run, lr=LR)
right = schedulers.lr_trace(lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=run),
                            epochs=run, lr=LR)
plotting.plot_schedules({f"T_max={planned}, {run} epochs": short,
                         f"T_max={run}, {run} epochs": right}, ncols=2,
                        title="A cosine sized for half the run climbs back up")
plt.show()
print(f"lr of the last epoch: {short[-1]:.4g} (T_max={planned}) vs {right[-1]:.4g} "
      f"(T_max={run})")
assert short[-1] > right[-1] * 10
notebook.record("last_epoch_lr", {"short": round(short[-1], 6), "right": round(right[-1], 6)})

# %%
optimizer = torch.optim.SGD(model_4.parameters(), lr=LR, momentum=0.9)
scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=planned)
findings = doctor.examine(model_4, X_check, optimizer=optimizer, scheduler=scheduler,
                          steps_per_epoch=len(train_loader), epochs=run)
print(findings[0])
assert [f.check for f in findings] == ["schedule too short"]

# %% [markdown]
# A cosine may be stepped once per epoch or after every batch, and `examine` cannot tell which;
# so it flags a `T_max` shorter than the number of epochs, which is too short either way. A
# per-batch cosine sized in epochs it cannot see: preview it with `schedulers.lr_trace(...,
# step_per="batch")` before training.
#
# ## Going deeper: what the doctor cannot see
#
# `examine` looks at the model, the optimizer and the scheduler, not at your loop. A `model.train()`
# in the middle of a validation loop (in a helper that "restores" train mode, say) switches
# dropout on and lets the validation batches move the BatchNorm statistics; the model itself is
# healthy, so the doctor finds nothing:

# %%
probe = copy.deepcopy(model).eval()
assert doctor.examine(probe, X_check) == []
before = probe.features.bn1.running_mean.clone()
with torch.no_grad():
    for X in next(iter(val_loader))[0].split(100):              # validation batches of 100
        probe(X)
        probe.train()                       # a helper's "restore train mode", in the wrong place
moved = (probe.features.bn1.running_mean - before).abs().max().item()
print(f"bn1.running_mean moved by up to {moved:.3g} during 'evaluation'")
assert moved > 0

# %% [markdown]
# Nor does it see a scheduler whose state was not saved with a checkpoint (notebooks 02 and 03
# show the fix: `checkpoint.save_checkpoint` keeps it), or which step of your loop calls
# `scheduler.step()`. `fit` records the lr it actually used in `history.lr`: plot it.
#
# ## Summary
#
# - Dropout written as `F.dropout(x, p)` or built in `forward` stays on in eval: noisy, lower
#   validation accuracy. Pass `training=self.training`, or create `nn.Dropout` in `__init__`.
# - `requires_grad_(False)` does not freeze BatchNorm statistics: in train mode they follow the
#   data. Put BatchNorm layers in eval mode after every `model.train()`.
# - A scheduler built on another optimizer changes nothing you train with.
# - A schedule sized for fewer steps than the run either raises late (OneCycleLR) or silently
#   turns back up (a cosine).
# - `doctor.examine(model, X, optimizer=..., scheduler=..., steps_per_epoch=..., epochs=...)`
#   finds these before training, names the layer or object at fault, and leaves the model as it
#   was. It does not see your loop.
#
# ## Exercises
#
# Each exercise has a check cell: replace `None` with your answer and run the cell.
#
# **1.** Without running `examine`, how many findings do you expect for this set-up? Then check.

# %%
class Exercise1(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = models.LeNet(batch_norm=True)

    def forward(self, X):
        return F.dropout(self.net(X), 0.2)


exercise_model = Exercise1().to(device)
exercise_model.net.features.bn1.requires_grad_(False)
exercise_optimizer = torch.optim.SGD(exercise_model.parameters(), lr=LR)
exercise_scheduler = lr_scheduler.OneCycleLR(exercise_optimizer, max_lr=LR, total_steps=100)
answer_1 = None
notebook.check_answer(answer_1, len(doctor.examine(
    exercise_model, X_check, optimizer=exercise_optimizer, scheduler=exercise_scheduler,
    steps_per_epoch=len(train_loader), epochs=EPOCHS)))

# %% [markdown]
# **2. Examine your own model.** Write a model and a set-up of your own below (or paste one you
# use), run the doctor on it, and fix what it finds until it finds nothing. The cell starts with
# a set-up that has two of this notebook's mistakes; the check passes when the list is empty.

# %%
class MyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = models.LeNet(batch_norm=True)

    def forward(self, X):
        return nn.Dropout(0.3)(self.body(X))


my_model = MyModel().to(device)
my_optimizer = torch.optim.SGD(my_model.parameters(), lr=LR, momentum=0.9)
my_epochs = 10
my_scheduler = lr_scheduler.CosineAnnealingLR(my_optimizer, T_max=5)
my_findings = doctor.examine(my_model, X_check, optimizer=my_optimizer, scheduler=my_scheduler,
                             steps_per_epoch=len(train_loader), epochs=my_epochs)
for finding in my_findings:
    print(finding)
notebook.check_answer([f.check for f in my_findings], [])

# %% [markdown]
# ## References
#
# - PyTorch documentation: `torch.nn.functional.dropout`, `torch.nn.BatchNorm2d`,
#   `torch.nn.Module.eval`, `torch.optim.lr_scheduler.OneCycleLR` and `CosineAnnealingLR`:
#   https://docs.pytorch.org/docs/stable/
# - N. Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
#   JMLR 15, 2014.
# - S. Ioffe, C. Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
#   Internal Covariate Shift", ICML 2015, arXiv:1502.03167.
# - Y. Li, N. Wang, J. Shi, J. Liu, X. Hou, "Revisiting Batch Normalization For Practical Domain
#   Adaptation" (AdaBN), arXiv:1603.04779, 2016.
# - L. N. Smith, N. Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large
#   Learning Rates", arXiv:1708.07120, 2017 (the one-cycle schedule).
# - I. Loshchilov, F. Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017,
#   arXiv:1608.03983 (cosine annealing).
# - H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
#   Machine Learning Algorithms", arXiv:1708.07747, 2017.
