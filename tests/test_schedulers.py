"""Tests for course_utils.schedulers, checked against torch's own schedulers or closed forms."""

import math
import warnings

import pytest
import torch
from torch.optim import lr_scheduler

from course_utils import schedulers


def torch_lrs(make, steps, lr=0.1, metrics=None):
    """The lr torch reports before each of `steps` optimizer steps, written without lr_trace.

    Reads scheduler.get_last_lr() (lr_trace reads the optimizer's param_groups instead).
    """
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=lr)
    scheduler = make(optimizer)
    lrs = []
    for step in range(steps):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[step])
    return lrs


def exponential(gamma):
    return lambda optimizer: lr_scheduler.ExponentialLR(optimizer, gamma=gamma)


# --- lr_trace against torch ---------------------------------------------------------------------

# Each case builds one scheduler; lr_trace must give what torch reports, step by step.
EPOCH_CASES = {
    "LambdaLR": lambda opt: lr_scheduler.LambdaLR(opt, lambda epoch: 1 / (1 + epoch)),
    "StepLR": lambda opt: lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    "MultiStepLR": lambda opt: lr_scheduler.MultiStepLR(opt, milestones=[2, 5], gamma=0.1),
    "ExponentialLR": exponential(0.9),
    # 12 epochs with T_max=4: down to eta_min in epoch 5, back up to the start in epoch 9.
    "CosineAnnealingLR": lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.001),
}


@pytest.mark.parametrize("make", EPOCH_CASES.values(), ids=EPOCH_CASES.keys())
def test_lr_trace_matches_torch_per_epoch(make):
    epochs = 12
    lrs = schedulers.lr_trace(make, epochs=epochs)
    assert lrs == torch_lrs(make, epochs)
    assert len(set(lrs)) > 1  # every case really changes the lr


def test_cosine_rises_again_after_t_max():
    lrs = schedulers.lr_trace(lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=4), epochs=9)
    assert lrs[4] == pytest.approx(0.0, abs=1e-15)  # the minimum, after T_max steps
    assert lrs[5] > lrs[4]
    assert lrs[8] == pytest.approx(0.1)  # back at the start after 2 * T_max steps


def test_lr_trace_onecycle_per_batch_matches_torch():
    # 20 steps: the warm-up ends exactly at step pct_start * 20 - 1 = 5, so the peak is max_lr
    # itself (with e.g. 21 steps the peak falls between two steps, slightly below max_lr).
    epochs, steps_per_epoch, max_lr = 4, 5, 0.5

    def make(opt):
        return lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=20)

    lrs = schedulers.lr_trace(make, epochs=epochs, steps_per_epoch=steps_per_epoch,
                              step_per="batch")
    assert len(lrs) == epochs * steps_per_epoch
    assert lrs == torch_lrs(make, steps=20)
    assert max(lrs) == pytest.approx(max_lr)


def test_lr_trace_plateau_with_metrics_matches_torch():
    metrics = [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8]

    def make(opt):
        return lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)

    lrs = schedulers.lr_trace(make, epochs=10, metrics=metrics)
    assert lrs == torch_lrs(make, 10, metrics=metrics)
    assert lrs[-1] < lrs[0]  # the case really reduces, so the comparison is not trivial


def test_lr_trace_plateau_per_batch_steps_once_per_epoch():
    metrics = [1.0, 1.0, 1.0, 1.0]

    def make(opt):
        return lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)

    per_epoch = schedulers.lr_trace(make, epochs=4, metrics=metrics)
    per_batch = schedulers.lr_trace(make, epochs=4, steps_per_epoch=3, step_per="batch",
                                    metrics=metrics)
    assert per_batch == [lr for lr in per_epoch for _ in range(3)]


def test_lr_trace_exponential_per_batch_matches_torch():
    lrs = schedulers.lr_trace(exponential(0.8), epochs=2, steps_per_epoch=5, step_per="batch")
    assert lrs == torch_lrs(exponential(0.8), 10)


