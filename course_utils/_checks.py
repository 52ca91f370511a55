"""Argument checks shared by the modules of course_utils (private: not part of the lessons)."""

from __future__ import annotations

import operator


def check_whole(value, what: str, minimum: int) -> int:
    """`value` as an int, or a ValueError if it is not a whole number >= minimum."""
    try:
        if isinstance(value, bool):     # True is an int to Python, never a count of epochs
            raise TypeError
        number = operator.index(value)  # accepts int and numpy ints, rejects 2.5
    except TypeError:
        raise ValueError(f"{what} must be a whole number, got {value!r}.") from None
    if number < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {number}.")
    return number


def check_positive(value: float, what: str) -> None:
    # `not value > 0` (rather than `value <= 0`) also rejects NaN.
    if not value > 0:
        raise ValueError(f"{what} must be positive, got {value!r}.")


def check_gamma(gamma: float) -> None:
    if not gamma > 0:
        raise ValueError(f"gamma={gamma!r}, but gamma multiplies the lr at every scheduler.step()"
                         " (lr <- lr * gamma), so it must be positive. Use 0 < gamma < 1 to decay "
                         "(e.g. 0.9), or gamma > 1 to grow the lr (an LR range test).")
