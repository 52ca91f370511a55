"""Save a training run and resume it exactly: weights, optimizer, scheduler, history, RNG states."""

import os
import random
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from course_utils.sources import atomic_file
from course_utils.training import History


def _rng_states() -> dict:
    kind, keys, *rest = np.random.get_state()
    # Tensors and plain numbers only, so the file loads with weights_only=True.
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all(),      # one state per GPU: [] without a GPU
            "numpy": (kind, torch.from_numpy(keys.astype("int64")), *rest)}


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    if torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, *rest = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), *rest))


# torch < 2.4 loads with weights_only=True only tensors, plain data and a few types, and two
# scheduler states hold more: MultiStepLR's milestones are a collections.Counter (saved as
# {COUNTER: dict}, turned back on loading) and OneCycleLR's anneal_func is a method (left out:
# the scheduler that loads the state keeps its own). SequentialLR nests states in a list.
COUNTER = "collections.Counter"


def _plain(value):
    if isinstance(value, Counter):
        return {COUNTER: dict(value)}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if not callable(item)}
    return [_plain(item) for item in value] if isinstance(value, list) else value


def _restored(value):
    if isinstance(value, dict) and set(value) == {COUNTER}:
        return Counter(value[COUNTER])
    if isinstance(value, dict):
        return {key: _restored(item) for key, item in value.items()}
    return [_restored(item) for item in value] if isinstance(value, list) else value


def save_checkpoint(path: str | os.PathLike, *, model, optimizer=None, scheduler=None,
                    history: History | None = None, extra: dict | None = None) -> Path:
    """Write everything needed to resume training to `path`, atomically: never a broken file."""
    path = Path(path)
    state = {"model": model.state_dict(), "rng": _rng_states(), "extra": extra or {},
             "optimizer": optimizer.state_dict() if optimizer is not None else None,
             "scheduler": _plain(scheduler.state_dict()) if scheduler is not None else None,
             "history": history.to_dict() if history is not None else None}
    with atomic_file(path) as f:    # an interrupted save leaves the old file as it was
        torch.save(state, f)
    return path


def load_checkpoint(path: str | os.PathLike, *, model, optimizer=None, scheduler=None) -> dict:
    """Load into `model` (and `optimizer`, `scheduler` when given), restore the RNGs and return
    {"epoch", "history", "extra"}: pass the history to `fit(..., history=...)`."""
    # A scheduler left out starts afresh: ReduceLROnPlateau, say, loses its best value, its count
    # of bad epochs and its cooldown, so the resumed run differs.
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}. Save one with save_checkpoint first.")
    try:
        # weights_only=True: a checkpoint is data, and loading it never runs code from the file.
        # map_location="cpu": a checkpoint saved on a GPU loads on any machine; load_state_dict
        # then copies each tensor to the device of the model's (and optimizer's) parameters.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise RuntimeError(f"{path} is not a readable checkpoint ({error}). It may be truncated "
                           "or come from another program; save it again.") from error
    model.load_state_dict(state["model"])
    for name, part in (("optimizer", optimizer), ("scheduler", scheduler)):
        if part is not None:
            if state[name] is None:
                raise ValueError(f"{path} holds no {name} state; pass {name}=None.")
            part.load_state_dict(_restored(state[name]))
    _set_rng_states(state["rng"])
    history = History.from_dict(state["history"]) if state["history"] is not None else History()
    return {"epoch": len(history), "history": history, "extra": state["extra"]}
