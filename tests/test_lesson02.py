"""The claims notebook 02 (ExponentialLR) shows once, checked here exhaustively against torch.

The notebook states each claim with one illustrative case and points here; these tests hold it to
every case of a grid, on every commit. Public torch API only.
"""

import math
import sys
import warnings

import pytest
import torch
from torch.optim import lr_scheduler

from course_utils import schedulers

EPS = sys.float_info.epsilon        # 2**-52
LR0_GRID = (1e-4, 3e-3, 0.05, 0.1, 1.0, 3.0)
GAMMA_GRID = (0.5, 0.7, 0.9, 0.95, 0.99, 0.999, 1.0, 1.05)
MAX_STEPS = 200


def exponential(gamma):
    return lambda optimizer: lr_scheduler.ExponentialLR(optimizer, gamma=gamma)


def sgd(lr=0.1):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


# --- the rule, to the last bits -----------------------------------------------------------------

def test_rule_holds_on_the_grid_within_the_rounding_bound():
    """lr_n = lr0 * gamma**n for 6 lr0 x 8 gammas x n = 0..200 (9,648 cases).

    torch multiplies n times (at most eps/2 relative each); the closed form rounds in gamma**n
    (within one unit) and once more times lr0: they may differ by a relative (n + 2) * eps. The
    errors seen are far smaller, under n * eps / 2, as that argument predicts."""
    checks, worst = 0, 0.0          # worst: the largest error seen, in units of n * eps
    for lr0 in LR0_GRID:
        for gamma in GAMMA_GRID:
            measured = schedulers.lr_trace(exponential(gamma), epochs=MAX_STEPS + 1, lr=lr0)
            for n, lr in enumerate(measured):
                expected = schedulers.exponential_lr(lr0, gamma, n)
                assert math.isclose(lr, expected, rel_tol=(n + 2) * EPS, abs_tol=0), (lr0, gamma, n)
                checks += 1
                if n > 0:
                    worst = max(worst, abs(lr - expected) / expected / (n * EPS))
    assert checks == len(LR0_GRID) * len(GAMMA_GRID) * (MAX_STEPS + 1) == 9648
    assert 0 < worst < 0.5          # not bit for bit, and within n * eps / 2


def test_chained_and_closed_form_are_not_bit_for_bit_equal():
    # The notebook's example: equality would be the wrong test.
    assert 0.1 * 0.9 * 0.9 * 0.9 != 0.1 * 0.9**3
    assert math.isclose(0.1 * 0.9 * 0.9 * 0.9, 0.1 * 0.9**3, rel_tol=5 * EPS)


def test_n_counts_step_calls_and_construction_stores_initial_lr():
    optimizer = sgd(0.1)
    scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    assert scheduler.last_epoch == 0 and scheduler.get_last_lr() == [0.1]
    assert optimizer.param_groups[0]["initial_lr"] == 0.1
    for n in range(1, 6):
        optimizer.step()
        scheduler.step()
        assert scheduler.last_epoch == n
        assert scheduler.get_last_lr() == [optimizer.param_groups[0]["lr"]] == [0.1 * 0.5**n]


# --- what the rule predicts ---------------------------------------------------------------------

@pytest.mark.parametrize("gamma", [0.99, 0.95, 0.9, 0.8, 0.7, 0.5])
def test_half_life_rule_of_thumb_and_budget(gamma):
    h = schedulers.half_life(gamma)
    lrs = schedulers.lr_trace(exponential(gamma), epochs=math.ceil(h) + 2, lr=1.0)
    assert lrs[math.floor(h)] >= 0.5 >= lrs[math.ceil(h)]         # halved between the two
    too_long = math.log(2) / (1 - gamma) / h - 1                   # 0.69 / (1 - gamma) vs h
    assert 0 < too_long < 1 - gamma                                # a little long, always
    if gamma >= 0.9:                                                # by about (1 - gamma) / 2
        assert abs(too_long - (1 - gamma) / 2) < (1 - gamma) ** 2 / 2
    budget = sum(schedulers.lr_trace(exponential(gamma), epochs=2001, lr=1.0))
    assert budget <= 1 / (1 - gamma) * (1 + 1e-9)                  # the lr budget lr0 / (1 - gamma)
    assert budget > 1 / (1 - gamma) * (1 - 1e-6)                   # and it is reached


@pytest.mark.parametrize("epochs", [2, 3, 10, 20])
def test_gamma_for_the_last_epoch_counts_epochs_minus_one(epochs):
    start, target = 0.05, 0.0005
    right = schedulers.lr_trace(exponential(schedulers.gamma_for_target(start, target, epochs - 1)),
                                epochs=epochs, lr=start)
    late = schedulers.lr_trace(exponential(schedulers.gamma_for_target(start, target, epochs)),
                               epochs=epochs, lr=start)
    assert math.isclose(right[-1], target, rel_tol=(epochs + 2) * EPS)
    assert late[-1] > target * 1.2                                  # one step too late