def test_lr_trace_uses_the_starting_lr():
    def make(optimizer):
        return lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.1)

    assert schedulers.lr_trace(make, epochs=6, lr=0.3) == torch_lrs(make, 6, lr=0.3)


def test_lr_trace_steps_in_the_right_order_without_warnings():
    with warnings.catch_warnings():
        # torch warns if scheduler.step() comes before optimizer.step()
        warnings.simplefilter("error")
        schedulers.lr_trace(exponential(0.9), epochs=3)
        schedulers.lr_trace(lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=8),
                            epochs=2, steps_per_epoch=4, step_per="batch")
        schedulers.lr_trace(lambda opt: lr_scheduler.ReduceLROnPlateau(opt), epochs=3,
                            metrics=[3.0, 2.0, 1.0])


# --- ExponentialLR closed forms -----------------------------------------------------------------

def test_exponential_lr_matches_torch_on_a_grid():
    # torch's step() is chainable (lr <- lr * gamma, one rounding per step); the closed form uses
    # pow once, so they differ by rounding only. Measured on torch 2.14.1 over lr in 1e-4..3,
    # gamma in 0.5..1.5, n <= 200: max relative error 1.8e-15 (about 8 ulps, growing with n).
    # rel=1e-13 leaves a 50x margin; a wrong exponent (n-1 or n+1) is off by 1% or more.
    for lr in [1e-4, 0.01, 0.1, 3.0]:
        for gamma in [0.5, 0.9, 0.99, 1.0, 1.1]:
            closed = schedulers.exponential_lr(lr, gamma, range(101))
            chained = torch_lrs(exponential(gamma), 101, lr=lr)
            assert closed == pytest.approx(chained, rel=1e-13)


def test_exponential_lr_int_and_sequence():
    assert schedulers.exponential_lr(0.1, 0.5, 0) == 0.1
    assert schedulers.exponential_lr(0.1, 0.5, 3) == pytest.approx(0.0125)
    assert schedulers.exponential_lr(0.1, 0.5, [0, 1, 2]) == pytest.approx([0.1, 0.05, 0.025])


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.95, 0.999])
def test_half_life_halves_the_lr(gamma):
    steps = schedulers.half_life(gamma)
    assert gamma**steps == pytest.approx(0.5, rel=1e-12)
    # After round(half_life) real torch steps the lr is within one step's factor of half.
    lr = torch_lrs(exponential(gamma), round(steps) + 1, lr=1.0)[-1]
    assert gamma <= lr / 0.5 <= 1 / gamma


def test_half_life_of_gamma_one_is_infinite():
    assert schedulers.half_life(1.0) == math.inf


@pytest.mark.parametrize(
    "lr, target_lr, steps", [(0.1, 0.001, 20), (0.1, 0.05, 1), (1e-5, 1.0, 50)]
)
def test_gamma_for_target_reaches_the_target_in_torch(lr, target_lr, steps):
    gamma = schedulers.gamma_for_target(lr, target_lr, steps)
    lrs = torch_lrs(exponential(gamma), steps + 1, lr=lr)
    assert lrs[steps] == pytest.approx(target_lr, rel=1e-12)  # pow, then chained rounding


def test_per_batch_gamma_matches_per_epoch_decay_at_epoch_boundaries():
    gamma, epochs, steps_per_epoch = 0.9, 5, 40
    per_epoch = schedulers.lr_trace(exponential(gamma), epochs=epochs)
    per_batch = schedulers.lr_trace(
        exponential(schedulers.per_batch_gamma(gamma, steps_per_epoch)), epochs=epochs,
        steps_per_epoch=steps_per_epoch, step_per="batch")
    # 200 chained multiplications by a pow-rounded factor drift by ~1e-14 relative: rel=1e-12.
    assert per_batch[::steps_per_epoch] == pytest.approx(per_epoch, rel=1e-12)


