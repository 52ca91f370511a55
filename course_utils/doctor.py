"""The training doctor: finds the silent mistakes of schedulers and regularizers in a set-up."""
# Nothing crashes when these mistakes happen; the numbers are just worse or wrong.

# Usage, before training:
#     findings = doctor.examine(model, X, optimizer=optimizer, scheduler=scheduler,
#                               steps_per_epoch=len(train_loader), epochs=epochs)
#     for finding in findings:
#         print(finding)
# `examine` runs the model twice in eval mode on `X` and reads the layers and the scheduler, then
# puts everything back as it was: weights, buffers, every module's train/eval flag and the random
# number generators.

import contextlib
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR, PolynomialLR


@dataclass(frozen=True)
class Finding:
    """One problem: `check` is a short name, `message` says what is wrong and how to fix it."""
    check: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.message}"


def examine(model: nn.Module, batch: torch.Tensor, *, optimizer=None, scheduler=None,
            steps_per_epoch: int | None = None, epochs: int | None = None) -> list[Finding]:
    """Findings about `model` (run on `batch`, inputs it accepts), the optimizer and scheduler; []
    if none. `steps_per_epoch` (optimizer steps) and `epochs` add a check of the schedule's length.
    The model is left exactly as it was; pass it in the train/eval mode your loop trains it in."""
    # The mode matters because the BatchNorm check reads the train/eval flags.
    _check_arguments(model, batch, optimizer, scheduler, steps_per_epoch, epochs)
    findings = _frozen_batchnorm_in_train_mode(model)
    with _put_back_afterwards(model):
        findings += _evaluation(model, batch)
    if scheduler is not None:
        findings += _scheduler_on_another_optimizer(scheduler, optimizer)
    if scheduler is not None and epochs is not None:
        findings += _schedule_length(scheduler, steps_per_epoch, epochs)
    return findings


def _frozen_batchnorm_in_train_mode(model: nn.Module) -> list[Finding]:
    # requires_grad_(False) stops the optimizer, not the running statistics: in train mode every
    # forward pass still moves running_mean and running_var towards the current batch.
    frozen = [name for name, module in model.named_modules()
              if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training
              and module.track_running_stats and list(module.parameters(recurse=False))
              and not any(p.requires_grad for p in module.parameters(recurse=False))]
    return [] if not frozen else [Finding("frozen batchnorm in train mode", (
        f"BatchNorm layer(s) {', '.join(map(repr, frozen))} have frozen parameters "
        "(requires_grad=False) but are in train mode: every training batch still moves their "
        "running_mean and running_var, so the 'frozen' model changes and evaluates differently. "
        f"Call .eval() on them after every model.train() (e.g. `model.{frozen[0]}.eval()`), "
        "or unfreeze them."))]


def _evaluation(model: nn.Module, batch: torch.Tensor) -> list[Finding]:
    # Two eval-mode passes on the same batch must agree and must leave every buffer as it was.
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    passes = []

    def record(name):
        return lambda module, inputs, output: passes[-1].append(
            (name, type(module).__name__, _tensors(inputs), _tensors(output)))

    hooks = [module.register_forward_hook(record(name)) for name, module in model.named_modules()]
    try:
        model.eval()
        with torch.no_grad():
            for _ in range(2):
                passes.append([])
                model(batch)
    finally:
        for hook in hooks:
            hook.remove()
    findings = []
    if not _same(passes[0][-1][3], passes[1][-1][3]):
        # The layer whose input agrees between the passes but whose output does not is the one
        # whose own forward() draws random numbers (hooks fire innermost first).
        culprit = next(((name, kind) for (name, kind, in1, out1), (_, _, in2, out2)
                        in zip(*passes) if _same(in1, in2) and not _same(out1, out2)),
                       passes[0][-1][:2])
        findings.append(Finding("random evaluation", (
            f"In eval mode, {_layer(*culprit)} gives different outputs in two passes on the same "
            "batch: something random (usually dropout) is still on, so validation accuracy is "
            "noisy and lower than it should be. model.eval() only reaches dropout registered as a "
            "layer in __init__: use nn.Dropout(p) created in __init__, or "
            "F.dropout(x, p, training=self.training); never build nn.Dropout inside forward().")))
    now = dict(model.named_buffers())       # a forward pass may even replace a buffer's tensor
    changed = [name for name, before in buffers.items()
               if name not in now or not torch.equal(now[name], before)]
    if changed:
        findings.append(Finding("evaluation changes the model", (
            f"An eval-mode forward pass changed the buffer(s) {', '.join(map(repr, changed))}: "
            "evaluating moves the model (BatchNorm statistics drift towards the validation data, "
            "or a counter advances), so every evaluation changes later results. Check that "
            "forward() calls no .train(), F.batch_norm(..., training=True) or in-place update of "
            "a buffer when self.training is False.")))
    return findings


