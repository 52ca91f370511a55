"""Tests for course_utils.widgets.exponential: the pure view against torch, the drawing, the
error messages, and the explorer driven headless (setting slider values, no browser)."""

import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from torch.optim import lr_scheduler  # noqa: E402

from course_utils import schedulers  # noqa: E402
from course_utils.widgets import exponential  # noqa: E402

EPS = sys.float_info.epsilon


def torch_exponential(lr, gamma, steps):
    """The lr after 0, 1, ..., steps calls of a real ExponentialLR's step()."""
    return schedulers.lr_trace(lambda opt: lr_scheduler.ExponentialLR(opt, gamma=gamma),
                               epochs=steps + 1, lr=lr)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# --- the values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("lr, gamma, epochs", [(0.05, 0.9, 20), (1.0, 0.5, 8), (3e-4, 0.99, 50),
                                                (0.1, 1.0, 5)])
def test_per_epoch_values_match_torch(lr, gamma, epochs):
    view = exponential.exponential_view(lr, gamma, epochs)
    assert view.n == list(range(epochs + 1))
    assert view.lrs == view.epoch_lrs
    for n, (ours, theirs) in enumerate(zip(view.lrs, torch_exponential(lr, gamma, epochs))):
        # torch multiplies n times (one rounding each); the closed form rounds about twice.
        assert ours == pytest.approx(theirs, rel=(n + 2) * EPS, abs=0)
    assert view.epoch_lrs[-1] / lr == pytest.approx(gamma**epochs, rel=1e-12)


