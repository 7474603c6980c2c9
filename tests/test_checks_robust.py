"""Every checker against the usual ways an answer goes wrong (or is right in another form): a readable
message naming the exercise, never a crash, and a correct answer accepted in float32, float64 or numpy."""
import math

import numpy as np
import pytest
import torch

from vaelab import checks
from vaelab.checks import ExerciseError, _core

CHECKERS = sorted(_core._REGISTRY.items())
# these must hand back something autograd can differentiate: numpy or a detached answer is wrong there
NEEDS_GRAD = {"reparameterized_sample", "straight_through", "free_bits_kl"}
# these return a whole number
COUNTS = {"active_units", "gmm_n_parameters"}


def transformed(reference, kind):
    """A student function: the reference's answer, changed as ``kind`` says."""
    def change(out):
        if isinstance(out, (tuple, list)):
            return type(out)(change(o) for o in out)
        if kind == "float64":
            return out.double() if isinstance(out, torch.Tensor) and out.is_floating_point() else out
        if kind == "float32":
            return out.float() if isinstance(out, torch.Tensor) and out.is_floating_point() else out
        if kind == "numpy":
            return out.detach().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
        if kind == "requires_grad":  # built from a tensor that requires grad, as in a training loop
            leaf = torch.zeros((), dtype=out.dtype if isinstance(out, torch.Tensor) and out.is_floating_point()
                               else torch.float64, requires_grad=True)
            return out + leaf if isinstance(out, torch.Tensor) and out.is_floating_point() else out
        if kind in ("nan", "inf"):
            bad = float(kind)
            return torch.full(out.shape, bad) if isinstance(out, torch.Tensor) else bad
        if kind == "string":
            return "0.5"
        if kind == "none":
            return None
        if kind == "extra_axis":
            return torch.stack([out, out]) if isinstance(out, torch.Tensor) else torch.tensor([out, out])
        raise ValueError(kind)

    def student(*args, **kwargs):
        if kind == "raising":
            raise ValueError("boom")
        if kind == "looping":
            while True:
                pass
        return change(reference(*args, **kwargs))
    return student


RIGHT = ["float64", "float32", "requires_grad"]
WRONG = ["nan", "inf", "string", "none", "extra_axis", "raising", "looping"]


@pytest.fixture
def short_timeout(monkeypatch):
    monkeypatch.setattr(_core, "TIMEOUT", 0.3)  # the looping answers spin only this long


@pytest.mark.parametrize("name, check", CHECKERS, ids=[n for n, _ in CHECKERS])
def test_the_reference_passes_and_is_handed_back(name, check, capsys):
    assert check(check.reference) is check.reference
    assert capsys.readouterr().out == f"Correct: {check.exercise} passes every check.\n"


@pytest.mark.parametrize("kind", RIGHT + ["numpy"])
@pytest.mark.parametrize("name, check", CHECKERS, ids=[n for n, _ in CHECKERS])
def test_a_right_answer_in_another_form_passes(name, check, kind, capsys):
    if kind == "numpy" and name in NEEDS_GRAD:
        with pytest.raises(ExerciseError, match=rf"^{check.exercise}\b.*(gradient|differentiable|torch)"):
            check(transformed(check.reference, kind))
        return
    fn = transformed(check.reference, kind)
    assert check(fn) is fn
    assert "Correct" in capsys.readouterr().out


@pytest.mark.usefixtures("short_timeout")
@pytest.mark.parametrize("kind", WRONG)
@pytest.mark.parametrize("name, check", CHECKERS, ids=[n for n, _ in CHECKERS])
def test_a_wrong_answer_gets_a_readable_message(name, check, kind):
    with pytest.raises(ExerciseError) as error:
        check(transformed(check.reference, kind))
    message = str(error.value)
    assert message.startswith(check.exercise), message
    assert "could not finish" not in message
    expected = {"raising": "raised ValueError: boom", "looping": "still running after 0.3 s",
                "none": "None", "string": "str", "nan": "NaN", "inf": "inf"}.get(kind)
    if expected:
        assert expected in message, message


@pytest.mark.usefixtures("short_timeout")
@pytest.mark.parametrize("kind", WRONG)
@pytest.mark.parametrize("name, check", CHECKERS, ids=[n for n, _ in CHECKERS])
def test_for_a_learner_a_wrong_answer_reports_and_the_reference_takes_over(name, check, kind, monkeypatch, capsys):
    monkeypatch.setenv("VAELAB_STRICT", "0")
    assert check(transformed(check.reference, kind)) is check.reference
    out = capsys.readouterr()
    assert out.err.startswith(f"{_core.RED}✗ {check.exercise}") and "could not finish" not in out.err
    assert "the rest of the lesson uses vaelab's reference" in out.out


@pytest.mark.parametrize("name, check", CHECKERS, ids=[n for n, _ in CHECKERS])
def test_a_stub_says_not_implemented_yet(name, check, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"Exercise: write the body of {check.function}")
    assert check(stub) is check.reference
    assert f"✗ {check.exercise}: not implemented yet" in capsys.readouterr().err


def test_every_checker_a_lesson_calls_is_registered_and_so_tested_here():
    import re
    from pathlib import Path
    called = set()
    for path in (Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"):
        called |= set(re.findall(r"checks\.(\w+)\(", path.read_text()))
    called -= {"solution", "call", "as_tensor", "report", "checker"}
    assert called <= set(_core._REGISTRY), called - set(_core._REGISTRY)
    for name, check in CHECKERS:
        assert getattr(checks, name) is check and callable(check.reference)
