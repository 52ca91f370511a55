"""A plain training loop that records the lr it actually used; seeding and device choice."""
# Top-down: `train_one_epoch` (the optimizer and a per-batch scheduler step in one block), `fit`
# (epochs, evaluation, the per-epoch scheduler step), `evaluate`, `set_seed`, `get_device`, History.

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from tqdm.auto import tqdm


def train_one_epoch(model: nn.Module, loader, optimizer, *, loss_fn=None,
                    batch_scheduler=None) -> tuple[float, float, list[float]]:
    """One pass in train mode: (mean loss, accuracy measured on the fly, the lr of every step).
    `batch_scheduler`, if given, steps after every optimizer step."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device = _model_device(model)
    model.train()
    # Sums stay on the device: reading them once per epoch avoids a host sync per batch.
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    count, lrs = 0, []
    for X, y in loader:
        X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(X)                           # 1. forward pass: (B, num_classes)
        loss = loss_fn(logits, y)                   # 2. loss
        optimizer.zero_grad(set_to_none=True)       # 3. clear the last step's gradients
        loss.backward()                             # 4. backward pass
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()                            # 5. the optimizer uses the lr...
        if batch_scheduler is not None:
            batch_scheduler.step()                  # 6. ...then the scheduler sets the next one
        total_loss += loss.detach() * len(y)
        correct += (logits.argmax(dim=1) == y).sum()
        count += len(y)
    if count == 0:
        raise ValueError("The training loader yielded no batches (is drop_last on with a "
                         "batch larger than the data?).")
    return total_loss.item() / count, correct.item() / count, lrs


def fit(model: nn.Module, train_loader, val_loader, optimizer, *, epochs: int, scheduler=None,
        step_per: str = "epoch", plateau_metric: str = "val_loss", loss_fn=None,
        history: History | None = None, progress: bool = True) -> History:
    """Train for `epochs` epochs and return the History (pass a History to continue it).
    The scheduler steps after the optimizer, per epoch (ReduceLROnPlateau on `plateau_metric`)
    or per batch (`step_per="batch"`). A NaN loss stops training, keeping the history so far."""
    _check_setup(optimizer, scheduler, step_per, plateau_metric, val_loader)
    history = history if history is not None else History()
    first = len(history)        # epochs already done, when continuing a history
    # Only an explicit progress=False overrides tqdm's defaults, so TQDM_DISABLE=1 still works.
    bar = tqdm(range(first, first + epochs), unit="epoch",
               **({} if progress else {"disable": True}))
    for epoch in bar:
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch)           # a resumed run sees the same batch order
        lr = optimizer.param_groups[0]["lr"]        # the lr this epoch starts with
        start = time.perf_counter()
        train_loss, train_acc, lrs = train_one_epoch(
            model, train_loader, optimizer, loss_fn=loss_fn,
            batch_scheduler=scheduler if step_per == "batch" else None)
        if not math.isfinite(train_loss):
            history.stopped = (f"the training loss became {train_loss} in epoch {epoch + 1} "
                               f"(lr {lr:.3g}). The lr is probably too high: try a smaller one.")
            print(f"Training stopped: {history.stopped}")
            break
        record = {"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "train_acc": train_acc}
        if val_loader is not None:
            record["val_loss"], record["val_acc"] = evaluate(model, val_loader, loss_fn)
        record["seconds"] = time.perf_counter() - start
        history.records.append(record)
        if step_per == "batch":
            history.batch_lrs.extend(lrs)
        # The epoch's optimizer steps are done; now the scheduler sets next epoch's lr.
        if scheduler is not None and step_per == "epoch":
            if isinstance(scheduler, ReduceLROnPlateau):
                scheduler.step(record[plateau_metric])
            else:
                scheduler.step()
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds")})
    return history


def evaluate(model: nn.Module, loader, loss_fn=None) -> tuple[float, float]:
    """Mean loss and accuracy over `loader`, in eval mode without gradients (mode restored)."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device, was_training = _model_device(model), model.training
    model.eval()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    count = 0
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(X)
            total_loss += loss_fn(logits, y) * len(y)
            correct += (logits.argmax(dim=1) == y).sum()
            count += len(y)
    model.train(was_training)
    return total_loss.item() / count, correct.item() / count   # one host sync per evaluation


