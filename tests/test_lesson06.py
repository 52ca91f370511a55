"""The exhaustive checks behind notebook 06 (warmup, restarts, resuming), which shows one check
per claim.

Each test backs a sentence of the lesson against torch's public API, over grids where the lesson
shows one case: the warmup hand-off and ChainedScheduler's product, the warmup-then-plateau
pattern, restarts with fractional epochs, CyclicLR's momentum, the resume matrix for every
scheduler and every interruption point, OneCycleLR's length, GradScaler's skipped step, and the
BatchNorm statistics of an averaged model. The bitwise resume of real training runs, for every
scheduler, is `test_checkpoint.py::test_every_scheduler_resumes_bitwise`. Version-dependent
behaviour is asserted for the versions it was seen on (2.3, 2.13, 2.14) and left open between.
"""

import copy
import itertools
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.optim import lr_scheduler, swa_utils

from course_utils import models, plateau_replay, schedulers

TORCH = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])


def sgd(lr=0.1):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)


def warmup_then_cosine(optimizer, warmup, total, start_factor=0.1):
    return lr_scheduler.SequentialLR(optimizer, [
        lr_scheduler.LinearLR(optimizer, start_factor=start_factor, total_iters=warmup),
        lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup)], milestones=[warmup])


def warmup_times_cosine(optimizer, warmup, total, start_factor=0.1):
    return lr_scheduler.ChainedScheduler([
        lr_scheduler.LinearLR(optimizer, start_factor=start_factor, total_iters=warmup),
        lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)])


def linear_factor(t, warmup, start_factor):
    return start_factor + (1 - start_factor) * min(t, warmup) / warmup


def quiet_trace(scheduler_fn, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # older torch: step(epoch) deprecation notes
        return schedulers.lr_trace(scheduler_fn, **kwargs)


# --- 1. warmup with SequentialLR and ChainedScheduler -------------------------------------------

WARMUP_GRID = list(itertools.product((0.01, 0.1, 0.25, 0.5), (1, 2, 3, 5, 10), (1, 5, 17),
                                     (0.05, 0.2, 1.0)))


@pytest.mark.parametrize("start_factor,warmup,rest,peak", WARMUP_GRID)
def test_sequential_hand_off_follows_the_formula_and_hits_the_peak(start_factor, warmup, rest,
                                                                   peak):
    total = warmup + rest
    lrs = quiet_trace(lambda opt: warmup_then_cosine(opt, warmup, total, start_factor),
                      epochs=total + 3, lr=peak)
    for t, lr in enumerate(lrs):
        if t < warmup:
            expected = peak * linear_factor(t, warmup, start_factor)
        else:
            expected = peak * 0.5 * (1 + math.cos(math.pi * (t - warmup) / rest))
        assert math.isclose(lr, expected, rel_tol=1e-12, abs_tol=1e-15), (t, lr, expected)
    assert lrs[warmup] == peak                       # exactly the peak at the milestone
    assert max(lrs) == peak                          # and never above it


@pytest.mark.parametrize("start_factor,warmup,rest,peak", WARMUP_GRID)
def test_chained_warmup_is_the_product_and_stays_below_the_peak(start_factor, warmup, rest,
                                                                 peak):
    total = warmup + rest
    lrs = schedulers.lr_trace(lambda opt: warmup_times_cosine(opt, warmup, total, start_factor),
                              epochs=total, lr=peak)
    for t, lr in enumerate(lrs):
        expected = (peak * linear_factor(t, warmup, start_factor)
                    * 0.5 * (1 + math.cos(math.pi * t / total)))
        assert math.isclose(lr, expected, rel_tol=1e-12, abs_tol=1e-15), (t, lr, expected)
    assert max(lrs) < peak                           # the cosine falls while the warmup rises


@pytest.mark.parametrize("warmup", [2, 3, 5])
def test_warnings_at_the_milestone_are_only_the_epoch_deprecation(warmup):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schedulers.lr_trace(lambda opt: warmup_then_cosine(opt, warmup, 10), epochs=10)
    assert all("epoch parameter" in str(w.message) for w in caught)
    if TORCH >= (2, 13):
        assert not caught
    if TORCH == (2, 3):
        assert caught                                # the lesson says 2.3 warns


@pytest.mark.parametrize("milestone,total_iters", [(3, 5), (2, 10), (4, 6), (1, 3)])
def test_a_warmup_longer_than_its_milestone_jumps(milestone, total_iters):
    lrs = quiet_trace(lambda opt: lr_scheduler.SequentialLR(opt, [
        lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=total_iters),
        lr_scheduler.CosineAnnealingLR(opt, T_max=7)], milestones=[milestone]), epochs=10)
    before = 0.1 * linear_factor(milestone - 1, total_iters, 0.1)
    assert math.isclose(lrs[milestone - 1], before, rel_tol=1e-12)
    assert lrs[milestone] == 0.1
    assert lrs[milestone] / lrs[milestone - 1] > 1 + 0.9 / total_iters    # more than a step


