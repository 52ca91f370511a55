"""Interactive explorers for the notebooks, one module per topic.

Each explorer is split in two: a pure function that computes and draws (unit-tested without a
browser) and a thin function that wires ipywidgets sliders to it. Only ipywidgets APIs present
in both 7.7 (Colab) and 8.x are used.
"""
