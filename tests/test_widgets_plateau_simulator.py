"""The ReduceLROnPlateau simulator: its synthetic curves and the widget wiring (headless).

The replay it draws, with its table and figure, is tested in test_plateau_replay.py.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from course_utils.plateau_replay import replay_plateau
from course_utils.widgets import plateau_simulator as simulator


def metrics(steps):
    return [step.metric for step in steps]


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
    (lambda: simulator.plateau_explorer({"my run": []}), "empty"),
    (lambda: simulator.plateau_explorer({"my run": ["a", "b"]}), "list of numbers"),
    (lambda: simulator.plateau_explorer({"my run": None}), "list of numbers"),
    (lambda: replay_plateau([1.0], factor=1.0), "factor must be .*< 1.0"),
    (lambda: replay_plateau([1.0], mode="minimum"), "mode"),
    (lambda: simulator.synthetic_curve("zigzag"), "shape"),
    (lambda: simulator.synthetic_curve(noise=-1), "noise"),
    (lambda: simulator.synthetic_curve(epochs=0), "epochs"),
])
def test_bad_input_gets_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_explorer_redraws_when_a_control_moves():
    explorer = simulator.plateau_explorer({"my run": [1.0, 0.9, 0.95, 0.96, 0.97, 0.98]})
    controls = explorer.controls
    assert set(controls) == {"curve", "noise", "seed", "lr", "mode", "factor", "patience",
                             "threshold", "threshold_mode", "cooldown", "min_lr", "eps"}
    assert metrics(explorer.result) == [1.0, 0.9, 0.95, 0.96, 0.97, 0.98]   # recorded, no noise
    assert explorer.result.reductions == [6]                              # patience 3

    controls["patience"].value = 0
    assert explorer.result.reductions == [3, 4, 5, 6]
    controls["cooldown"].value = 1
    assert explorer.result.reductions == [3, 5]
    controls["factor"].value = 0.5
    assert explorer.result[-1].lr_after == pytest.approx(0.025)
    controls["min_lr"].value = 0.01
    controls["lr"].value = 0.01           # already at the floor: every due reduction is skipped
    assert explorer.result.reductions == [] and explorer.result.skipped == [3, 5]
    controls["noise"].value = 0.05        # acts on synthetic curves only
    assert metrics(explorer.result) == [1.0, 0.9, 0.95, 0.96, 0.97, 0.98]
    assert "skipped" in explorer.children[-2].value                       # the summary line


def test_explorer_synthetic_curves_and_mode():
    explorer = simulator.plateau_explorer()
    controls = explorer.controls
    assert controls["curve"].value == "synthetic: loss that levels off"
    first = metrics(explorer.result)
    controls["noise"].value = 0.08
    assert metrics(explorer.result) != first and len(metrics(explorer.result)) == 40
    controls["seed"].value = 3
    assert metrics(explorer.result) == simulator.synthetic_curve("levels_off", noise=0.08, seed=3)
    controls["curve"].value = "synthetic: accuracy that levels off"
    assert controls["mode"].value == "max" and explorer.result.params["mode"] == "max"
    controls["threshold_mode"].value = "abs"
    controls["threshold"].value = 0.1
    assert explorer.result.params["threshold"] == pytest.approx(0.1)
    assert explorer.result[1].bound == pytest.approx(explorer.result[0].best + 0.1)
    plt.close("all")
