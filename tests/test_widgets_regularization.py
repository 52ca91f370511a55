"""The regularization explorers: the pure functions against torch and closed forms, the drawing
functions on a real Axes, and the widgets driven headless (setting a control runs the callback)."""

import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from course_utils.widgets import regularization  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ----------------------------------------------------------------------------- Dropout

@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9])
def test_dropout_train_mode_is_zero_or_scaled_input(p):
    sample = regularization.dropout_outputs(p, n=5000)
    kept = sample.train != 0
    assert torch.allclose(sample.train[kept], sample.inputs[kept] / (1 - p), rtol=1e-6, atol=0)
    assert torch.equal(sample.eval, sample.inputs)


def test_dropout_drops_a_fraction_p_and_keeps_the_mean():
    p, n = 0.3, 20_000
    sample = regularization.dropout_outputs(p, inputs="constant 1", n=n)
    stats = sample.stats()
    assert abs(stats["train"]["zero_fraction"] - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert sorted(set(sample.train.tolist())) == pytest.approx([0.0, 1 / (1 - p)])
    assert abs(stats["train"]["mean"] - 1.0) < 4 * math.sqrt(stats["train"]["var"] / n)
    assert stats["eval"] == {"mean": 1.0, "var": 0.0, "zero_fraction": 0.0}
    # the variance of a constant input becomes p / (1 - p) in train mode
    assert stats["train"]["var"] == pytest.approx(p / (1 - p), rel=0.05)


def test_dropout_outputs_is_reproducible_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = regularization.dropout_outputs(0.5, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    second = regularization.dropout_outputs(0.5, seed=7)
    assert torch.equal(first.train, second.train)
    assert not torch.equal(first.train, regularization.dropout_outputs(0.5, seed=8).train)


@pytest.mark.parametrize("kwargs, words", [
    ({"p": 1.0}, "[0, 1)"), ({"p": -0.1}, "[0, 1)"),
    ({"p": 0.5, "inputs": "gaussian"}, "inputs must be one of"),
    ({"p": 0.5, "n": 1}, "at least 2"), ({"p": 0.5, "n": 2.5}, "whole number"),
])
def test_dropout_outputs_rejects_bad_input(kwargs, words):
    with pytest.raises(ValueError) as error:
        regularization.dropout_outputs(**kwargs)
    assert words in str(error.value)


def test_draw_dropout_draws_both_modes():
    fig, ax = plt.subplots()
    regularization.draw_dropout(regularization.dropout_outputs(0.5), ax)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert len(labels) == 2 and labels[0].startswith("eval") and labels[1].startswith("train")
    assert len(ax.patches) == 2 and len(ax.lines) == 2      # two histograms, two mean lines
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_dropout_explorer_redraws_when_p_changes(show):
    def expected_zeros(stats, p):      # zero inputs stay zero; a fraction p of the rest drops
        return stats["inputs"]["zero_fraction"] + p * (1 - stats["inputs"]["zero_fraction"])

    widget = show(regularization.dropout_explorer())
    first = widget.result
    assert first["train"]["zero_fraction"] == pytest.approx(expected_zeros(first, 0.5), abs=0.02)
    p_slider = next(c for c in widget.children if getattr(c, "description", "") == "p (drop)")
    p_slider.value = 0.2
    assert widget.result["train"]["zero_fraction"] == pytest.approx(
        expected_zeros(widget.result, 0.2), abs=0.02)
    assert widget.result != first
    inputs = next(c for c in widget.children if getattr(c, "description", "") == "inputs")
    inputs.value = "constant 1"
    assert widget.result["inputs"]["var"] == 0.0


# ----------------------------------------------------------------------------- BatchNorm

@pytest.mark.parametrize("momentum", [0.01, 0.1, 0.5, 1.0])
def test_running_mean_follows_the_update_rule(momentum):
    trace = regularization.running_stats_trace(momentum, batches=30, shift_at=10)
    expected = 0.0                               # running_mean starts at 0
    for batch_mean, running in zip(trace.batch_means, trace.running_means):
        expected = (1 - momentum) * expected + momentum * batch_mean
        assert running == pytest.approx(expected, abs=1e-5)


def test_momentum_none_is_the_plain_average():
    trace = regularization.running_stats_trace(None, batches=25, shift_at=5)
    for k, running in enumerate(trace.running_means, start=1):
        assert running == pytest.approx(sum(trace.batch_means[:k]) / k, abs=1e-5)


def test_trace_shape_and_true_means():
    trace = regularization.running_stats_trace(0.1, batches=50, shift_at=20, shift=2.0)
    assert len(trace.true_means) == len(trace.batch_means) == len(trace.running_means) == 50
    assert trace.true_means[:20] == [0.0] * 20 and trace.true_means[20:] == [2.0] * 30


@pytest.mark.parametrize("momentum, expected", [(0.1, 22), (0.5, 4), (0.9, 1), (1.0, 1),
                                                (0.01, 230)])
def test_batches_to_follow_closed_form(momentum, expected):
    assert regularization.batches_to_follow(momentum, 0.9) == expected
    k = expected
    assert 1 - (1 - momentum) ** k >= 0.9 - 1e-12
    assert k == 1 or 1 - (1 - momentum) ** (k - 1) < 0.9


def test_batches_to_follow_plain_average():
    # k / (40 + k) >= 0.9  <=>  k >= 360
    assert regularization.batches_to_follow(None, 0.9, shift_at=40) == 360


def test_noiseless_trace_matches_the_closed_form():
    # A huge batch makes every batch mean almost exactly the true mean.
    for momentum in (0.1, 0.3):
        trace = regularization.running_stats_trace(momentum, batches=80, shift_at=20,
                                                   batch_size=20_000)
        assert trace.batches_to(0.9) == regularization.batches_to_follow(momentum, 0.9)


def test_batches_to_is_none_when_never_reached():
    trace = regularization.running_stats_trace(0.001, batches=30, shift_at=10)
    assert trace.batches_to(0.9) is None


@pytest.mark.parametrize("kwargs, words", [
    ({"momentum": 0.0}, "(0, 1]"), ({"momentum": 1.5}, "(0, 1]"), ({"momentum": -0.1}, "(0, 1]"),
    ({"momentum": 0.1, "batches": 1}, "at least 2"),
    ({"momentum": 0.1, "batches": 10, "shift_at": 10}, "shift_at"),
    ({"momentum": 0.1, "shift_at": 0}, "shift_at"),
    ({"momentum": 0.1, "batch_size": 1}, "at least 2"),
])
def test_running_stats_trace_rejects_bad_input(kwargs, words):
    with pytest.raises(ValueError) as error:
        regularization.running_stats_trace(**kwargs)
    assert words in str(error.value)


@pytest.mark.parametrize("kwargs", [{"momentum": 0.0}, {"momentum": 2.0},
                                    {"momentum": 0.1, "fraction": 1.0},
                                    {"momentum": 0.1, "fraction": 0.0}])
def test_batches_to_follow_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        regularization.batches_to_follow(**kwargs)


def test_draw_running_stats():
    fig, ax = plt.subplots()
    regularization.draw_running_stats(regularization.running_stats_trace(0.1), ax)
    assert len(ax.lines) == 5      # true mean, batch means, running mean, two markers
    assert "90 % of the jump after" in ax.get_title()
    assert ax.get_xlabel() == "batch" and ax.get_ylabel()


def test_momentum_explorer_redraws_when_controls_change(show):
    widget = show(regularization.batchnorm_momentum_explorer())
    assert widget.result.momentum == pytest.approx(0.1)
    slow = widget.result.batches_to(0.9)
    momentum = next(c for c in widget.children if getattr(c, "description", "") == "momentum")
    momentum.value = 0.5
    assert widget.result.momentum == pytest.approx(0.5)
    assert widget.result.batches_to(0.9) < slow
    plain = next(c for c in widget.children if getattr(c, "description", "") == "momentum=None")
    plain.value = True
    assert widget.result.momentum is None
