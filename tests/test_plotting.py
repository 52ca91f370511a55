"""Tests for course_utils.plotting: what each figure holds, read back from matplotlib."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import pytest
import torch

from course_utils import plotting
from course_utils.data import FASHION_MNIST_CLASSES, Split
from course_utils.training import History


def history(losses, lrs=None):
    lrs = lrs or [0.1] * len(losses)
    return History([{"epoch": epoch, "lr": lr, "train_loss": loss, "val_loss": loss,
                     "val_acc": 0.5, "seconds": 1.0}
                    for epoch, (loss, lr) in enumerate(zip(losses, lrs), start=1)])


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_palette_is_eight_distinct_colours_and_styles_cycle():
    assert len({mcolors.to_hex(colour) for colour in plotting.PALETTE}) == 8
    assert plotting.style(0) == plotting.style(len(plotting.PALETTE) * len(plotting.LINESTYLES))
    assert plotting.style(0) != plotting.style(1)


def test_plot_histories_one_panel_per_metric_with_every_run():
    runs = {"constant": history([0.9, 0.7, 0.6]),
            "decay": history([0.9, 0.6, 0.5], lrs=[0.1, 0.05, 0.025])}
    fig = plotting.plot_histories(runs, ("val_loss", "val_acc", "lr"), title="t")
    axes = fig.axes
    assert [ax.get_ylabel() for ax in axes] == ["validation loss", "validation accuracy",
                                                "learning rate (log scale)"]
    assert [ax.get_yscale() for ax in axes] == ["linear", "linear", "log"]
    for ax in axes:
        assert [list(line.get_xdata()) for line in ax.get_lines()] == [[1, 2, 3]] * 2
    assert list(axes[2].get_lines()[1].get_ydata()) == [0.1, 0.05, 0.025]
    colours = {line.get_color() for line in axes[0].get_lines()}
    assert len(colours) == 2
    assert [text.get_text() for text in axes[-1].get_legend().get_texts()] == ["constant",
                                                                               "decay"]


def test_a_loss_that_blew_up_goes_on_a_log_axis():
    runs = {"too high": history([60_000.0, 2.3, 2.3]), "fine": history([0.5, 0.4, 0.3])}
    fig = plotting.plot_histories(runs, ("train_loss", "val_acc"))
    assert fig.axes[0].get_yscale() == "log"
    assert fig.axes[0].get_ylabel() == "training loss (log scale)"
    assert fig.axes[1].get_yscale() == "linear"           # accuracies never switch


def test_losses_of_one_scale_and_nan_stay_linear():
    runs = {"a": history([2.3, 0.5, float("nan")]), "b": history([0.9, 0.4, 0.3])}
    assert plotting.plot_histories(runs, ("val_loss",)).axes[0].get_yscale() == "linear"


def test_plot_schedules_one_log_panel_per_schedule_and_hides_the_rest():
    traces = {"step": [0.1, 0.1, 0.01], "batch": ([0.5, 1.0, 1.5], [0.1, 0.05, 0.02])}
    fig = plotting.plot_schedules(traces, ncols=3)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["step", "batch"]
    assert all(ax.get_yscale() == "log" for ax in visible)
    assert list(visible[0].get_lines()[0].get_xdata()) == [1, 2, 3]
    assert list(visible[1].get_lines()[0].get_xdata()) == [0.5, 1.0, 1.5]
    assert len(fig.axes) == 3 and not fig.axes[2].get_visible()


def test_show_images_titles_each_image_with_its_class():
    images = torch.zeros(5, 28, 28, dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 3, 9])
    split = Split(images, labels, FASHION_MNIST_CLASSES, mean=0.286, std=0.353)
    fig = plotting.show_images(split, 8, ncols=4)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 8
    assert titles[:5] == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Ankle boot"]
    assert titles[5:] == ["", "", ""]                      # more cells than images: left empty
