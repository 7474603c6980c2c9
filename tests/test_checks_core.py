"""The checkers' shared contract: report instead of raise, hand back the function to use, strict under tests."""
import signal
import threading
import time

import pytest
import torch

from vaelab import checks, gmm
from vaelab.checks import ExerciseError, _core


def right(x, weights, means, covariances):
    return gmm.e_step(x, weights, means, covariances)


def wrong(x, weights, means, covariances):
    return gmm.e_step(x, weights, means, covariances) * 0.5


def stub(*args):
    raise NotImplementedError("Exercise: write the body of e_step")


def test_a_passing_answer_is_handed_back(capsys):
    assert checks.e_step(right) is right
    assert capsys.readouterr().out == "Correct: e_step passes every check.\n"


def test_a_stub_reports_and_hands_back_the_reference_even_under_the_tests(capsys):
    assert _core.strict()  # the root conftest sets VAELAB_STRICT=1
    assert checks.e_step(stub) is checks.e_step.reference
    out = capsys.readouterr()
    assert "✗ e_step: not implemented yet" in out.err and _core.RED in out.err
    assert "the rest of the lesson uses vaelab's reference e_step" in out.out


def test_a_wrong_answer_raises_under_the_tests():
    with pytest.raises(ExerciseError, match="e_step"):
        checks.e_step(wrong)


def test_a_wrong_answer_only_reports_for_a_learner(monkeypatch, capsys):
    monkeypatch.setenv("VAELAB_STRICT", "0")
    use = checks.e_step(wrong)
    assert use is checks.e_step.reference
    torch.testing.assert_close(use(*_case()), gmm.e_step(*_case()))
    out = capsys.readouterr()
    assert "✗ e_step:" in out.err and "Correct" not in out.out


def test_a_checker_bug_never_stops_a_learner(monkeypatch, capsys):
    monkeypatch.setenv("VAELAB_STRICT", "0")

    @_core.checker("demo", reference=len)
    def demo(fn):
        raise KeyError("a case the checker did not foresee")

    assert demo(print) is len
    assert "the checker could not finish (KeyError" in capsys.readouterr().err
    monkeypatch.setenv("VAELAB_STRICT", "1")
    with pytest.raises(KeyError):
        demo(print)


def test_passing_the_result_instead_of_the_function(monkeypatch, capsys):
    monkeypatch.setenv("VAELAB_STRICT", "0")
    assert checks.e_step(torch.zeros(3)) is checks.e_step.reference
    assert "pass your function itself" in capsys.readouterr().err


def _case():
    x = torch.randn(4, 2, dtype=torch.float64)
    return x, torch.tensor([0.5, 0.5], dtype=torch.float64), torch.zeros(2, 2, dtype=torch.float64), \
        torch.eye(2, dtype=torch.float64).repeat(2, 1, 1)


# ---------------------------------------------------------------- the safe caller

def test_call_copies_tensors_so_in_place_edits_cannot_spoil_the_case():
    a = torch.ones(3)
    _core.call(lambda t: t.mul_(0), "demo", a)
    assert torch.equal(a, torch.ones(3))


def test_call_times_out_with_a_clear_message():
    def forever(x):
        while True:
            pass
    start = time.perf_counter()
    with pytest.raises(ExerciseError, match=r"demo: your function was still running after 0.3 s"):
        _core.call(forever, "demo", 1, timeout=0.3)
    assert time.perf_counter() - start < 3
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # no alarm left behind


def test_the_timeout_cannot_be_swallowed_by_the_students_except():
    def sneaky(x):
        while True:
            try:
                time.sleep(0.01)
            except Exception:
                pass
    with pytest.raises(ExerciseError, match="still running"):
        _core.call(sneaky, "demo", 1, timeout=0.2)


def test_call_times_out_off_the_main_thread_too():
    box = {}

    def run():
        try:
            _core.call(lambda x: time.sleep(5), "demo", 1, timeout=0.2)
        except ExerciseError as error:
            box["error"] = str(error)
    t = threading.Thread(target=run)
    t.start()
    t.join(4)
    assert "still running after 0.2 s" in box["error"]


def test_ctrl_c_still_interrupts_a_student_loop():
    def forever(x):
        while True:
            pass
    signal.signal(signal.SIGALRM, lambda *a: None)  # restored by call; here only to prove it is
    timer = threading.Timer(0.2, lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        _core.call(forever, "demo", 1, timeout=5)
    timer.join()
    signal.signal(signal.SIGALRM, signal.SIG_DFL)


@pytest.mark.parametrize("value, msg", [
    (None, "is None; did you forget `return`"),
    ("0.5", "should be a torch.Tensor .*got str"),
    ({"a": 1}, "got dict"),
    ([[1.0], [2.0, 3.0]], "could not convert the list"),
    (print, "got builtin_function_or_method"),
])
def test_as_tensor_names_what_came(value, msg):
    with pytest.raises(ExerciseError, match=msg):
        _core.as_tensor(value, "demo", "the answer")


def test_as_tensor_accepts_numpy_float32_float64_and_grad_carrying_answers():
    expected = torch.tensor([1.0, 2.0], dtype=torch.float64)
    for value in (expected.numpy(), expected.float(), expected.clone().requires_grad_(), [1.0, 2.0]):
        got = _core.as_tensor(value, "demo", "x")
        assert got.dtype == torch.float64 and not got.requires_grad
        torch.testing.assert_close(got, expected)


def test_require_finite_counts_nan_and_inf():
    with pytest.raises(ExerciseError, match=r"demo: x contains 1 NaN and 1 inf \(of 3 numbers\)"):
        _core.require_finite(torch.tensor([1.0, float("nan"), float("inf")]), "demo", "x")


# ---------------------------------------------------------------- solutions for self-study

def test_solution_comes_from_the_instructor_edition(capsys):
    text = checks.solution("e_step")
    assert "def e_step(" in text and "BEGIN SOLUTION" not in text and "01_" in text.splitlines()[0]
    assert capsys.readouterr().out.strip() == text.strip()


def test_solution_by_the_lessons_function_name_and_without_notebooks(monkeypatch, tmp_path):
    assert "def reparameterize(" in checks.solution("reparameterize")
    monkeypatch.setattr("vaelab.checks._solution._notebook_dirs", lambda: [])
    text = checks.solution("reparameterized_sample")
    assert "reference implementation" in text.splitlines()[0] and "def _reparameterize_reference" in text


def test_solution_of_an_unknown_exercise():
    with pytest.raises(ValueError, match=r"`name` must be one of the exercises \[.*'e_step'"):
        checks.solution("e_stp")
    with pytest.raises(TypeError, match="`name` must be"):
        checks.solution(checks.e_step)