# --- Error paths --------------------------------------------------------------------------------

def test_torch_itself_accepts_gamma_zero():
    # The reason the closed forms check gamma: torch silently sets the lr to 0.
    assert torch_lrs(exponential(0.0), 2)[1] == 0.0


def test_gamma_above_one_is_allowed_and_grows():
    lrs = schedulers.lr_trace(exponential(10.0), epochs=4, lr=1e-3)
    assert lrs == pytest.approx([1e-3, 1e-2, 1e-1, 1.0])


def test_verbose_is_a_type_error_from_torch_2_7_on():
    # Notebook 01 teaches this; older tutorials still pass verbose=True.
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
    if version >= (2, 7):
        with pytest.raises(TypeError, match="verbose"):
            lr_scheduler.ExponentialLR(optimizer, gamma=0.9, verbose=True)
    else:   # deprecated since 2.2: accepted, with a warning
        with pytest.warns(UserWarning, match="verbose"):
            lr_scheduler.ExponentialLR(optimizer, gamma=0.9, verbose=True)


def test_lr_trace_needs_a_function_that_builds_the_scheduler():
    with pytest.raises(TypeError, match="needs a function that builds the scheduler"):
        schedulers.lr_trace("exponential", epochs=3)


def test_plateau_needs_one_metric_per_epoch():
    def make(opt):
        return lr_scheduler.ReduceLROnPlateau(opt)

    with pytest.raises(ValueError, match="needs metrics"):
        schedulers.lr_trace(make, epochs=3)
    with pytest.raises(ValueError, match="got 2 values for epochs=3"):
        schedulers.lr_trace(make, epochs=3, metrics=[1.0, 0.5])


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs must be at least 1"),
    ({"epochs": 2.5}, "epochs must be a whole number"),
    ({"epochs": True}, "epochs must be a whole number, got True"),
    ({"epochs": 3, "steps_per_epoch": 0}, "steps_per_epoch must be at least 1"),
    ({"epochs": 3, "step_per": "iteration"}, "step_per must be 'epoch' or 'batch'"),
])
def test_lr_trace_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        schedulers.lr_trace(exponential(0.9), **kwargs)


@pytest.mark.parametrize("call, message", [
    (lambda: schedulers.exponential_lr(0.0, 0.9, 3), "lr .* must be positive"),
    (lambda: schedulers.exponential_lr(-0.1, 0.9, 3), "lr .* must be positive"),
    (lambda: schedulers.exponential_lr(0.1, 0.0, 3), "must be positive"),
    (lambda: schedulers.exponential_lr(0.1, 0.9, -1), "n .* must be at least 0"),
    (lambda: schedulers.exponential_lr(0.1, 0.9, 2.5), "n .* must be a whole number"),
    (lambda: schedulers.exponential_lr(0.1, 0.9, [1, -2]), "must be at least 0"),
    (lambda: schedulers.half_life(1.5), "grows and never halves"),
    (lambda: schedulers.half_life(0.0), "must be positive"),
    (lambda: schedulers.half_life(-0.9), "must be positive"),
    (lambda: schedulers.gamma_for_target(0.0, 0.01, 10), "lr .* must be positive"),
    (lambda: schedulers.gamma_for_target(0.1, -0.01, 10), "target_lr must be positive"),
    (lambda: schedulers.gamma_for_target(0.1, 0.01, 0), "steps must be at least 1"),
    (lambda: schedulers.per_batch_gamma(0.0, 10), "must be positive"),
    (lambda: schedulers.per_batch_gamma(0.9, 0), "steps_per_epoch must be at least 1"),
])
def test_closed_forms_reject_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_check_whole_accepts_numpy_integers_and_returns_an_int():
    import numpy as np

    from course_utils._checks import check_whole

    number = check_whole(np.int64(4), "epochs", minimum=1)
    assert number == 4 and type(number) is int
