"""Shared code for the notebook series on learning-rate schedulers and regularization.

Import the modules you need; importing the package does nothing else:

    from course_utils import data, models, training
"""

__version__ = "0.1.0"
__all__ = ["checkpoint", "data", "doctor", "models", "notebook", "plateau_replay", "plotting",
           "schedulers", "sources", "training", "uncertainty", "widgets"]