@pytest.mark.parametrize("gamma, steps", [(0.9, 100), (0.5, 7), (0.99, 250)])
def test_per_batch_mean_factor(gamma, steps):
    """Over an epoch, per-batch stepping trains with (1 - gamma) / (S (1 - gamma**(1/S))) of the
    per-epoch lr on average."""
    epochs = 5
    per_batch = schedulers.lr_trace(exponential(schedulers.per_batch_gamma(gamma, steps)),
                                    epochs=epochs, lr=0.05, steps_per_epoch=steps,
                                    step_per="batch")
    per_epoch = schedulers.lr_trace(exponential(gamma), epochs=epochs, lr=0.05)
    factor = (1 - gamma) / (steps * (1 - gamma ** (1 / steps)))
    assert gamma < factor < 1
    for k in range(epochs):
        assert math.isclose(per_batch[k * steps], per_epoch[k], rel_tol=(k * steps + 2) * EPS)
        mean = sum(per_batch[k * steps:(k + 1) * steps]) / steps
        assert math.isclose(mean, per_epoch[k] * factor, rel_tol=1e-11)


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_exponential_lr_is_step_lr_with_step_size_one(gamma):
    exponential_trace = schedulers.lr_trace(exponential(gamma), epochs=300, lr=0.05)
    step_trace = schedulers.lr_trace(
        lambda optimizer: lr_scheduler.StepLR(optimizer, step_size=1, gamma=gamma),
        epochs=300, lr=0.05)
    assert exponential_trace == step_trace                          # bit for bit


# --- chainable and closed form ------------------------------------------------------------------

def test_two_schedulers_multiply_and_chained_scheduler_is_the_same():
    optimizer = sgd(0.1)
    decay = lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    cuts = lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.1)
    both = []
    for n in range(1, 13):
        optimizer.step()
        decay.step()
        cuts.step()
        both.append(optimizer.param_groups[0]["lr"])
        assert math.isclose(both[-1], 0.1 * 0.9**n * 0.1 ** (n // 3), rel_tol=4 * n * EPS)
    optimizer = sgd(0.1)
    chained = lr_scheduler.ChainedScheduler([
        lr_scheduler.ExponentialLR(optimizer, gamma=0.9),
        lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.1)])
    chained_lrs = []
    for _ in range(12):
        optimizer.step()
        chained.step()
        chained_lrs.append(optimizer.param_groups[0]["lr"])
    assert chained_lrs == both


def test_step_with_an_epoch_warns_and_jumps_to_the_closed_form():
    optimizer = sgd(0.1)
    scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    optimizer.param_groups[0]["lr"] = 0.2                  # a change by hand ...
    optimizer.step()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scheduler.step(3)
    assert caught and "deprecated" in str(caught[0].message)
    assert math.isclose(optimizer.param_groups[0]["lr"], 0.1 * 0.5**3, rel_tol=4 * EPS)  # ... gone


# --- last_epoch and resuming --------------------------------------------------------------------

def test_last_epoch_without_initial_lr_is_a_key_error():
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.ExponentialLR(sgd(0.1), gamma=0.5, last_epoch=3)


TORCH_VERSION = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])


def run_and_save(k):
    """An uninterrupted ExponentialLR run of k steps and its optimizer and scheduler state."""
    optimizer = sgd(0.1)
    scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    for _ in range(k):
        optimizer.step()
        scheduler.step()
    return optimizer, scheduler, {"optimizer": optimizer.state_dict(),
                                  "scheduler": scheduler.state_dict()}


def assert_goes_on_together(optimizer, scheduler, resumed_optimizer, resumed, factor=1.0):
    """Five more steps: same counter, and the resumed lr is `factor` times the uninterrupted one."""
    for _ in range(5):
        for opt, sched in ((optimizer, scheduler), (resumed_optimizer, resumed)):
            opt.step()
            sched.step()
        assert resumed.last_epoch == scheduler.last_epoch
        assert resumed.get_last_lr() == [scheduler.get_last_lr()[0] * factor]


@pytest.mark.parametrize("k", [1, 3, 7])
def test_resuming_with_last_epoch_continues_the_run_from_torch_2_8(k):
    """Optimizer state loaded (it carries lr and initial_lr), scheduler built with
    last_epoch=k - 1: its counter reads k. Since torch 2.8 the lrs go on as in the uninterrupted
    run; before, the constructor's step multiplied the loaded lr by gamma once more."""
    optimizer, scheduler, checkpoint = run_and_save(k)
    assert checkpoint["optimizer"]["param_groups"][0]["initial_lr"] == 0.1

    resumed_optimizer = sgd(0.1)
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    resumed = lr_scheduler.ExponentialLR(resumed_optimizer, gamma=0.5, last_epoch=k - 1)
    assert resumed.last_epoch == scheduler.last_epoch == k
    factor = 1.0 if TORCH_VERSION >= (2, 8) else 0.5      # gamma, exact in binary
    assert resumed.get_last_lr() == [scheduler.get_last_lr()[0] * factor]
    assert_goes_on_together(optimizer, scheduler, resumed_optimizer, resumed, factor)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_restoring_the_scheduler_state_continues_the_run_on_every_version(k):
    """Fresh scheduler on the loaded optimizer, then load_state_dict: counter and lr come back."""
    optimizer, scheduler, checkpoint = run_and_save(k)
    restored_optimizer = sgd(0.1)
    restored_optimizer.load_state_dict(checkpoint["optimizer"])
    restored = lr_scheduler.ExponentialLR(restored_optimizer, gamma=0.5)
    restored.load_state_dict(checkpoint["scheduler"])
    assert (restored.last_epoch, restored.get_last_lr()) == (k, scheduler.get_last_lr())
    assert_goes_on_together(optimizer, scheduler, restored_optimizer, restored)