def set_seed(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (every device); `deterministic=True` also makes cuDNN
    deterministic (slower on a GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)     # also seeds every CUDA device
    # On a CPU the seed is enough. On a GPU some cuDNN convolution algorithms add up in a varying
    # order, so two seeded runs drift apart in the last digits and then more; deterministic ones
    # are often 10-30 % slower for convolutions on a GPU, free on a CPU. False: the default.
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = False      # no timing-based choice between algorithms


def get_device() -> torch.device:
    """The fastest device here: a CUDA GPU, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("mps" if torch.backends.mps.is_available() else "cpu")


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


# Which way each metric improves, for checking a ReduceLROnPlateau's mode against it.
METRIC_MODES = {"val_loss": "min", "train_loss": "min", "val_acc": "max", "train_acc": "max"}


def _check_setup(optimizer, scheduler, step_per, plateau_metric, val_loader) -> None:
    """Reject a contradictory setup before any training happens."""
    if step_per not in ("epoch", "batch"):
        raise ValueError(f"step_per must be 'epoch' or 'batch', got {step_per!r}.")
    if scheduler is None:
        return
    if scheduler.optimizer is not optimizer:
        raise ValueError("The scheduler wraps a different optimizer than the one passed to fit: "
                         "create the scheduler from this optimizer.")
    if not isinstance(scheduler, ReduceLROnPlateau):
        return
    if step_per == "batch":
        raise ValueError("ReduceLROnPlateau steps once per epoch on a metric; use "
                         "step_per='epoch'.")
    if plateau_metric not in METRIC_MODES:
        raise ValueError(f"plateau_metric must be one of {', '.join(METRIC_MODES)}, "
                         f"got {plateau_metric!r}.")
    wanted = METRIC_MODES[plateau_metric]
    if scheduler.mode != wanted:
        direction = "goes down" if wanted == "min" else "goes up"
        raise ValueError(
            f"ReduceLROnPlateau(mode={scheduler.mode!r}) contradicts plateau_metric="
            f"{plateau_metric!r}: {plateau_metric} improves when it {direction}, so the scheduler "
            f"needs mode={wanted!r}. With the wrong mode it treats every improvement as a bad "
            "epoch and cuts the lr too early.")
    if plateau_metric.startswith("val_") and val_loader is None:
        raise ValueError(f"plateau_metric={plateau_metric!r} needs a val_loader.")


@dataclass
class History:
    """One record per epoch (epoch, lr used, train/val loss and accuracy, seconds); with
    per-batch stepping, `batch_lrs` holds the lr of every optimizer step."""

    records: list[dict] = field(default_factory=list)
    batch_lrs: list[float] = field(default_factory=list)
    stopped: str | None = None      # why training stopped early, if it did

    def __len__(self) -> int:
        return len(self.records)

    def column(self, name: str) -> list:
        """One field across epochs, e.g. history.column("val_acc")."""
        if self.records and name not in self.records[0]:
            raise KeyError(f"History has no {name!r}; it has {', '.join(self.records[0])}.")
        return [record[name] for record in self.records]

    # The columns the notebooks read most: history.val_loss is history.column("val_loss").
    epochs = property(lambda self: self.column("epoch"))
    lr = property(lambda self: self.column("lr"))
    train_loss = property(lambda self: self.column("train_loss"))
    val_loss = property(lambda self: self.column("val_loss"))
    val_acc = property(lambda self: self.column("val_acc"))

    def best(self, metric: str = "val_acc") -> dict:
        """The record of the epoch with the best value of `metric`."""
        values = self.column(metric)
        pick = max if METRIC_MODES.get(metric, "max") == "max" else min
        return self.records[values.index(pick(values))]

    def to_dict(self) -> dict:
        return asdict(self)     # a deep copy: records, batch_lrs, stopped

    @classmethod
    def from_dict(cls, state: dict) -> History:
        return cls([dict(r) for r in state["records"]], list(state["batch_lrs"]),
                   state.get("stopped"))