def test_a_milestone_of_zero_starts_on_the_main_schedule_since_2_13():
    lrs = quiet_trace(lambda opt: lr_scheduler.SequentialLR(opt, [
        lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3),
        lr_scheduler.CosineAnnealingLR(opt, T_max=10)], milestones=[0]), epochs=3, lr=0.1)
    if TORCH >= (2, 13):
        assert lrs[0] == 0.1
        assert math.isclose(lrs[1], 0.05 * (1 + math.cos(math.pi / 10)), rel_tol=1e-12)
    elif TORCH == (2, 3):
        assert lrs[0] == pytest.approx(0.01)         # the warmup's lr (PyTorch issue #185872)


@pytest.mark.parametrize("wrapper", ["SequentialLR", "ChainedScheduler"])
def test_composites_refuse_reduce_lr_on_plateau(wrapper):
    """2.13 and later refuse it when built (ValueError); 2.3 built it and failed when stepping it
    without a metric (TypeError). Either way it never trains."""
    optimizer = sgd()
    warm = lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=2)
    plateau = lr_scheduler.ReduceLROnPlateau(optimizer)
    expected = ValueError if TORCH >= (2, 13) else TypeError if TORCH == (2, 3) else Exception
    with pytest.raises(expected, match="ReduceLROnPlateau"):
        if wrapper == "SequentialLR":
            scheduler = lr_scheduler.SequentialLR(optimizer, [warm, plateau], milestones=[2])
        else:
            scheduler = lr_scheduler.ChainedScheduler([warm, plateau])
        for _ in range(4):
            optimizer.step()
            scheduler.step()


# --- 2. warmup before ReduceLROnPlateau ---------------------------------------------------------

LOSS_SEQUENCES = ([1.0, 0.9, 0.95, 0.96, 0.85, 0.9, 0.91, 0.92, 0.8, 0.85],
                  [2.0] * 8, [1.0, 0.5, 0.4, 0.45, 0.3, 0.35, 0.36, 0.37])


@pytest.mark.parametrize("losses", LOSS_SEQUENCES)
@pytest.mark.parametrize("patience,factor", [(0, 0.5), (1, 0.1), (2, 0.5)])
@pytest.mark.parametrize("steps_per_epoch", [1, 4, 10])
def test_warmup_per_batch_then_plateau_per_epoch(losses, patience, factor, steps_per_epoch):
    """The lesson's loop: LinearLR after every batch of epoch 1, then ReduceLROnPlateau on the
    validation loss after every epoch; the lr follows LinearLR, then the plateau replay."""
    lr = 0.05
    optimizer = sgd(lr)
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=steps_per_epoch)
    plateau = lr_scheduler.ReduceLROnPlateau(optimizer, factor=factor, patience=patience)
    batch_lrs, epoch_lrs = [], []
    for epoch, loss in enumerate(losses):
        epoch_lrs.append(optimizer.param_groups[0]["lr"])
        for _ in range(steps_per_epoch):
            batch_lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if epoch == 0:
                warmup.step()
        plateau.step(loss)
    for t in range(steps_per_epoch):
        assert math.isclose(batch_lrs[t], lr * linear_factor(t, steps_per_epoch, 0.1),
                            rel_tol=1e-12)
    replay = plateau_replay.replay_plateau(losses, lr=lr, factor=factor, patience=patience)
    for step, used in zip(replay, epoch_lrs[1:]):
        assert math.isclose(step.lr_after, used, rel_tol=1e-12)
    # within each later epoch the lr is constant: the warmup no longer moves it
    for epoch in range(1, len(losses)):
        assert len(set(batch_lrs[epoch * steps_per_epoch:(epoch + 1) * steps_per_epoch])) == 1


# --- 3. restarts and cycles ---------------------------------------------------------------------

@pytest.mark.parametrize("T_0,T_mult,iters", list(itertools.product((1, 2, 3), (1, 2, 3),
                                                                    (3, 7, 10, 16))))