def test_per_batch_meets_per_epoch_at_epoch_boundaries():
    view = exponential.exponential_view(0.05, 0.8, 6, per_batch=True, steps_per_epoch=50)
    assert view.steps_per_epoch == 50
    assert view.step_gamma == pytest.approx(0.8 ** (1 / 50), rel=1e-15)
    assert len(view.lrs) == len(view.n) == 6 * 50 + 1
    assert view.n[50] == 1.0 and view.n[-1] == 6.0
    for epoch in range(7):
        assert view.lrs[epoch * 50] == pytest.approx(view.epoch_lrs[epoch], rel=1e-12)
    # Within an epoch, per-batch stepping is already below the per-epoch lr.
    assert all(view.lrs[k] < view.epoch_lrs[k // 50] for k in range(1, 300) if k % 50)
    # The same numbers as a real ExponentialLR stepped after every batch.
    trace = schedulers.lr_trace(
        lambda opt: lr_scheduler.ExponentialLR(opt, gamma=view.step_gamma),
        epochs=6, lr=0.05, steps_per_epoch=50, step_per="batch")
    assert view.lrs[:-1] == pytest.approx(trace, rel=1e-12)


def test_per_epoch_ignores_steps_per_epoch():
    view = exponential.exponential_view(0.05, 0.9, 10, per_batch=False, steps_per_epoch=100)
    assert view.steps_per_epoch == 1 and view.step_gamma == 0.9 and len(view.lrs) == 11


def test_table_rows_start_and_end_on_the_run():
    view = exponential.exponential_view(0.05, 0.9, 20)
    assert [n for n, _ in view.table] == [0, 4, 8, 12, 16, 20]
    assert view.table[0] == (0, 0.05)
    assert view.table[-1][1] == view.epoch_lrs[-1]
    short = exponential.exponential_view(0.05, 0.9, 2)
    assert [n for n, _ in short.table] == [0, 1, 2]      # no repeated rows for a short run
    text = exponential.format_table(view)
    assert "6.58 epochs" in text and "5.000e-02" in text and "0.1216" in text


def test_small_ratios_print_as_nonzero():
    # 0.5**20 = 9.5e-07 of the start: a fixed four-decimal column printed it as 0.0000.
    view = exponential.exponential_view(0.05, 0.5, 20)
    rows = exponential.format_table(view).splitlines()[1:7]       # n = 0, 4, 8, ..., 20
    ratios = [float(row.split()[-1]) for row in rows]
    assert ratios == pytest.approx([0.5**n for n in range(0, 21, 4)], rel=1e-3)
    assert rows[-1].split()[-1] == "9.537e-07"


# --- the half-life marker ----------------------------------------------------------------------

def test_half_life_is_where_the_lr_halves():
    view = exponential.exponential_view(0.05, 0.9, 20)
    assert view.half_life == pytest.approx(math.log(0.5) / math.log(0.9))
    assert view.half_life_shown
    assert 0.05 * 0.9**view.half_life == pytest.approx(0.025, rel=1e-12)
    assert view.epoch_lrs[6] > 0.025 > view.epoch_lrs[7]      # h = 6.58 lies between 6 and 7


def test_half_life_beyond_the_plot_or_infinite_is_not_shown():
    beyond = exponential.exponential_view(0.05, 0.99, 20)     # h = 69 epochs
    assert beyond.half_life > 20 and not beyond.half_life_shown
    constant = exponential.exponential_view(0.05, 1.0, 20)
    assert constant.half_life == math.inf and not constant.half_life_shown
    assert "never halves" in exponential.format_table(constant)
    exact = exponential.exponential_view(0.05, 0.5, 1)        # h = 1 epoch, the last point
    assert exact.half_life == 1.0 and exact.half_life_shown


def test_drawing_marks_the_half_life():
    view = exponential.exponential_view(0.05, 0.9, 20, per_batch=True, steps_per_epoch=10)
    fig, ax = plt.subplots()
    assert exponential.draw_exponential(view, ax) is ax
    assert ax.get_yscale() == "log"
    assert "learning rate" in ax.get_ylabel() and "epochs" in ax.get_xlabel()
    assert "halves every 6.58 epochs" in ax.get_title()
    vertical = [line for line in ax.lines if list(line.get_xdata()) == [view.half_life] * 2]
    horizontal = [line for line in ax.lines if list(line.get_ydata()) == [0.025] * 2]
    assert len(vertical) == 1 and len(horizontal) == 1
    labels = [line.get_label() for line in ax.lines]
    assert any(label.startswith("per batch") for label in labels)
    assert any(label.startswith("per epoch") for label in labels)
    # The per-epoch staircase is drawn through exactly the closed-form values.
    staircase = next(line for line in ax.lines if line.get_label().startswith("per epoch"))
    assert list(staircase.get_ydata()) == view.epoch_lrs


def test_drawing_without_a_half_life_marker():
    fig, ax = plt.subplots()
    exponential.draw_exponential(exponential.exponential_view(0.05, 0.99, 20), ax)
    assert "beyond the plot" in ax.get_title()
    assert not any("half-life" in line.get_label() for line in ax.lines)
    fig, ax = plt.subplots()
    exponential.draw_exponential(exponential.exponential_view(0.05, 1.0, 5), ax)
    assert "constant" in ax.get_title()


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("gamma", [0, -0.5, float("nan")])
def test_non_positive_gamma_is_rejected(gamma):
    with pytest.raises(ValueError, match="gamma.*must be positive"):
        exponential.exponential_view(0.05, gamma, 10)


def test_growing_gamma_is_rejected():
    # The message is schedulers.half_life's: the lr grows and never halves.
    with pytest.raises(ValueError, match=r"gamma=1\.2 > 1.*grows"):
        exponential.exponential_view(0.05, 1.2, 10)


@pytest.mark.parametrize("lr", [0, -0.1, float("inf"), float("nan")])
def test_non_positive_lr_is_rejected(lr):
    with pytest.raises(ValueError, match="starting learning rate must be a positive number"):
        exponential.exponential_view(lr, 0.9, 10)


@pytest.mark.parametrize("lr, gamma", [(None, 0.9), (0.05, None), ("fast", 0.9)])
def test_non_numbers_are_rejected(lr, gamma):
    with pytest.raises(ValueError, match="lr and gamma must be numbers"):
        exponential.exponential_view(lr, gamma, 10)


@pytest.mark.parametrize("epochs, message", [(0, "at least 1"), (2.5, "whole number"),
                                             (True, "whole number")])
def test_bad_epochs_are_rejected(epochs, message):
    with pytest.raises(ValueError, match=f"epochs must be .*{message}"):
        exponential.exponential_view(0.05, 0.9, epochs)


def test_bad_steps_per_epoch_is_rejected():
    with pytest.raises(ValueError, match="steps_per_epoch must be at least 1"):
        exponential.exponential_view(0.05, 0.9, 10, per_batch=True, steps_per_epoch=0)


# --- the explorer, headless ---------------------------------------------------------------------

def controls(explorer):
    """The explorer's controls by keyword (the last child of an `interactive` is its Output)."""
    return dict(zip(("lr", "gamma", "epochs", "per_batch", "steps_per_epoch"),
                    explorer.children[:-1]))


def test_explorer_starts_with_its_defaults(show):
    explorer = show(exponential.exponential_explorer(lr=0.05, gamma=0.9, epochs=30))
    view = explorer.result
    assert isinstance(view, exponential.ExponentialView)
    assert (view.lr, view.gamma, view.epochs, view.per_batch) == (0.05, 0.9, 30, False)
    assert controls(explorer)["steps_per_epoch"].disabled


def test_moving_the_sliders_redraws(show):
    explorer = show(exponential.exponential_explorer())
    sliders = controls(explorer)
    before = explorer.result

    sliders["gamma"].value = 0.8
    assert explorer.result is not before
    assert explorer.result.gamma == pytest.approx(0.8)
    assert explorer.result.half_life == pytest.approx(math.log(0.5) / math.log(0.8))
    assert explorer.result.epoch_lrs[-1] < before.epoch_lrs[-1]

    sliders["lr"].value = 1e-3
    assert explorer.result.lr == pytest.approx(1e-3)
    assert explorer.result.lrs[0] == pytest.approx(1e-3)

    sliders["epochs"].value = 10
    assert len(explorer.result.epoch_lrs) == 11


def test_lr_readout_and_title_show_the_lr_used(show):
    explorer = show(exponential.exponential_explorer(lr=0.05))
    lr_slider = controls(explorer)["lr"]
    for value in (0.05, 2e-5, 1.0, 0.1):
        lr_slider.value = value
        assert explorer.result.lr == value             # exactly the number on the slider
        fig, ax = plt.subplots()
        exponential.draw_exponential(explorer.result, ax)
        assert ax.get_title().startswith(f"lr_n = {lr_slider.label} ·"), (lr_slider.label, value)
    assert lr_slider.label == "0.1"


def test_lr_slider_keeps_a_starting_lr_off_its_grid():
    explorer = exponential.exponential_explorer(lr=0.03)
    lr_slider = controls(explorer)["lr"]
    assert lr_slider.value == 0.03 and lr_slider.label == "0.03"
    labels = [label for label, _ in lr_slider.options]
    assert labels[0] == "1e-05" and labels[-1] == "1" and "0.05" in labels and "0.03" in labels


def test_per_batch_checkbox_switches_stepping_and_enables_batches():
    explorer = exponential.exponential_explorer(epochs=5, steps_per_epoch=20)
    sliders = controls(explorer)
    sliders["per_batch"].value = True
    assert not sliders["steps_per_epoch"].disabled
    view = explorer.result
    assert view.per_batch and view.steps_per_epoch == 20 and len(view.lrs) == 5 * 20 + 1
    sliders["steps_per_epoch"].value = 40
    assert explorer.result.steps_per_epoch == 40 and len(explorer.result.lrs) == 5 * 40 + 1
    sliders["per_batch"].value = False
    assert sliders["steps_per_epoch"].disabled and len(explorer.result.lrs) == 6


def test_explorer_rejects_bad_defaults():
    with pytest.raises(ValueError, match="gamma"):
        exponential.exponential_explorer(gamma=0.0)
