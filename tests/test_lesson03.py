"""The exhaustive checks behind notebook 03 (ReduceLROnPlateau), which shows one check per claim.

Each test backs a sentence of the lesson against torch's public API: every example sequence it
tables (field by field, through test_plateau_replay's `assert_matches_torch`), the table of what
counts as better, the patience, cooldown, factor and eps rules over grids, the resume example,
and the claims of the recipe section (zero_grad after step; ToTensor-like inputs). How the
replay matches torch on random sequences is tested in test_plateau_replay.py, not here."""

import dataclasses
import math

import pytest
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from course_utils import data, models, notebook, plateau_replay, schedulers
from tests.test_plateau_replay import assert_matches_torch, torch_is_better


def torch_lrs(metrics, **kwargs):
    """The lr torch's scheduler gives each epoch (one param group, start lr `lr`)."""
    lr = kwargs.pop("lr", 0.1)
    return schedulers.lr_trace(lambda optimizer: ReduceLROnPlateau(optimizer, **kwargs),
                               epochs=len(metrics), lr=lr, metrics=metrics)


def cut_epochs(lrs):
    """Epochs (1-based) whose step cut the lr: the next epoch trains with a smaller one."""
    return [epoch for epoch in range(1, len(lrs)) if lrs[epoch] < lrs[epoch - 1]]


# ---------------------------------------------------------------- every table of the lesson

FLAT = [1.0]
LESSON_EXAMPLES = {
    # name: (metrics, kwargs, epochs whose step() cuts the lr, as the lesson says)
    "1 oscillating": ([1.00, 0.70, 0.75, 0.72, 0.76, 0.71, 0.74, 0.69],
                      dict(patience=3, factor=0.5), [6]),
    "2 flat, patience=2": (FLAT * 8, dict(patience=2), [4, 7]),
    "3 slow descent, rel": ([0.200, 0.197, 0.194, 0.191, 0.188, 0.185, 0.182, 0.179, 0.176],
                            dict(threshold=0.01, threshold_mode="rel", patience=2), []),
    "3 slow descent, abs": ([0.200, 0.197, 0.194, 0.191, 0.188, 0.185, 0.182, 0.179, 0.176],
                            dict(threshold=0.01, threshold_mode="abs", patience=2), [4, 8]),
    "3 negative, rel": ([-1.00, -0.95, -0.91, -0.88, -0.86, -0.85],
                        dict(threshold=0.1, threshold_mode="rel", patience=1), []),
    "3 negative, abs": ([-1.00, -0.95, -0.91, -0.88, -0.86, -0.85],
                        dict(threshold=0.1, threshold_mode="abs", patience=1), [3, 5]),
    "4 cooldown": (FLAT * 12, dict(patience=2, cooldown=2, factor=0.5), [4, 9]),
    "6 min_lr per group": (FLAT * 5, dict(lr=[0.1, 0.01], patience=0, min_lr=[0.005, 0.0]),
                           [2, 3, 4, 5]),
    "7 eps skips": (FLAT * 4, dict(patience=0, factor=0.5, eps=0.06), []),
    "8 accuracy, max": ([0.70, 0.75, 0.78, 0.80, 0.81, 0.82],
                        dict(mode="max", patience=1, factor=0.5), []),
    "8 accuracy, min": ([0.70, 0.75, 0.78, 0.80, 0.81, 0.82],
                        dict(mode="min", patience=1, factor=0.5), [3, 5]),
    "11 per batch, fastest": (FLAT * 60, dict(patience=5), [7, 13, 19, 25, 31, 37, 43]),
    "12 resume sequence": ([1.00, 0.90, 0.95, 0.96, 0.85, 0.87, 0.86, 0.88, 0.89, 0.90],
                           dict(patience=1, factor=0.5), [4, 7, 9]),
}


@pytest.mark.parametrize("name", LESSON_EXAMPLES)
def test_every_table_of_the_lesson_matches_torch(name):
    metrics, kwargs, cuts = LESSON_EXAMPLES[name]
    steps = assert_matches_torch(metrics, **kwargs)        # every field, every step
    assert steps.reductions == cuts


