"""Interactive explorers for the notebooks, one module per topic.

Each explorer is a pure function that computes and draws (unit-tested without a browser) and a
thin function that wires ipywidgets sliders to it, using only APIs of both 7.7 (Colab) and 8.x.
"""

__all__ = ["exponential", "plateau_simulator", "regularization"]
