"""The ReduceLROnPlateau simulator: its pure trace and drawing, and the widget wiring (headless)."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from course_utils.plateau import replay_plateau
from course_utils.widgets import plateau as simulator


def torch_counts(metrics, patience, cooldown=0, **kwargs):
    """For each step of torch's scheduler: (bad epochs compared with patience, reduction due).

    torch's own verdict on "better" is recorded by wrapping `_is_better`; the count follows
    from it and the state before the step, and is checked against the state after it.
    """
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = ReduceLROnPlateau(optimizer, patience=patience, cooldown=cooldown, **kwargs)
    verdicts, is_better = [], scheduler._is_better
    scheduler._is_better = lambda a, best: verdicts.append(is_better(a, best)) or verdicts[-1]
    rows = []
    for metric in metrics:
        bad, cooling = scheduler.num_bad_epochs, scheduler.cooldown_counter > 0
        scheduler.step(metric)
        count = 0 if cooling or verdicts[-1] else bad + 1
        due = count > patience
        assert (scheduler.num_bad_epochs, scheduler.cooldown_counter > 0) == (
            (0, cooldown > 0) if due else (count, scheduler.cooldown_counter > 0))
        rows.append((count, due))
    return rows


def test_trace_is_the_replay():
    metrics = [1.0, 0.8, 0.81, 0.82, 0.83, 0.79, 0.80, 0.80, 0.80, 0.80]
    kwargs = {"lr": 0.1, "factor": 0.5, "patience": 2, "cooldown": 1}
    trace = simulator.plateau_trace(metrics, **kwargs)
    assert trace.steps == replay_plateau(metrics, **kwargs)
    assert trace.epochs == list(range(1, 11)) and trace.metric == metrics
    assert trace.params["patience"] == 2


def test_counts_cooldown_and_reductions_on_a_flat_curve():
    # Baseline in epoch 1, then never better: patience 2 and cooldown 2 reduce at 4 and 9.
    trace = simulator.plateau_trace([1.0] * 12, patience=2, cooldown=2, factor=0.5)
    assert trace.counted == [0, 1, 2, 3, 0, 0, 1, 2, 3, 0, 0, 1]
    assert trace.in_cooldown == [False] * 4 + [True, True] + [False] * 3 + [True, True, False]
    assert trace.reductions == [4, 9] and trace.skipped == []
    assert [i + 1 for i, t in enumerate(trace.triggered) if t] == [4, 9]
    assert trace.lr_used == [0.1] * 4 + [0.05] * 5 + [0.025] * 3


def test_counts_match_torch():
    metrics = [1.0, 0.9, 0.95, 0.96, 0.97, 0.8, 0.85, 0.86, 0.87, 0.88, 0.89, 0.7]
    trace = simulator.plateau_trace(metrics, patience=1, cooldown=1)
    assert torch_counts(metrics, patience=1, cooldown=1) == list(zip(trace.counted,
                                                                     trace.triggered))


def test_bound_is_what_the_metric_had_to_beat():
    trace = simulator.plateau_trace([1.0, 0.5, 0.6], threshold=0.1, patience=5)
    assert math.isnan(trace.bound[0])                       # anything beats +inf
    assert trace.bound[1] == 1.0 * (1 - 0.1) and trace.bound[2] == 0.5 * (1 - 0.1)
    abs_trace = simulator.plateau_trace([1.0, 0.5], threshold=0.1, threshold_mode="abs")
    assert abs_trace.bound[1] == 1.0 - 0.1
    max_trace = simulator.plateau_trace([0.5, 0.6], mode="max", threshold=0.1)
    assert max_trace.bound[1] == 0.5 * (0.1 + 1.0)


def test_skipped_reductions_are_reported():
    trace = simulator.plateau_trace([1.0] * 3, patience=0, factor=0.5, eps=0.06)
    assert trace.reductions == [] and trace.skipped == [2, 3]
    assert "skipped" in simulator.describe(trace)
    assert "<- due, skipped" in simulator.format_steps(trace)


def test_describe_and_table():
    trace = simulator.plateau_trace([1.0] * 8, patience=2)
    assert simulator.describe(trace) == ("2 reductions, at the end of epochs 4, 7: "
                                         "lr 0.1 -> 0.001.")
    table = simulator.format_steps(trace).splitlines()
    assert len(table) == 9 and table[4].endswith("<- reduced") and "0.01" in table[4]
    none = simulator.plateau_trace([1.0, 0.9])
    assert simulator.describe(none) == "No reduction in 2 epochs; the lr stays 0.1."


def test_table_shows_every_param_group():
    trace = simulator.plateau_trace([1, 1, 1], lr=[0.1, 0.01], patience=0, min_lr=[0.005, 0.0])
    last = simulator.format_steps(trace).splitlines()[-1]
    assert "0.01 0.001" in last and "0.005 0.0001" in last


def test_draw_has_three_panels_and_marks_reductions():
    trace = simulator.plateau_trace([1.0] * 12, patience=2, cooldown=2, factor=0.5)
    fig = simulator.draw_plateau(trace, metric_label="validation loss")
    ax_metric, ax_count, ax_lr = fig.axes
    assert ax_lr.get_yscale() == "log" and ax_lr.get_xlabel() == "epoch"
    assert ax_metric.get_ylabel() == "validation loss"
    # One dotted line per reduction in each panel, at the end of the reducing epoch.
    for ax in fig.axes:
        assert sorted(line.get_xdata()[0] for line in ax.lines
                      if line.get_linestyle() == ":" and line.get_xdata()[0] in (4.5, 9.5)) == [4.5,
                                                                                          9.5]
    assert [bar.get_height() for bar in ax_count.patches[:12]] == trace.counted
    assert fig._suptitle.get_text() == simulator.describe(trace)
    # Drawing again into the same figure replaces the panels instead of adding to them.
    assert len(simulator.draw_plateau(trace, fig).axes) == 3
    plt.close(fig)


def test_synthetic_curves():
    assert simulator.synthetic_curve("levels_off", noise=0.02, seed=1) == \
        simulator.synthetic_curve("levels_off", noise=0.02, seed=1)
    assert simulator.synthetic_curve("levels_off", seed=1) != \
        simulator.synthetic_curve("levels_off", seed=2)
    clean = simulator.synthetic_curve("overfits", epochs=40, noise=0.0)
    assert min(clean) < clean[-1] and clean.index(min(clean)) < 30     # falls, then rises
    accuracy = simulator.synthetic_curve("accuracy", noise=0.0)
    assert accuracy == sorted(accuracy) and accuracy[-1] < 0.9


@pytest.mark.parametrize("call, message", [
    (lambda: simulator.plateau_trace([]), "empty"),
    (lambda: simulator.plateau_trace(["a", "b"]), "list of numbers"),
    (lambda: simulator.plateau_trace(None), "list of numbers"),
    (lambda: simulator.plateau_trace([1.0], factor=1.0), "factor must be < 1.0"),
    (lambda: simulator.plateau_trace([1.0], mode="minimum"), "mode"),
    (lambda: simulator.synthetic_curve("zigzag"), "shape"),
    (lambda: simulator.synthetic_curve(noise=-1), "noise"),
    (lambda: simulator.synthetic_curve(epochs=0), "epochs"),
])
def test_bad_input_gets_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_tensor_metrics_are_accepted():
    trace = simulator.plateau_trace(torch.tensor([1.0, 0.5]))
    assert trace.metric == [1.0, 0.5]


def test_explorer_redraws_when_a_control_moves():
    explorer = simulator.plateau_explorer({"my run": [1.0, 0.9, 0.95, 0.96, 0.97, 0.98]})
    controls = explorer.controls
    assert set(controls) == {"curve", "noise", "seed", "lr", "mode", "factor", "patience",
                             "threshold", "threshold_mode", "cooldown", "min_lr", "eps"}
    assert explorer.result.metric == [1.0, 0.9, 0.95, 0.96, 0.97, 0.98]   # recorded, no noise
    assert explorer.result.reductions == [6]                              # patience 3

    controls["patience"].value = 0
    assert explorer.result.reductions == [3, 4, 5, 6]
    controls["cooldown"].value = 1
    assert explorer.result.reductions == [3, 5]
    controls["factor"].value = 0.5
    assert explorer.result.steps[-1].lr_after == pytest.approx(0.025)
    controls["min_lr"].value = 0.01
    controls["lr"].value = 0.01           # already at the floor: every due reduction is skipped
    assert explorer.result.reductions == [] and explorer.result.skipped == [3, 5]
    controls["noise"].value = 0.05        # acts on synthetic curves only
    assert explorer.result.metric == [1.0, 0.9, 0.95, 0.96, 0.97, 0.98]
    assert "skipped" in explorer.children[-2].value                       # the summary line


def test_explorer_synthetic_curves_and_mode():
    explorer = simulator.plateau_explorer()
    controls = explorer.controls
    assert controls["curve"].value == "synthetic: loss that levels off"
    first = explorer.result.metric
    controls["noise"].value = 0.08
    assert explorer.result.metric != first and len(explorer.result.metric) == 40
    controls["seed"].value = 3
    assert explorer.result.metric == simulator.synthetic_curve("levels_off", noise=0.08, seed=3)
    controls["curve"].value = "synthetic: accuracy that levels off"
    assert controls["mode"].value == "max" and explorer.result.params["mode"] == "max"
    controls["threshold_mode"].value = "abs"
    controls["threshold"].value = 0.1
    assert explorer.result.params["threshold"] == pytest.approx(0.1)
    assert explorer.result.bound[1] == pytest.approx(explorer.result.best[0] + 0.1)
    plt.close("all")
