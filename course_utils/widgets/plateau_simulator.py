"""ReduceLROnPlateau with every parameter on a slider, replayed exactly (`plateau_replay`)."""

from __future__ import annotations

import math
import random

from course_utils._checks import check_whole
from course_utils.plateau_replay import describe, draw_plateau, replay_plateau
from course_utils.plotting import display_once

# Built-in synthetic curves: name -> (shape, the mode that fits it).
SYNTHETIC = {
    "synthetic: loss that levels off": ("levels_off", "min"),
    "synthetic: loss that turns up (overfitting)": ("overfits", "min"),
    "synthetic: accuracy that levels off": ("accuracy", "max"),
}


def synthetic_curve(shape: str = "levels_off", *, epochs: int = 40, noise: float = 0.02,
                    seed: int = 0) -> list[float]:
    """An invented validation curve, one value per epoch, with Gaussian noise (std `noise`, seeded):
    "levels_off" (a loss down to 0.35), "overfits" (rises after epoch 12), "accuracy" (to 0.90)."""
    shapes = {shape_name for shape_name, _ in SYNTHETIC.values()}
    if shape not in shapes:
        raise ValueError(f"shape must be one of {sorted(shapes)}, got {shape!r}.")
    epochs = check_whole(epochs, "epochs", minimum=1)
    if not noise >= 0:
        raise ValueError(f"noise is a standard deviation, so it must be >= 0, got {noise!r}.")
    rng = random.Random(seed)
    values = []
    for epoch in range(1, epochs + 1):
        decay = math.exp(-epoch / 5)
        base = {"levels_off": 0.35 + 0.9 * decay,
                "overfits": 0.35 + 0.9 * decay + 0.00025 * max(0, epoch - 12) ** 2,
                "accuracy": 0.90 - 0.5 * decay}[shape]
        values.append(base + noise * rng.gauss(0.0, 1.0))
    return values


def plateau_explorer(curves: dict | None = None, *, epochs: int = 40, lr: float = 0.1):
    """Sliders and dropdowns for every ReduceLROnPlateau parameter over a chosen curve: `curves`
    ({"my run": history.val_loss}), then the synthetic ones (noise and seed act on them only).
    Returns the widget: `.controls` by name, `.result` the latest replay."""
    import ipywidgets as widgets

    recorded = {}
    for name, values in (curves or {}).items():
        recorded[name] = [step.metric for step in replay_plateau(values)]   # checks the numbers
        if not recorded[name]:
            raise ValueError(f"curve {name!r} is empty: give one value per epoch, e.g. "
                             "history.val_loss.")
    names = list(recorded) + list(SYNTHETIC)
    slider = {"continuous_update": False, "style": {"description_width": "initial"}}
    plain = {"style": {"description_width": "initial"}}
    controls = {
        "curve": widgets.Dropdown(options=names, value=names[0], description="curve", **plain),
        "noise": widgets.FloatSlider(description="noise (synthetic)", value=0.02, min=0.0, max=0.1,
                                     step=0.005, readout_format=".3f", **slider),
        "seed": widgets.IntSlider(value=0, min=0, max=20, description="noise seed", **slider),
        "lr": widgets.FloatLogSlider(value=lr, base=10, min=-4, max=0, step=0.1,
                                     description="start lr", **slider),
        "mode": widgets.Dropdown(options=["min", "max"], value="min", description="mode", **plain),
        "factor": widgets.FloatSlider(value=0.1, min=0.05, max=0.95, step=0.05,
                                      description="factor", **slider),
        "patience": widgets.IntSlider(value=3, min=0, max=15, description="patience", **slider),
        "threshold": widgets.FloatLogSlider(description="threshold", value=1e-4, base=10, min=-6,
                                            max=-0.5, step=0.25, readout_format=".1e", **slider),
        "threshold_mode": widgets.Dropdown(options=["rel", "abs"], value="rel",
                                           description="threshold_mode", **plain),
        "cooldown": widgets.IntSlider(value=0, min=0, max=10, description="cooldown", **slider),
        # Without a value, a Dropdown starts at its first option: here torch's default.
        "min_lr": widgets.Dropdown(description="min_lr", options=[("0", 0.0), ("1e-5", 1e-5),
                                   ("1e-4", 1e-4), ("1e-3", 1e-3), ("1e-2", 1e-2)], **plain),
        "eps": widgets.Dropdown(description="eps", options=[("1e-8 (default)", 1e-8),
                                ("1e-5", 1e-5), ("1e-3", 1e-3), ("1e-2", 1e-2)], **plain),
    }
    summary = widgets.HTML()
    box = widgets.VBox()

    def on_curve(change):    # a built-in accuracy curve wants mode="max", a loss "min"
        if change["new"] in SYNTHETIC:
            controls["mode"].value = SYNTHETIC[change["new"]][1]
    controls["curve"].observe(on_curve, names="value")

    def update(curve, noise, seed, **params):
        metrics = (synthetic_curve(SYNTHETIC[curve][0], epochs=epochs, noise=noise, seed=seed)
                   if curve in SYNTHETIC else recorded[curve])
        box.result = replay_plateau(metrics, **params)
        summary.value = f"<b>{describe(box.result)}</b>"
        display_once(draw_plateau(box.result, metric_label=curve.split(": ")[-1], title=""))

    output = widgets.interactive_output(update, controls)
    rows = [["curve", "noise", "seed"], ["lr", "mode", "factor", "patience"],
            ["threshold", "threshold_mode", "cooldown"], ["min_lr", "eps"]]
    box.children = [widgets.HBox([controls[name] for name in row]) for row in rows]
    box.children += (summary, output)
    box.controls = controls
    return box