def _scheduler_on_another_optimizer(scheduler, optimizer) -> list[Finding]:
    # SequentialLR and ChainedScheduler hold their parts in _schedulers: each must wrap it too.
    return [Finding("scheduler on another optimizer", (
        f"The scheduler {type(part).__name__} wraps a different "
        f"{type(part.optimizer).__name__} from the optimizer you train with: its lr changes go to "
        "an optimizer that never steps, so your lr never changes. Create the scheduler from the "
        f"same object: {type(part).__name__}(optimizer, ...)."))
        for part in [scheduler, *getattr(scheduler, "_schedulers", [])]
        if part.optimizer is not optimizer]


def _schedule_length(scheduler, steps_per_epoch: int, epochs: int) -> list[Finding]:
    # OneCycleLR steps once per batch: it needs steps_per_epoch * epochs steps (past its end it
    # raises an error mid-training). CosineAnnealingLR and PolynomialLR may step per epoch or per
    # batch, which cannot be told from here: only a length shorter than `epochs` is surely short.
    if isinstance(scheduler, OneCycleLR):
        what, length, needed = "total_steps", scheduler.total_steps, steps_per_epoch * epochs
        run = f"{needed} steps ({steps_per_epoch} per epoch x {epochs} epochs)"
        after, fix = "the next step raises an error mid-training", "steps_per_epoch * epochs"
    elif isinstance(scheduler, (CosineAnnealingLR, PolynomialLR)):
        what = "T_max" if isinstance(scheduler, CosineAnnealingLR) else "total_iters"
        length, needed = getattr(scheduler, what), epochs
        run = f"{epochs} epochs, at least one step each"
        after = ("the lr climbs back up towards its start" if what == "T_max"
                 else "the lr stays at its final value")
        fix = "epochs if it steps once per epoch, steps_per_epoch * epochs if after every batch"
    else:
        return []
    return [] if length >= needed else [Finding("schedule too short", (
        f"{type(scheduler).__name__} is sized for {what}={length} steps, but training takes "
        f"{run}: after step {length} {after}. Size it for the whole run: {what}={fix}."))]


@contextlib.contextmanager
def _put_back_afterwards(model: nn.Module):
    # Every weight and buffer (the tensor object and a copy of its values), every module's
    # train/eval flag and the random number generators (CPU and every GPU) go back exactly as they
    # were, also when the model raises.
    tensors = [(store, key, tensor, tensor.detach().clone()) for module in model.modules()
               for store in (module._parameters, module._buffers)
               for key, tensor in store.items() if tensor is not None]
    flags = [(module, module.training) for module in model.modules()]
    try:
        with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
            yield
    finally:
        with torch.no_grad():
            for store, key, tensor, copy in tensors:
                store[key] = tensor                      # the same object, even if replaced
                tensor.copy_(copy)
        for module, training in flags:
            module.training = training


def _check_arguments(model, batch, optimizer, scheduler, steps_per_epoch, epochs) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"examine needs an nn.Module as the model, got {type(model).__name__}.")
    if not isinstance(batch, torch.Tensor):
        raise TypeError(
            f"batch must be a tensor of inputs the model accepts, got {type(batch).__name__}. "
            "From a loader that yields (X, y) pairs, pass X: `X, y = next(iter(train_loader))`.")
    if scheduler is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"A scheduler needs its optimizer (got {type(optimizer).__name__}): pass "
                        "optimizer= so that the doctor can check the scheduler wraps it.")
    if scheduler is not None and not hasattr(scheduler, "optimizer"):
        raise TypeError(f"scheduler must be a torch.optim.lr_scheduler object, got "
                        f"{type(scheduler).__name__}.")
    if (steps_per_epoch is None) != (epochs is None) or (epochs is not None and min(
            steps_per_epoch, epochs) < 1):
        raise ValueError("Give steps_per_epoch and epochs together, each at least 1 (for example "
                         f"steps_per_epoch=len(train_loader), epochs=epochs), or neither; got "
                         f"{steps_per_epoch} and {epochs}.")


def _tensors(value) -> list[torch.Tensor]:
    # Copies of the tensors in a module's inputs or output: a later in-place op can't alter them.
    if isinstance(value, torch.Tensor):
        return [value.detach().clone()]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [tensor for item in value for tensor in _tensors(item)]
    return []


def _same(first: list, second: list) -> bool:
    return len(first) == len(second) and all(
        a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-5)
        for a, b in zip(first, second))


def _layer(name: str, kind: str) -> str:
    return f"the forward() of layer {name!r} ({kind})" if name else f"the model's forward ({kind})"