def test_fractional_epochs_equal_per_batch_steps(T_0, T_mult, iters):
    epochs = 15
    optimizer = sgd()
    restarts = lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=T_0, T_mult=T_mult)
    fractional = []
    for epoch in range(epochs):
        for i in range(iters):
            fractional.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            restarts.step(epoch + (i + 1) / iters)
    in_batches = schedulers.lr_trace(
        lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=T_0 * iters, T_mult=T_mult),
        epochs=epochs, steps_per_epoch=iters, step_per="batch")
    for step, (a, b) in enumerate(zip(fractional, in_batches)):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (step, a, b)
    restart_steps = [s for s in range(1, len(fractional)) if fractional[s] > fractional[s - 1]]
    # restarts after T_0, T_0 + T_0*T_mult, ... epochs
    ends = list(itertools.accumulate(T_0 * T_mult**i for i in range(20)))
    assert restart_steps == [end * iters for end in ends if end < epochs]


@pytest.mark.parametrize("mode,kwargs", [("triangular", {}), ("triangular2", {}),
                                         ("exp_range", {"gamma": 0.99})])
@pytest.mark.parametrize("step_size_up", [2, 5, 10])
def test_cyclic_momentum_mirrors_the_lr(mode, kwargs, step_size_up):
    optimizer = sgd()
    scheduler = lr_scheduler.CyclicLR(optimizer, base_lr=0.01, max_lr=0.1,
                                      step_size_up=step_size_up, mode=mode, **kwargs)
    lrs, momenta = [], []
    for _ in range(8 * step_size_up):
        lrs.append(optimizer.param_groups[0]["lr"])
        momenta.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        scheduler.step()
    for t, (lr, momentum) in enumerate(zip(lrs, momenta)):
        # base_lr + amplitude * scale, momentum = max_m - (max_m - base_m) * amplitude * scale
        x = (lr - 0.01) / (0.1 - 0.01)
        assert math.isclose(momentum, 0.9 - 0.1 * x, rel_tol=1e-9, abs_tol=1e-12), t
    peaks = [max(lrs[c * 2 * step_size_up:(c + 1) * 2 * step_size_up]) for c in range(4)]
    if mode == "triangular":
        assert all(math.isclose(p, 0.1) for p in peaks)
    elif mode == "triangular2":     # the excursion halves every cycle
        assert all(math.isclose(p - 0.01, 0.09 / 2**c) for c, p in enumerate(peaks))
    else:                           # exp_range: the excursion times gamma**step
        top = step_size_up
        assert math.isclose(lrs[top], 0.01 + 0.09 * 0.99**top, rel_tol=1e-9)


# --- 4. the resume matrix -----------------------------------------------------------------------

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
    "CyclicLR triangular2": with_last_epoch(lr_scheduler.CyclicLR, base_lr=0.01, max_lr=0.1,
                                            step_size_up=2, mode="triangular2"),
    "SWALR": with_last_epoch(swa_utils.SWALR, swa_lr=0.01, anneal_epochs=7),
    "SequentialLR": lambda opt, last_epoch=-1: warmup_then_cosine(opt, 3, 10),
    "ChainedScheduler": lambda opt, last_epoch=-1: warmup_times_cosine(opt, 3, 10),
    "ReduceLROnPlateau": lambda opt, last_epoch=-1: lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.5, patience=1),
}
NO_LAST_EPOCH = {"SequentialLR", "ChainedScheduler", "ReduceLROnPlateau"}
LOSSES = [1.0, 0.9, 0.95, 0.96, 0.85, 0.9, 0.91, 0.92, 0.8, 0.85]
N = 10


def lrs_of_steps(optimizer, scheduler, start, stop):
    lrs = []
    for t in range(start, stop):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
            scheduler.step(LOSSES[t])
        else:
            scheduler.step()
    return lrs


def uninterrupted(name):
    optimizer = sgd()
    return lrs_of_steps(optimizer, RESUMABLE[name](optimizer), 0, N)


