"""Every lesson of torchconv_impl.lessons: it runs, its checks against torch pass, its figure is
written, its printed lines fit 80 columns, and a wrong gradient injected into the
Functions it checks makes it fail loudly."""
from __future__ import annotations

import pytest
import torch

from torchconv_impl.lessons import lessons
from torchconv_impl.lessons.__main__ import main
from torchconv_impl.lessons._common import CheckFailed

LESSONS = list(lessons())


def test_list_names_every_lesson():
    printed = []
    main([], printed.append)
    listed = [line.split()[0] for text in printed[1:] for line in text.splitlines() if not line.startswith(" " * 27)]
    assert listed == LESSONS
    assert all(len(line) <= 80 for text in printed for line in text.splitlines())


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_runs_checks_and_draws(name, tmp_path):
    printed = []
    figure = main([name, "--out", str(tmp_path)], printed.append)
    assert figure == tmp_path / f"{name}.png" and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert printed[-1] == f"Figure: {figure}" and printed[-2] == "All agree."
    assert printed[-3].startswith("Checked against torch autograd of the torch.nn twin")
    too_wide = [line for text in printed[:-1] for line in text.splitlines() if len(line) > 80]  # the last: a path
    assert not too_wide, too_wide


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_fails_on_a_wrong_gradient(name, tmp_path, monkeypatch):
    """Every gradient the lesson's Functions return is off by one: its check must fail."""
    for function in lessons()[name].FUNCTIONS:
        backward = function.backward

        def wrong(ctx, *grads, _backward=backward):
            return tuple(None if g is None else g + 1 for g in _backward(ctx, *grads))

        monkeypatch.setattr(function, "backward", staticmethod(wrong))
    with pytest.raises(CheckFailed):
        main([name, "--out", str(tmp_path)], lambda text: None)


def test_unknown_lesson_names_the_lessons():
    with pytest.raises(SystemExit, match="unknown lesson 'nope'; the lessons are: "):
        main(["nope"])
