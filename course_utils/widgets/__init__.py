"""Interactive explorers, one module per topic: pure functions compute (with torch itself) and
draw, tested without a browser; a thin function wires ipywidgets 7.7 (Colab) and 8.x to them."""

__all__ = ["exponential", "plateau_simulator", "regularization"]