def resume(name, how, k):
    make = RESUMABLE[name]
    optimizer = sgd()
    scheduler = make(optimizer)
    lrs_of_steps(optimizer, scheduler, 0, k)
    saved = copy.deepcopy((optimizer.state_dict(), scheduler.state_dict()))
    optimizer = sgd()
    if how == "state saved":
        scheduler = make(optimizer)
        optimizer.load_state_dict(saved[0])
        scheduler.load_state_dict(saved[1])
    elif how == "state lost":
        scheduler = make(optimizer)
        optimizer.load_state_dict(saved[0])
    else:
        if how == "last_epoch":
            optimizer.load_state_dict(saved[0])
        scheduler = make(optimizer, last_epoch=k - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lrs_of_steps(optimizer, scheduler, k, N)


@pytest.mark.parametrize("name", RESUMABLE)
@pytest.mark.parametrize("k", range(1, N))
def test_with_the_state_saved_every_scheduler_continues_exactly(name, k):
    assert resume(name, "state saved", k) == uninterrupted(name)[k:]


@pytest.mark.parametrize("name", RESUMABLE)
def test_with_the_state_lost_only_exponential_lr_continues(name):
    continued = [resume(name, "state lost", k) == uninterrupted(name)[k:] for k in range(1, N)]
    if name == "ExponentialLR":
        assert all(continued)       # it multiplies whatever lr the optimizer holds
    else:
        assert not continued[5 - 1]                 # the lesson's interruption point
        assert not all(continued)


@pytest.mark.parametrize("name", ["SequentialLR", "ChainedScheduler", "LinearLR"])
@pytest.mark.parametrize("k", range(1, 3))
def test_a_warmup_resumed_without_its_state_overshoots_the_peak(name, k):
    # interrupted during the warmup: the fresh warmup multiplies the restored lr by its factor
    assert max(resume(name, "state lost", k)) > 0.1 * 1.5


def test_the_lessons_sequential_lr_overshoot():
    assert max(resume("SequentialLR", "state lost", 5)) > 2 * 0.1


# The interruption points k (of N = 10 steps) at which `last_epoch=k-1` does NOT continue the
# run, as seen on torch 2.13 and 2.14.1 (identical) and on 2.3; other versions are not asserted.
LAST_EPOCH_OFF = {
    "new": {"StepLR": {2, 4, 6, 8},                 # stopped right at a decay: decays twice
            "MultiStepLR": {3, 6},                  # likewise at each milestone
            "CosineAnnealingWarmRestarts": {6, 7, 8},
            "SWALR": {1, 2, 3, 4, 5, 6}},           # anneals from the lr it finds
    "2.3": {"StepLR": {2, 4, 6, 8}, "MultiStepLR": {3, 6}, "CosineAnnealingWarmRestarts": {9},
            "SWALR": {1, 2, 3, 4, 5, 6}, "ExponentialLR": set(range(1, N)),
            "LinearLR": set(range(1, 8)), "CosineAnnealingLR": set(range(3, N))},
}


@pytest.mark.parametrize("name", sorted(set(RESUMABLE) - NO_LAST_EPOCH))
def test_last_epoch_resumes_by_version(name):
    off = {k for k in range(1, N) if resume(name, "last_epoch", k) != uninterrupted(name)[k:]}
    if TORCH >= (2, 13):
        assert off == LAST_EPOCH_OFF["new"].get(name, set())
    elif TORCH == (2, 3):
        assert off == LAST_EPOCH_OFF["2.3"].get(name, set())
    assert 5 not in off or name in ("SWALR", "ExponentialLR", "LinearLR", "CosineAnnealingLR")


def test_step_lr_resumed_at_a_decay_step_with_last_epoch_decays_twice():
    # the lesson's example: step_size=2, stopped after 4 steps (the 4th set the decayed lr)
    assert resume("StepLR", "state saved", 4)[:2] == [0.025, 0.025]
    assert resume("StepLR", "last_epoch", 4)[:2] == [0.0125, 0.0125]


@pytest.mark.parametrize("name", sorted(set(RESUMABLE) - NO_LAST_EPOCH))
def test_last_epoch_without_the_optimizer_state_raises_key_error(name):
    with pytest.raises(KeyError, match="initial_lr"):
        resume(name, "no optimizer state", 5)


def test_load_state_dict_of_cyclic_lr_consumes_the_dict():
    # why the notebook deep-copies a saved state before loading it more than once
    optimizer = sgd()
    scheduler = RESUMABLE["CyclicLR"](optimizer)
    state = scheduler.state_dict()
    RESUMABLE["CyclicLR"](sgd()).load_state_dict(state)
    if TORCH >= (2, 3):
        with pytest.raises(KeyError):
            RESUMABLE["CyclicLR"](sgd()).load_state_dict(state)


# --- OneCycleLR's length ------------------------------------------------------------------------

@pytest.mark.parametrize("total_steps", [2, 10, 37, 100])
def test_one_cycle_allows_exactly_total_steps_calls(total_steps):
    optimizer = sgd()
    one_cycle = lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=total_steps)
    for _ in range(total_steps):
        optimizer.step()
        one_cycle.step()
    with pytest.raises(ValueError, match=f"Tried to step {total_steps + 1} times. The specified "
                                         f"number of total steps is {total_steps}"):
        one_cycle.step()