def test_the_lesson_examples_show_what_the_prose_says():
    oscillating = plateau_replay.replay_plateau(*LESSON_EXAMPLES["1 oscillating"][:1],
                                                **LESSON_EXAMPLES["1 oscillating"][1])
    # Epochs 4 and 6 went down from the epoch before, yet were bad epochs; 8 resets the count.
    assert [s.epoch for s in oscillating if not s.improved] == [3, 4, 5, 6, 7]
    assert oscillating[3].metric < oscillating[2].metric and oscillating[7].num_bad_epochs == 0
    worse = LESSON_EXAMPLES["3 negative, rel"][0]
    assert all(b > a for a, b in zip(worse, worse[1:]))    # worse every epoch (mode="min") ...
    assert all(s.improved for s in plateau_replay.replay_plateau(worse, threshold=0.1,
                                                                 patience=1))  # ... yet "better"
    skipped = plateau_replay.replay_plateau(*LESSON_EXAMPLES["7 eps skips"][:1],
                                            **LESSON_EXAMPLES["7 eps skips"][1])
    assert skipped.skipped == [2, 3, 4] and [s.num_bad_epochs for s in skipped] == [0] * 4


# ---------------------------------------------------------------- the rules, over grids

TABLE = {   # section 3's table, as written there
    ("min", "rel"): lambda a, best, t: a < best * (1 - t),
    ("min", "abs"): lambda a, best, t: a < best - t,
    ("max", "rel"): lambda a, best, t: a > best * (1 + t),
    ("max", "abs"): lambda a, best, t: a > best + t,
}


@pytest.mark.parametrize("mode, threshold_mode", TABLE)
def test_the_threshold_table_is_torchs_rule(mode, threshold_mode):
    formula, checked = TABLE[mode, threshold_mode], 0
    for best in (-2.0, -0.3, 0.3, 2.0):
        for t in (1e-4, 0.01, 0.1):
            bound = plateau_replay.improvement_bound(best, mode=mode, threshold=t,
                                                     threshold_mode=threshold_mode)
            for a in (bound - 1e-3, math.nextafter(bound, -math.inf), bound,
                      math.nextafter(bound, math.inf), bound + 1e-3, best):
                torch_says = torch_is_better(a, best, mode=mode, threshold=t,
                                             threshold_mode=threshold_mode)
                assert torch_says == formula(a, best, t), (best, t, a)
                checked += 1
    assert checked == 72


@pytest.mark.parametrize("patience", range(7))
def test_first_cut_in_the_step_of_epoch_patience_plus_2(patience):
    lrs = torch_lrs(FLAT * 12, patience=patience)
    # Epoch p + 2 still trains with 0.1; epoch p + 3 is the first with the smaller lr.
    assert cut_epochs(lrs)[0] == patience + 2
    assert lrs[patience + 1] == 0.1 and lrs[patience + 2] < 0.1


@pytest.mark.parametrize("patience", range(4))
@pytest.mark.parametrize("cooldown", range(4))
def test_cuts_are_cooldown_plus_patience_plus_1_apart(patience, cooldown):
    cuts = cut_epochs(torch_lrs(FLAT * 30, patience=patience, cooldown=cooldown, factor=0.9))
    assert cuts[0] == patience + 2 and len(cuts) >= 3
    assert all(b - a == cooldown + patience + 1 for a, b in zip(cuts, cuts[1:]))


@pytest.mark.parametrize("factor", [0.1, 0.3, 0.5, 0.8, 0.9])
def test_after_k_cuts_the_lr_is_lr0_times_factor_to_the_k(factor):
    lrs = torch_lrs(FLAT * 20, patience=2, factor=factor)
    for k, epoch in enumerate(cut_epochs(lrs), start=1):
        assert math.isclose(lrs[epoch], 0.1 * factor**k, rel_tol=1e-12)
    if factor == 0.5:
        assert lrs[-1] == 0.1 * factor**6                  # halving is exact in floats


START_LRS = (1.0, 0.5, 0.1, 0.03, 1e-3, 1e-5)
FACTORS = (0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95)


def test_with_min_lr_0_eps_stops_the_lr_in_its_interval():
    eps, finals = 1e-8, {}
    for lr in START_LRS:
        for factor in FACTORS:
            lrs = torch_lrs(FLAT * 500, lr=lr, patience=0, factor=factor)
            final = lrs[-1]
            assert lrs[-2] == final and cut_epochs(lrs), (lr, factor)   # it did stop, after cuts
            assert eps * factor / (1 - factor) < final <= eps / (1 - factor), (lr, factor)
            if factor >= 0.5:
                assert final > eps                         # the brief interval (eps, eps/(1-f)]
            finals[lr, factor] = final
    # Not always near 1e-8: below eps for a small factor, up to ten times above it for 0.9.
    assert finals[0.5, 0.1] < eps and finals[0.1, 0.9] > 9 * eps
    replayed = plateau_replay.replay_plateau(FLAT * 500, lr=0.1, patience=0, factor=0.9)
    assert replayed[-1].lr_after == finals[0.1, 0.9]


