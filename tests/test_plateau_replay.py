"""replay_plateau must match torch's ReduceLROnPlateau exactly, step by step, float for float;
and the table, sentence and figure that explain a replay."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.optim.lr_scheduler import ReduceLROnPlateau

from course_utils.plateau_replay import (describe, draw_plateau, format_steps, improvement_bound,
                                         replay_plateau)

NAN = math.nan


def make_torch_scheduler(lr=0.1, **kwargs):
    """A real ReduceLROnPlateau over one 1-element parameter per param group (cheap: the
    scheduler only reads and writes `param_groups[i]["lr"]`)."""
    if isinstance(lr, (list, tuple)):  # one param group per lr
        groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": x} for x in lr]
        optimizer = torch.optim.SGD(groups)
    else:  # as a student writes it (and so SGD checks the lr)
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    return optimizer, ReduceLROnPlateau(optimizer, **kwargs)


def torch_is_better(metric, best, *, mode="min", threshold=1e-4, threshold_mode="rel"):
    """Torch's own verdict on whether `metric` improves on `best`, read through its public
    behaviour (the method that decides is private and was renamed in torch 2.9): a scheduler with
    patience=0 whose best is `best` keeps its lr at a metric that is better and reduces it at once
    at one that is not."""
    optimizer, probe = make_torch_scheduler(lr=1.0, mode=mode, threshold=threshold,
                                            threshold_mode=threshold_mode, patience=0)
    probe.best = best
    probe.step(metric)
    return optimizer.param_groups[0]["lr"] == 1.0


def torch_trace(metrics, lr=0.1, **kwargs):
    """Step torch's scheduler through `metrics`; record what PlateauStep records, as dicts.

    "improved" cannot always be read off the public state: after an improvement num_bad_epochs
    is 0, but it is also 0 during cooldown and after a reduction (even one skipped by eps or
    min_lr), and best keeps its value when the metric equals it (a tie counts as an improvement in
    the negative-metric "rel" trap). So we ask torch for its verdict (`torch_is_better`, with the
    same mode and threshold) and check it against the public state: improved -> best == metric
    and no bad epoch counted; not improved -> best unchanged and the counter went up by one
    unless cooldown or a reduction reset it.

    Why each step went as it did is derived from torch's state before the step and its verdict:
    the bad epochs counted against patience (0 after an improvement or during cooldown, else one
    more than before), whether cooldown was running, and whether a reduction was due. The best
    the metric was compared with (`best_before`) and the verdict function are kept to check the
    bound the replay reports.
    """
    optimizer, scheduler = make_torch_scheduler(lr, **kwargs)
    rule = {key: kwargs[key] for key in ("mode", "threshold", "threshold_mode") if key in kwargs}

    def is_better(metric, best):
        return torch_is_better(metric, best, **rule)

    rows = []
    for metric in metrics:
        lrs_before = tuple(group["lr"] for group in optimizer.param_groups)
        best_before, bad_before = scheduler.best, scheduler.num_bad_epochs
        cooldown_before = scheduler.cooldown_counter
        improved = is_better(metric, best_before)
        scheduler.step(metric)
        lrs_after = tuple(scheduler.get_last_lr())
        # Not improved, yet no bad epoch counted: only cooldown or a reduction reset it.
        reset = cooldown_before > 0 or bad_before + 1 > scheduler.patience
        if improved:
            assert scheduler.best == float(metric) and scheduler.num_bad_epochs == 0
        else:
            assert scheduler.best == best_before
            assert scheduler.num_bad_epochs == bad_before + 1 or (
                scheduler.num_bad_epochs == 0 and reset)
        in_cooldown = cooldown_before > 0
        counted = 0 if improved or in_cooldown else bad_before + 1
        triggered = counted > scheduler.patience
        if triggered:  # torch reset its counters: the reduction was due, even if eps skipped it
            assert scheduler.num_bad_epochs == 0
            assert scheduler.cooldown_counter == scheduler.cooldown
        rows.append(dict(epoch=scheduler.last_epoch, best=scheduler.best, improved=improved,
                         num_bad_epochs=scheduler.num_bad_epochs,
                         cooldown_counter=scheduler.cooldown_counter,
                         lrs_before=lrs_before, lrs_after=lrs_after, counted=counted,
                         in_cooldown=in_cooldown, triggered=triggered,
                         best_before=best_before, is_better=is_better))
    return rows


def assert_matches_torch(metrics, **kwargs):
    """Replay and run torch side by side; every field must be equal (==, not approx)."""
    metrics = list(metrics)
    steps = replay_plateau(metrics, **kwargs)
    expected = torch_trace(metrics, **kwargs)
    assert len(steps) == len(expected)
    for step, want in zip(steps, expected):
        where = f"epoch {want['epoch']}, metric {step.metric!r}, kwargs {kwargs}"
        assert step.epoch == want["epoch"], where
        given = float(metrics[step.epoch - 1])
        assert step.metric == given or math.isnan(step.metric) and math.isnan(given), where
        assert step.lrs_after == want["lrs_after"], where
        assert step.lrs_before == want["lrs_before"], where
        assert step.lr_before == want["lrs_before"][0], where
        assert step.lr_after == want["lrs_after"][0], where
        assert step.reduced == (want["lrs_after"][0] < want["lrs_before"][0]), where
        assert step.best == want["best"], where
        assert step.improved == want["improved"], where
        assert step.num_bad_epochs == want["num_bad_epochs"], where
        assert step.cooldown_counter == want["cooldown_counter"], where
        assert step.counted == want["counted"], where
        assert step.in_cooldown == want["in_cooldown"], where
        assert step.triggered == want["triggered"], where
        # The bound is exactly where torch's verdict flips: the bound itself is not better, the
        # next float on the better side is. NaN while torch's best is still infinite.
        best_before, is_better = want["best_before"], want["is_better"]
        if math.isfinite(best_before):
            better_side = -math.inf if kwargs.get("mode", "min") == "min" else math.inf
            assert not is_better(step.bound, best_before), where
            assert is_better(math.nextafter(step.bound, better_side), best_before), where
        else:
            assert math.isnan(step.bound), where
    return steps


def column(steps, name):
    return [getattr(step, name) for step in steps]


# ---------------------------------------------------------------- one test per parameter


def test_patience_2_reduces_in_the_step_of_epoch_4():
    # Epoch 1 sets the baseline; epochs 2, 3, 4 are bad; the 3rd bad one (> patience) reduces.
    steps = assert_matches_torch([1.0] * 8, lr=0.1, patience=2, factor=0.1)
    assert column(steps, "num_bad_epochs") == [0, 1, 2, 0, 1, 2, 0, 1]
    assert [s.epoch for s in steps if s.reduced] == [4, 7]
    assert steps[3].lr_before == 0.1 and steps[3].lr_after == 0.1 * 0.1
    assert steps[4].lr_before == 0.1 * 0.1  # the smaller lr is first used in epoch 5
    assert column(steps, "improved") == [True] + [False] * 7


def test_ties_are_not_improvements():
    steps = assert_matches_torch([1.0, 1.0, 0.5, 0.5, 0.5], patience=5, threshold=0.0)
    assert column(steps, "improved") == [True, False, True, False, False]
    assert column(steps, "best") == [1.0, 1.0, 0.5, 0.5, 0.5]


def test_threshold_rel_and_abs_disagree_on_the_same_curve():
    # Large values: 99.5 is 0.5 below 100, more than abs 0.01 but less than 1 % of 100.
    rel = assert_matches_torch([100.0, 99.5], patience=0, threshold=0.01, threshold_mode="rel")
    ab = assert_matches_torch([100.0, 99.5], patience=0, threshold=0.01, threshold_mode="abs")
    assert column(rel, "improved") == [True, False] and rel[1].reduced
    assert column(ab, "improved") == [True, True] and not ab[1].reduced
    # Small values: 0.009 is 10 % below 0.01 but only 0.001 below it, less than abs 0.01.
    rel = assert_matches_torch([0.01, 0.009], patience=0, threshold=0.01, threshold_mode="rel")
    ab = assert_matches_torch([0.01, 0.009], patience=0, threshold=0.01, threshold_mode="abs")
    assert column(rel, "improved") == [True, True] and not rel[1].reduced
    assert column(ab, "improved") == [True, False] and ab[1].reduced


def test_negative_metric_in_rel_mode_counts_a_worse_value_as_improvement():
    steps = assert_matches_torch([-1.0, -0.95], patience=0, threshold=0.1)
    assert steps[1].improved and steps[1].best == -0.95  # -0.95 is worse than -1.0
    # A flat negative metric is "improving" forever in rel mode, so the lr never drops ...
    flat_rel = assert_matches_torch([-1.0] * 5, patience=0, threshold_mode="rel")
    assert not any(column(flat_rel, "reduced"))
    # ... while abs mode sees the plateau and reduces at every step after the baseline.
    flat_abs = assert_matches_torch([-1.0] * 5, patience=0, threshold_mode="abs")
    assert column(flat_abs, "reduced") == [False, True, True, True, True]


def test_mode_max_with_accuracy():
    steps = assert_matches_torch([0.80, 0.85, 0.85, 0.8500001, 0.84, 0.90],
                                 mode="max", patience=1, factor=0.5)
    # 0.8500001 is not above 0.85 * (1 + 1e-4): a bad epoch, the 2nd in a row -> reduce.
    assert column(steps, "improved") == [True, True, False, False, False, True]
    assert [s.epoch for s in steps if s.reduced] == [4]
    assert steps[-1].best == 0.90


def test_cooldown_ignores_bad_epochs_after_a_reduction():
    steps = assert_matches_torch([1.0] * 12, patience=2, cooldown=2, factor=0.5)
    # After a reduction at epoch r the next one comes at r + cooldown + patience + 1.
    assert [s.epoch for s in steps if s.reduced] == [4, 4 + 2 + 2 + 1]
    assert column(steps, "cooldown_counter") == [0, 0, 0, 2, 1, 0, 0, 0, 2, 1, 0, 0]
    assert column(steps, "num_bad_epochs")[3:7] == [0, 0, 0, 1]


def test_min_lr_scalar_is_a_floor():
    steps = assert_matches_torch([1.0] * 6, patience=0, factor=0.1, min_lr=1e-3)
    assert all(s.lr_after >= 1e-3 for s in steps)
    # 0.1 -> 0.01 -> 0.001 (with float noise, just above min_lr), then the step to min_lr
    # itself is smaller than eps and skipped: the lr stops changing.
    assert sum(column(steps, "reduced")) == 2
    assert steps[-1].lr_after == 0.1 * 0.1 * 0.1


def test_min_lr_per_param_group():
    steps = assert_matches_torch([1.0] * 4, lr=[0.1, 0.01], patience=0, min_lr=[0.005, 0.0])
    assert steps[-1].lrs_after[0] == 0.005  # clamped at its own floor
    assert steps[-1].lrs_after[1] == 0.01 * 0.1 * 0.1 * 0.1  # no floor
    assert len(steps[0].lrs_before) == 2


def test_eps_skips_a_small_reduction_but_counters_still_reset():
    # 0.1 -> 0.05 is a change of 0.05 < eps = 0.06: skipped.
    steps = assert_matches_torch([1.0] * 4, patience=0, factor=0.5, eps=0.06, cooldown=1)
    assert column(steps, "lr_after") == [0.1] * 4
    assert column(steps, "cooldown_counter") == [0, 1, 0, 1]  # cooldown restarted anyway
    assert column(steps, "num_bad_epochs") == [0, 0, 0, 0]
    # Same run with the default eps does reduce.
    assert replay_plateau([1.0] * 4, patience=0, factor=0.5, cooldown=1)[1].reduced


def test_nan_metric_is_a_bad_epoch():
    steps = assert_matches_torch([1.0, NAN, 0.5, NAN], patience=0)
    assert column(steps, "improved") == [True, False, True, False]
    assert column(steps, "best") == [1.0, 1.0, 0.5, 0.5]
    assert column(steps, "reduced") == [False, True, False, True]
    only_nan = assert_matches_torch([NAN] * 3, patience=1)
    assert column(only_nan, "best") == [math.inf] * 3  # never replaced


def test_tensor_and_numpy_metrics_are_accepted():
    floats = replay_plateau([1.0, 0.5, 0.75], patience=0)
    mixed = replay_plateau([torch.tensor(1.0), np.float64(0.5), np.float32(0.75)], patience=0)
    assert mixed == floats
    assert_matches_torch([torch.tensor(1.0), torch.tensor(2.0)], patience=0)


def test_no_metrics_no_steps():
    assert replay_plateau([]) == []


def test_metrics_that_are_not_numbers_get_a_clear_value_error():
    for metrics in (["a", "b"], None, [torch.zeros(2)]):
        with pytest.raises(ValueError, match="list of numbers"):
            replay_plateau(metrics)


def test_tensor_metrics_are_accepted():
    steps = replay_plateau(torch.tensor([1.0, 0.5]))
    assert column(steps, "metric") == [1.0, 0.5]


# ---------------------------------------------------------------- why each step went as it did


def test_replay_keeps_its_arguments_and_is_a_list_of_steps():
    metrics = [1.0, 0.8, 0.81, 0.82, 0.83, 0.79, 0.80, 0.80, 0.80, 0.80]
    kwargs = {"lr": 0.1, "factor": 0.5, "patience": 2, "cooldown": 1}
    steps = replay_plateau(metrics, **kwargs)
    assert steps == replay_plateau(metrics, **kwargs) and isinstance(steps, list)
    assert column(steps, "epoch") == list(range(1, 11)) and column(steps, "metric") == metrics
    assert steps.params["patience"] == 2 and steps.params["mode"] == "min"


def test_counts_cooldown_and_reductions_on_a_flat_curve():
    # Baseline in epoch 1, then never better: patience 2 and cooldown 2 reduce at 4 and 9.
    steps = assert_matches_torch([1.0] * 12, patience=2, cooldown=2, factor=0.5)
    assert column(steps, "counted") == [0, 1, 2, 3, 0, 0, 1, 2, 3, 0, 0, 1]
    assert column(steps, "in_cooldown") == [False] * 4 + [True, True] + [False] * 3 + [True,
                                                                                      True, False]
    assert steps.reductions == [4, 9] and steps.skipped == []
    assert [step.epoch for step in steps if step.triggered] == [4, 9]
    assert steps.lr_used == [0.1] * 4 + [0.05] * 5 + [0.025] * 3


def test_counts_match_torch():
    metrics = [1.0, 0.9, 0.95, 0.96, 0.97, 0.8, 0.85, 0.86, 0.87, 0.88, 0.89, 0.7]
    steps = assert_matches_torch(metrics, patience=1, cooldown=1)   # counted, triggered: as torch
    assert [(s.counted, s.triggered) for s in steps] == [
        (0, False), (0, False), (1, False), (2, True), (0, False), (0, False), (1, False),
        (2, True), (0, False), (1, False), (2, True), (0, False)]


def test_bound_is_what_the_metric_had_to_beat():
    steps = replay_plateau([1.0, 0.5, 0.6], threshold=0.1, patience=5)
    assert math.isnan(steps[0].bound)                       # anything beats +inf
    assert steps[1].bound == 1.0 * (1 - 0.1) and steps[2].bound == 0.5 * (1 - 0.1)
    assert replay_plateau([1.0, 0.5], threshold=0.1, threshold_mode="abs")[1].bound == 1.0 - 0.1
    assert replay_plateau([0.5, 0.6], mode="max", threshold=0.1)[1].bound == 0.5 * (0.1 + 1.0)
    assert all(math.isnan(step.bound) for step in replay_plateau([NAN, NAN]))  # best stays inf


def test_steps_with_a_nan_bound_still_compare_equal():
    # NaN != NaN; the bound is left out of ==, so a replay equals itself on every Python.
    assert replay_plateau([1.0, 0.5]) == replay_plateau([1.0, 0.5])


# ---------------------------------------------------------------- a replay, explained


def test_skipped_reductions_are_reported():
    steps = replay_plateau([1.0] * 3, patience=0, factor=0.5, eps=0.06)
    assert steps.reductions == [] and steps.skipped == [2, 3]
    assert "skipped" in describe(steps)
    assert "<- due, skipped" in format_steps(steps)


def test_describe_and_table():
    steps = replay_plateau([1.0] * 8, patience=2)
    assert describe(steps) == "2 reductions, at the end of epochs 4, 7: lr 0.1 -> 0.001."
    table = format_steps(steps).splitlines()
    assert len(table) == 9 and table[4].endswith("<- reduced") and "0.01" in table[4]
    assert describe(replay_plateau([1.0, 0.9])) == "No reduction in 2 epochs; the lr stays 0.1."
    one = replay_plateau([1.0] * 3, patience=1)
    assert describe(one) == "1 reduction, at the end of epoch 3: lr 0.1 -> 0.01."


def test_table_shows_every_param_group():
    steps = replay_plateau([1, 1, 1], lr=[0.1, 0.01], patience=0, min_lr=[0.005, 0.0])
    last = format_steps(steps).splitlines()[-1]
    assert "0.01 0.001" in last and "0.005 0.0001" in last


def test_draw_has_three_panels_and_marks_reductions():
    steps = replay_plateau([1.0] * 12, patience=2, cooldown=2, factor=0.5)
    fig = draw_plateau(steps, metric_label="validation loss")
    ax_metric, ax_count, ax_lr = fig.axes
    assert ax_lr.get_yscale() == "log" and ax_lr.get_xlabel() == "epoch"
    assert ax_metric.get_ylabel() == "validation loss"
    # One dotted line per reduction in each panel, at the end of the reducing epoch.
    for ax in fig.axes:
        assert sorted(line.get_xdata()[0] for line in ax.lines
                      if line.get_linestyle() == ":" and line.get_xdata()[0] in (4.5, 9.5)) == [4.5,
                                                                                          9.5]
    assert [bar.get_height() for bar in ax_count.patches[:12]] == column(steps, "counted")
    assert fig._suptitle.get_text() == describe(steps)
    plt.close(fig)


def test_verdict_matches_torchs_on_a_grid():
    # The replay's first metric sets best; its second step's verdict is then torch's `_is_better`.
    values = [-2.0, -1.0, -0.9999, 0.0, 0.5, 0.99989, 0.99995, 1.0, 1.00005, 2.0, NAN, math.inf]
    for mode in ("min", "max"):
        for threshold_mode in ("rel", "abs"):
            for best in (-1.0, 0.0, 1.0):
                for metric in values:
                    steps = replay_plateau([best, metric], mode=mode, threshold_mode=threshold_mode)
                    assert steps[1].improved == torch_is_better(
                        metric, best, mode=mode, threshold_mode=threshold_mode), (mode, best)
    assert [step.improved for step in replay_plateau([1.0, 0.99995])] == [True, False]
    assert replay_plateau([1.0, 0.99989])[1].improved


@pytest.mark.parametrize("mode", ["min", "max"])
def test_rel_bound_uses_torchs_float_operations(mode):
    # best * (1 - t) and best - best * t are equal on paper but not always in floats; a metric in
    # the gap between them gets opposite verdicts, so the replay must do torch's operations.
    def bounds(best, t):
        if mode == "min":
            return best * (1.0 - t), best - best * t
        return best * (t + 1.0), best + best * t

    cases = [(best, t) for best in (0.3, 0.7, 0.75, 1.1) for t in (0.01, 0.1, 0.3)
             if bounds(best, t)[0] != bounds(best, t)[1]]
    assert cases
    for best, t in cases:
        # min: improved iff metric < bound, so the smaller bound is in the gap; max: the larger.
        metric = min(bounds(best, t)) if mode == "min" else max(bounds(best, t))
        assert_matches_torch([best, metric], mode=mode, threshold=t, patience=0)


def test_improvement_bound_four_cases():
    assert improvement_bound(2.0, mode="min", threshold=0.5, threshold_mode="rel") == 1.0
    assert improvement_bound(2.0, mode="min", threshold=0.5, threshold_mode="abs") == 1.5
    assert improvement_bound(2.0, mode="max", threshold=0.5, threshold_mode="rel") == 3.0
    assert improvement_bound(2.0, mode="max", threshold=0.5, threshold_mode="abs") == 2.5
    # The trap: for a negative best the rel bound lies on the worse side.
    assert improvement_bound(-1.0, mode="min", threshold=0.1) > -1.0


# ---------------------------------------------------------------- property test against torch

# A small pool (for ties, repeats, values on a threshold boundary) plus arbitrary floats.
metric_value = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, 0.9999, 1.0001, 0.99989, 0.5, -0.5, -1.0, 100.0,
                     NAN, math.inf, -math.inf]),
    st.floats(-10.0, 10.0),
)
lr_value = st.one_of(st.sampled_from([1.0, 0.1, 0.05, 3e-4]), st.floats(1e-6, 1.0))
min_lr_value = st.one_of(st.sampled_from([0.0, 1e-4, 1e-3, 0.05]), st.floats(0.0, 0.2))


@st.composite
def plateau_kwargs(draw):
    groups = draw(st.integers(1, 3))
    lrs = draw(st.lists(lr_value, min_size=groups, max_size=groups))
    per_group_min_lr = st.lists(min_lr_value, min_size=groups, max_size=groups)
    return dict(
        lr=lrs if groups > 1 or draw(st.booleans()) else lrs[0],
        min_lr=draw(st.one_of(min_lr_value, per_group_min_lr)),
        mode=draw(st.sampled_from(["min", "max"])),
        factor=draw(st.one_of(st.sampled_from([0.0, 0.1, 0.5, 0.9]), st.floats(0.0, 0.999))),
        patience=draw(st.integers(0, 5)),
        threshold=draw(st.one_of(st.sampled_from([0.0, 1e-4, 0.01, 0.1]), st.floats(0.0, 0.5))),
        threshold_mode=draw(st.sampled_from(["rel", "abs"])),
        cooldown=draw(st.integers(0, 3)),
        eps=draw(st.one_of(st.sampled_from([0.0, 1e-8, 1e-3, 0.05]), st.floats(0.0, 0.1))),
    )


@st.composite
def metric_sequence(draw, mode, threshold):
    """Runs of repeated values (plateaus), some of them right on, or one float step beside, a
    threshold bound of an earlier value, computed several ways: a replay that computes the
    bound with other float operations than torch gets a different verdict there."""
    metrics = []
    for _ in range(draw(st.integers(1, 12))):
        numbers = [m for m in metrics if not math.isnan(m)]
        if numbers and draw(st.booleans()):
            # The best so far is often the smallest or largest value seen.
            v = draw(st.sampled_from([min(numbers), max(numbers), *numbers]))
            t = threshold
            bounds = ([v * (1.0 - t), v - v * t, v - t] if mode == "min"
                      else [v * (t + 1.0), v + v * t, v + t])
            value = draw(st.sampled_from(bounds))
            value = math.nextafter(value, draw(st.sampled_from([-math.inf, 0.0, math.inf])))
        else:
            value = draw(metric_value)
        metrics += [value] * draw(st.integers(1, 4))
    return metrics


@st.composite
def plateau_case(draw):
    kwargs = draw(plateau_kwargs())
    return draw(metric_sequence(kwargs["mode"], kwargs["threshold"])), kwargs


def test_matches_torch_on_random_sequences():
    lengths = []

    # database=None: write no .hypothesis/ folder into the repository.
    @settings(max_examples=1000, deadline=None, database=None)
    @given(case=plateau_case())
    def check(case):
        metrics, kwargs = case
        lengths.append(len(metrics))
        assert_matches_torch(metrics, **kwargs)

    check()
    assert len(lengths) >= 1000  # sequences actually compared with torch
    assert sum(lengths) > 5 * len(lengths)  # and not tiny ones: about 12 metrics on average


# ---------------------------------------------------------------- errors: torch's type, clear text


@pytest.mark.parametrize("kwargs, phrase", [
    (dict(factor=1.0), "factor must be >= 0 and < 1.0"),
    (dict(factor=2.0), "factor=0.5 halves"),
    (dict(mode="MIN"), "mode must be 'min' or 'max'"),
    (dict(mode=None), "mode must be 'min' or 'max'"),
    (dict(threshold_mode="relative"), "threshold_mode must be 'rel' or 'abs'"),
    (dict(min_lr=[0.0, 0.0]), "min_lr needs one entry per param group: got 2 entries for 1 group"),
    (dict(lr=[0.1, 0.01], min_lr=[0.0]), "one min_lr per group"),
    (dict(lr=[]), "give one lr >= 0"),
    (dict(lr=-0.1), "lr is empty or negative"),
])
def test_invalid_argument_raises_what_torch_raises(kwargs, phrase):
    with pytest.raises(Exception) as from_torch:
        make_torch_scheduler(**kwargs)
    with pytest.raises(type(from_torch.value), match=phrase):
        replay_plateau([1.0], **kwargs)


@pytest.mark.parametrize("kwargs, phrase", [
    (dict(patience=-1), r"patience \(how many .*\) must be at least 0"),
    (dict(cooldown=-1), r"cooldown \(epochs after .*\) must be at least 0"),
    (dict(factor=-0.5), "factor must be >= 0"),
    (dict(patience=1.5), r"patience \(how many .*\) must be a whole number"),
])
def test_arguments_torch_accepts_silently_are_rejected(kwargs, phrase):
    make_torch_scheduler(**kwargs)  # torch does not check these
    with pytest.raises(ValueError, match=phrase):
        replay_plateau([1.0], **kwargs)


def test_torch_with_negative_patience_reduces_even_after_improvements():
    # Why we reject patience < 0: torch reduces on every step, even the baseline.
    optimizer, scheduler = make_torch_scheduler(patience=-1)
    for metric in [1.0, 0.5, 0.25]:
        before = optimizer.param_groups[0]["lr"]
        scheduler.step(metric)
        assert optimizer.param_groups[0]["lr"] < before


def test_arguments_are_checked_before_any_metric_is_read():
    read = []

    def metrics():
        read.append(1)
        yield 1.0

    with pytest.raises(ValueError, match="factor"):
        replay_plateau(metrics(), factor=1.5)
    assert read == []


def test_mode_errors_in_the_helpers():
    with pytest.raises(ValueError, match="mode must be"):
        improvement_bound(1.0, mode="lower")
    with pytest.raises(ValueError, match="threshold_mode must be"):
        improvement_bound(1.0, threshold_mode="percent")