@pytest.mark.parametrize("epochs,steps_per_epoch", [(2, 5), (3, 16)])
def test_one_cycle_sized_by_epochs_fits_the_training_loop(epochs, steps_per_epoch):
    optimizer = sgd()
    one_cycle = lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, epochs=epochs,
                                        steps_per_epoch=steps_per_epoch)
    for _ in range(epochs * steps_per_epoch):
        optimizer.step()
        one_cycle.step()
    with pytest.raises(ValueError, match="Tried to step"):
        one_cycle.step()                 # one more epoch's first step


def test_loading_a_one_cycle_state_brings_back_its_length():
    optimizer = sgd()
    one_cycle = lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
    lrs_of_steps(optimizer, one_cycle, 0, 10)
    longer = lr_scheduler.OneCycleLR(sgd(), max_lr=0.1, total_steps=20)
    longer.load_state_dict(one_cycle.state_dict())
    assert longer.total_steps == 10
    with pytest.raises(ValueError, match="Tried to step"):
        longer.step()


# --- 5. GradScaler's skipped step ---------------------------------------------------------------

def scaled_steps(bad_steps, *, only_after_real_step, bad=math.inf, steps=6):
    """A tiny model trained with GradScaler on the CPU; the gradient is made `bad` at the steps
    in `bad_steps`. Returns the lrs of real optimizer steps, the number skipped, the warnings."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    scaler = torch.amp.GradScaler("cpu")
    used, skipped = [], 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(steps):
            loss = F.cross_entropy(model(torch.randn(8, 4)), torch.randint(0, 3, (8,)))
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            if step in bad_steps:
                model.bias.grad[0] = bad
            weights, scale, lr = model.weight.detach().clone(), scaler.get_scale(), \
                optimizer.param_groups[0]["lr"]
            scaler.step(optimizer)
            scaler.update()
            stepped = scaler.get_scale() >= scale
            assert stepped != torch.equal(weights, model.weight)   # the scale tells the truth
            used, skipped = used + ([lr] if stepped else []), skipped + (not stepped)
            if stepped or not only_after_real_step:
                scheduler.step()
    order = [w for w in caught if "before `optimizer.step()`" in str(w.message)]
    return used, skipped, order


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_a_skipped_first_step_warns_and_loses_the_first_lr(bad):
    used, skipped, order = scaled_steps({0}, only_after_real_step=False, bad=bad)
    assert skipped == 1 and len(order) == 1
    assert used == [0.1 * 0.5**t for t in range(1, 6)]


@pytest.mark.parametrize("bad_steps", [{0}, {0, 1}, {2}, {1, 4}, set()])
def test_stepping_only_after_real_steps_keeps_the_schedule(bad_steps):
    used, skipped, order = scaled_steps(bad_steps, only_after_real_step=True)
    assert skipped == len(bad_steps) and not order
    assert used == [0.1 * 0.5**t for t in range(6 - len(bad_steps))]


def test_a_skip_after_the_first_step_shifts_the_schedule_silently():
    used, skipped, order = scaled_steps({2}, only_after_real_step=False)
    assert skipped == 1 and not order                # torch only checks the first step
    assert used == [0.1, 0.05, 0.1 * 0.5**3, 0.1 * 0.5**4, 0.1 * 0.5**5]


# --- 6. SWA and BatchNorm statistics ------------------------------------------------------------

def test_averaged_model_holds_the_last_weights_statistics_until_update_bn():
    torch.manual_seed(0)
    model = models.LeNet(batch_norm=True)
    swa_model = swa_utils.AveragedModel(model)
    built = copy.deepcopy(swa_model.module.state_dict())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = [(torch.randn(16, 1, 28, 28) * 2 + 1, torch.randint(0, 10, (16,)))
               for _ in range(4)]
    for X, y in batches:
        loss = F.cross_entropy(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        swa_model.update_parameters(model)
        # buffers: copied from the model at every update (use_buffers=False, the default)
        for (name, swa_buffer), model_buffer in zip(swa_model.module.named_buffers(),
                                                    model.buffers()):
            assert torch.equal(swa_buffer, model_buffer), name
    assert not torch.equal(swa_model.module.features.bn1.running_mean,
                           built["features.bn1.running_mean"])
    averaged = dict(swa_model.module.named_parameters())
    assert not torch.equal(averaged["features.conv1.weight"], model.features.conv1.weight)
    swa_utils.update_bn(batches, swa_model)
    # update_bn: a cumulative average over the batches of the averaged weights' statistics
    features = swa_model.module.features
    with torch.no_grad():
        means = [features.conv1(X).mean(dim=(0, 2, 3)) for X, _ in batches]
    assert torch.allclose(features.bn1.running_mean, torch.stack(means).mean(0), atol=1e-5)
    assert not torch.allclose(features.bn1.running_mean, model.features.bn1.running_mean)
    assert swa_model.training                        # the mode it was in is kept