# ---------------------------------------------------------------- section 12: resuming

def test_resuming_without_the_scheduler_state_delays_one_cut_and_loses_one():
    sequence, interrupted_after = LESSON_EXAMPLES["12 resume sequence"][0], 6

    def run(metrics, optimizer, scheduler):
        used = []
        for metric in metrics:
            used.append(optimizer.param_groups[0]["lr"])
            scheduler.step(metric)
        return used + [optimizer.param_groups[0]["lr"]]

    def fresh():
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        return optimizer, ReduceLROnPlateau(optimizer, factor=0.5, patience=1)

    uninterrupted = run(sequence, *fresh())
    optimizer, scheduler = fresh()
    before = run(sequence[:interrupted_after], optimizer, scheduler)[:-1]
    saved = (optimizer.state_dict(), scheduler.state_dict())
    resumed = {}
    for with_state in (True, False):
        optimizer, scheduler = fresh()
        optimizer.load_state_dict(saved[0])
        if with_state:
            scheduler.load_state_dict(saved[1])
        resumed[with_state] = before + run(sequence[interrupted_after:], optimizer, scheduler)
    assert resumed[True] == uninterrupted
    assert cut_epochs(uninterrupted) == [4, 7, 9] and cut_epochs(resumed[False]) == [4, 9]
    assert uninterrupted[-1] == 0.0125 and resumed[False][-1] == 0.025     # twice the lr


# ---------------------------------------------------------------- section 11: the recipe

def test_zero_grad_after_step_trains_exactly_as_zero_grad_before_backward():
    torch.manual_seed(0)
    batches = [(torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))) for _ in range(4)]
    weights = {}
    for order in ("recipe: step then zero_grad", "zero_grad before backward"):
        torch.manual_seed(1)
        model = models.SimpleCNN()
        optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
        for X, y in batches:
            if order.startswith("zero_grad"):
                optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(X), y).backward()
            optimizer.step()
            if order.startswith("recipe"):
                optimizer.zero_grad()
        weights[order] = [p.detach().clone() for p in model.parameters()]
    first, second = weights.values()
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[0], models.SimpleCNN().features.conv1.weight)   # it trained


def test_a_split_with_mean_0_and_std_1_gives_what_to_tensor_gives():
    images = (torch.arange(3 * 784) % 256).to(torch.uint8).reshape(3, 28, 28)   # every value
    split = data.Split(images, torch.zeros(3, dtype=torch.long), ("a",), 0.5, 0.25)
    raw = dataclasses.replace(split, mean=0.0, std=1.0)
    X, _ = next(iter(data.TensorLoader(raw, 3)))
    to_tensor = images.float().div(255).unsqueeze(1)        # torchvision's ToTensor on uint8
    torch.testing.assert_close(X, to_tensor, rtol=0, atol=1e-7)
    assert X.min() == 0.0 and X.max() == 1.0
    normalized, _ = next(iter(data.TensorLoader(split, 3)))
    assert not torch.allclose(normalized, to_tensor)        # the course's default normalizes


# ---------------------------------------------------------------- the exercises' self-checks

@pytest.mark.parametrize("typed, expected, digits, correct", [
    (6, plateau_replay.replay_plateau(FLAT * 10, patience=3).reductions[0] + 1, 3, True),
    (5, plateau_replay.replay_plateau(FLAT * 10, patience=3).reductions[0] + 1, 3, False),
    (0.495, plateau_replay.improvement_bound(0.50, threshold=0.01), 3, True),
    (0.49, plateau_replay.improvement_bound(0.50, threshold=0.01), 3, False),
    (8, plateau_replay.replay_plateau(FLAT * 12, patience=1, cooldown=3).reductions[1], 3, True),
    (23, len(plateau_replay.replay_plateau(FLAT * 60, patience=0, factor=0.5).reductions), 3,
     True),
    (1.19e-8, plateau_replay.replay_plateau(FLAT * 60, patience=0, factor=0.5)[-1].lr_after, 3,
     True),
    (1.1920929e-8, plateau_replay.replay_plateau(FLAT * 60, patience=0, factor=0.5)[-1].lr_after,
     3, True),
    (1.3e-8, plateau_replay.replay_plateau(FLAT * 60, patience=0, factor=0.5)[-1].lr_after, 3,
     False),
])
def test_answers_typed_by_hand_pass_the_exercises_checks(typed, expected, digits, correct):
    verdict, sentence = notebook.grade(typed, expected, digits=digits)
    assert verdict is correct
    assert sentence.startswith("Correct!") is correct
