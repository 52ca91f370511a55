"""The helpers the notebooks and `make run` share: records, self-checks, the index page."""

import json

import nbformat
import pytest

from course_utils import notebook
from scripts.build_site import title_of


def test_records_round_trip_through_an_executed_notebook():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 07 · A title"),
        nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
            "display_data", data={notebook.RECORD_MIME: {"best": 0.9}, "text/plain": "best"})]),
        nbformat.v4.new_code_cell("y", outputs=[nbformat.v4.new_output(
            "display_data", data={notebook.RECORD_MIME: {"lrs": [0.1, 0.05]}})]),
    ])
    assert notebook.read_records(nb) == {"best": 0.9, "lrs": [0.1, 0.05]}
    assert notebook.read_records(json.loads(nbformat.writes(nb))) == {"best": 0.9,
                                                                       "lrs": [0.1, 0.05]}
    assert title_of(nb) == "07 · A title"


def test_record_refuses_values_that_cannot_be_read_back():
    with pytest.raises(TypeError):
        notebook.record("model", object())


def right(answer, expected, **kwargs) -> bool:
    return notebook.grade(answer, expected, **kwargs)[0]


def said(answer, expected, **kwargs) -> str:
    return notebook.grade(answer, expected, **kwargs)[1]


def test_grade_accepts_the_digits_a_learner_types_and_says_how_close():
    assert right(0.8409, 0.5 ** 0.25)           # four digits typed by hand
    assert right(0.841, 0.5 ** 0.25)            # three
    assert "away from the answer" in said(0.841, 0.5 ** 0.25)
    assert not right(0.85, 0.5 ** 0.25)
    assert "1.1 % of it" in said(0.85, 0.5 ** 0.25)
    assert right(0.84, 0.5 ** 0.25, digits=2)
    assert not right(0.8409, 0.5 ** 0.25, digits=6)
    assert right(0.025, 0.1 * 0.5 ** 2)
    assert right(1e-9, 1.0000000001e-9) and not right(2e-9, 1e-9)
    assert right(0.0, 0.0) and not right(0.1, 0.0)


def test_grade_wants_whole_numbers_and_other_answers_exactly():
    assert right(7, 7) and right(7.0, 7)
    assert not right(6, 7)
    assert "1 away from the answer, a whole number" in said(6, 7)
    assert not right("7", 7) and not right(True, 1)
    assert right("max", "max")
    assert not right(None, 0.025)
    assert "replace None" in said(None, 0.025)


@pytest.mark.parametrize("answer", (None, 0.841, 0.85, "max"))
def test_check_answer_prints_the_verdict_and_returns_nothing(answer, capsys):
    # Nothing returned: an exercise cell shows the sentence alone, not a trailing True/False.
    assert notebook.check_answer(answer, 0.5 ** 0.25) is None
    assert capsys.readouterr().out == said(answer, 0.5 ** 0.25) + "\n"


def test_fast_mode_reads_the_environment(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    assert notebook.fast_mode()
    monkeypatch.setenv("COURSE_FAST", "0")
    assert not notebook.fast_mode()


def test_report_device_names_the_device_and_the_versions(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert notebook.report_device() == torch.device("cpu")
    printed = capsys.readouterr().out
    assert f"PyTorch {torch.__version__}" in printed and "device: cpu" in printed
    assert "Change runtime type > GPU" in printed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert notebook.report_device() == torch.device("cuda")
    assert "No GPU" not in capsys.readouterr().out
