"""Helpers for the notebooks: the device report, fast mode, self-checks and recorded numbers."""
# `record` tags a headline number with a MIME type of its own, so that tests and `make run` can
# collect it afterwards with `read_records(executed_notebook)`.

import json
import math
import os

RECORD_MIME = "application/x.course-record+json"


def fast_mode() -> bool:
    """True when COURSE_FAST=1: small defaults, for tests and quick checks."""
    return os.environ.get("COURSE_FAST") == "1"


def report_device():
    """`training.get_device()`, reported with the versions (and, on a CPU, how to get a GPU)."""
    import torch

    from course_utils import __version__, training

    device = training.get_device()
    print(f"PyTorch {torch.__version__}, course_utils {__version__}, device: {device}")
    if device.type == "cpu":
        print("No GPU found. On Colab: Runtime > Change runtime type > GPU, then run all cells "
              "again. On a CPU everything works, only more slowly.")
    return device


def record(name: str, value) -> None:
    """Show `name = value` and keep it machine-readable (the value must be JSON-serializable)."""
    from IPython.display import display  # imported here: only a running notebook needs it

    json.dumps(value)                        # fail now, with the value at hand, if it can't be read
    display({RECORD_MIME: {name: value}, "text/plain": f"{name} = {value!r}"}, raw=True)


def read_records(notebook) -> dict:
    """Every value recorded in an executed notebook (a NotebookNode or a dict), by name."""
    records = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            records.update(output.get("data", {}).get(RECORD_MIME, {}))
    return records


def check_answer(answer, expected, *, digits: int = 3) -> None:
    """An exercise's self-check: prints whether `answer` is right, and how close it is."""
    # Returns nothing, so the cell shows that one line; `grade` gives the verdict to code.
    print(grade(answer, expected, digits=digits)[1])


def grade(answer, expected, *, digits: int = 3) -> tuple[bool, str]:
    """Whether `answer` is right, and the sentence that says so. A float `expected` accepts
    answers within one unit of its `digits`-th significant digit; anything else must match."""
    # 0.8409 and 0.841 both pass for 0.840896...; an int `expected` (an epoch, a count) must match
    # exactly, as must anything that is not a number.
    if answer is None:
        return False, "No answer yet: replace None with your answer and run this cell again."
    if not (isinstance(expected, (int, float)) and isinstance(answer, (int, float))) \
            or isinstance(expected, bool) or isinstance(answer, bool):
        correct = answer == expected and isinstance(answer, bool) == isinstance(expected, bool)
        return correct, ("Correct!" if correct
                         else f"Not yet: {answer!r} is not the expected answer.")
    error = abs(answer - expected)
    if isinstance(expected, int):
        correct, how = error == 0, f"{error:g} away from the answer, a whole number"
    else:
        unit = 10.0 ** (math.floor(math.log10(abs(expected))) - digits + 1) if expected else 1e-12
        correct = error <= unit
        share = f" ({100 * error / abs(expected):.2g} % of it)" if expected else ""
        how = f"{error:.2g} away from the answer{share}; {digits} significant digits are enough"
    if correct:
        return True, "Correct!" if error == 0 else f"Correct! (your answer is {how})"
    return False, f"Not yet: {answer!r} is {how}. Try again."
