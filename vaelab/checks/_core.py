"""What every checker shares: one safe way to call a student's function, one way to report.

A checker never stops "Run All": it prints "Correct: …" when the answer passes, and otherwise a red
line (on stderr) that names the mistake. Either way it hands back the function the rest of the lesson
should use — the student's when it passes, else vaelab's reference implementation, with one line
saying so::

    e_step = vaelab.checks.e_step(e_step)

Under the tests (``VAELAB_STRICT=1``) a *wrong* answer raises :class:`ExerciseError`, so a broken
solution in the instructor edition fails nbval; an unsolved stub (``NotImplementedError``) only
reports, so the student edition still runs top to bottom.
"""
from __future__ import annotations

import functools
import math
import numbers
import os
import signal
import sys
import threading
from typing import Any, Callable

import torch

from ..trained import strict

__all__ = ["ExerciseError", "NotImplementedYet", "check_close", "passed", "call", "as_tensor", "require_finite",
           "as_number", "as_count", "checker", "report", "TIMEOUT"]

# seconds one call of a student's function may take; every checker case is small (milliseconds), so this
# only ever stops a loop that never ends. VAELAB_CHECK_TIMEOUT overrides it (0 switches it off).
TIMEOUT = float(os.environ.get("VAELAB_CHECK_TIMEOUT", "10"))
RED, RESET = "\x1b[31m", "\x1b[0m"


class ExerciseError(AssertionError):
    """A student's answer is wrong; the message names the mistake and what to try."""


class NotImplementedYet(ExerciseError):
    """The exercise is still the stub that raises ``NotImplementedError``."""


class _TimedOut(BaseException):
    """Raised inside a student's function by the alarm; a BaseException so ``except Exception`` in
    the student's code cannot swallow it."""


def passed(exercise: str) -> None:
    """Print the one-line confirmation a checker gives a correct answer."""
    print(f"Correct: {exercise} passes every check.")


def report(message: str) -> None:
    """Print ``message`` as a red line on stderr (Jupyter shows stderr on a red background)."""
    sys.stdout.flush()
    print(f"{RED}✗ {message}{RESET}", file=sys.stderr)
    sys.stderr.flush()


# ---------------------------------------------------------------------------- the safe caller

def _copy(value: Any) -> Any:
    # the student's function gets copies: an in-place edit cannot spoil the checker's own tensors
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad) if value.is_leaf else value
    return value


def _with_timeout(fn: Callable, args: tuple, kwargs: dict, seconds: float):
    """Run ``fn(*args, **kwargs)``; raise ``_TimedOut`` after ``seconds``. Ctrl-C still interrupts."""
    if seconds is None or seconds <= 0:
        return fn(*args, **kwargs)
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        def alarm(signum, frame):
            raise _TimedOut()
        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    # no SIGALRM (Windows, or not the main thread): run in a daemon thread and stop waiting after `seconds`
    box: dict = {}

    def target():
        try:
            box["out"] = fn(*args, **kwargs)
        except BaseException as error:  # handed to the caller below
            box["error"] = error
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise _TimedOut()
    if "error" in box:
        raise box["error"]
    return box["out"]


def call(fn: Callable, exercise: str, *args, timeout: float | None = None, none_ok: bool = False, copy: bool = True,
         **kwargs):
    """Call a student's ``fn(*args, **kwargs)`` safely, for the exercise ``exercise``.

    Tensor arguments are passed as copies (``copy=False`` passes them as they are, for checks of
    gradients with respect to them); a stub (``NotImplementedError``) raises
    :class:`NotImplementedYet`; any other exception, a call that runs past ``timeout`` seconds (default
    :data:`TIMEOUT`) or a ``None`` result raises :class:`ExerciseError` with a message naming the
    exercise. ``KeyboardInterrupt`` (Ctrl-C) passes through.

    >>> call(lambda a: a + 1, "demo", torch.tensor(1.0))
    tensor(2.)
    >>> call(lambda a: 1 / 0, "demo", 1.0)
    Traceback (most recent call last):
    ...
    vaelab.checks._core.ExerciseError: demo: your function raised ZeroDivisionError: division by zero
    """
    if not callable(fn):
        raise ExerciseError(f"{exercise}: pass your function itself (without calling it), got {type(fn).__name__}.")
    seconds = TIMEOUT if timeout is None else timeout
    copies = tuple(_copy(a) for a in args) if copy else args
    try:
        out = _with_timeout(fn, copies, kwargs, seconds)
    except _TimedOut:
        raise ExerciseError(f"{exercise}: your function was still running after {seconds:g} s on a small test case; "
                            "look for a loop that never ends (a `while` whose condition never changes).") from None
    except NotImplementedError:
        raise NotImplementedYet(f"{exercise}: not implemented yet. Replace `raise NotImplementedError(...)` "
                                "with your code.") from None
    except Exception as error:  # the student's code raised: say what, on which exercise
        raise ExerciseError(f"{exercise}: your function raised {type(error).__name__}: {error}") from error
    if out is None and not none_ok:
        raise ExerciseError(f"{exercise}: your function returned None; did you forget `return`?")
    return out


def as_tensor(value: Any, exercise: str, what: str, *, dtype: torch.dtype | None = torch.float64,
              keep_grad: bool = False) -> torch.Tensor:
    """``value`` (a tensor, numpy array, number or nested list) as a tensor of ``dtype``; else ExerciseError.

    A right answer in float32, float64 or numpy is right: the comparison happens in ``dtype``.
    ``keep_grad`` keeps the autograd graph (for checks of gradients); otherwise the result is detached.

    >>> as_tensor([1, 2], "demo", "the answer")
    tensor([1., 2.], dtype=torch.float64)
    >>> as_tensor("1, 2", "demo", "the answer")
    Traceback (most recent call last):
    ...
    vaelab.checks._core.ExerciseError: demo: the answer should be a torch.Tensor (or numbers), got str '1, 2'.
    """
    if value is None:
        raise ExerciseError(f"{exercise}: {what} is None; did you forget `return`?")
    if isinstance(value, (str, bytes, dict, set)) or callable(value):
        shown = repr(value) if len(repr(value)) < 40 else repr(value)[:37] + "..."
        raise ExerciseError(f"{exercise}: {what} should be a torch.Tensor (or numbers), got {type(value).__name__} {shown}.")
    try:
        if isinstance(value, torch.Tensor):
            t = value if keep_grad else value.detach()
        elif isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
            t = torch.stack([v if keep_grad else v.detach() for v in value])
        else:
            t = torch.as_tensor(value)
        if t.is_complex():
            raise TypeError("complex numbers")
        if dtype is not None:
            t = t.to(dtype)
    except ExerciseError:
        raise
    except Exception as error:
        raise ExerciseError(f"{exercise}: {what} should be a torch.Tensor (or numbers); could not convert the "
                            f"{type(value).__name__} you returned ({type(error).__name__}: {error}).") from None
    return t.cpu() if t.device.type != "cpu" and not keep_grad else t


def require_finite(t: torch.Tensor, exercise: str, what: str, hint: str = "") -> torch.Tensor:
    """Raise ExerciseError if ``t`` holds NaN or inf (say which and how many)."""
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
        parts = [f"{n_nan} NaN" if n_nan else "", f"{n_inf} inf" if n_inf else ""]
        raise ExerciseError(f"{exercise}: {what} contains {' and '.join(p for p in parts if p)} "
                            f"(of {t.numel()} numbers)." + (f" {hint}" if hint else ""))
    return t


def check_close(got, expected, exercise: str, what: str, *, hint: str = "",
                rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Raise ``ExerciseError`` unless ``got`` matches ``expected`` in shape and value (in ``expected``'s dtype)."""
    expected = torch.as_tensor(expected).detach()
    if not expected.is_floating_point():
        expected = expected.to(torch.float64)
    got = as_tensor(got, exercise, what, dtype=expected.dtype)
    if got.shape != expected.shape:
        raise ExerciseError(f"{exercise}: {what} should have shape {tuple(expected.shape)}, got {tuple(got.shape)}.")
    require_finite(got, exercise, what)
    if not torch.allclose(got, expected.to(got.device), rtol=rtol, atol=atol, equal_nan=False):
        diff = (got - expected).abs().max().item()
        message = f"{exercise}: {what} is off by up to {diff:.3g}."
        raise ExerciseError(message + (f" {hint}" if hint else ""))


def as_number(value: Any, exercise: str, what: str) -> float:
    """One real number from a Python number, a 1-element tensor or numpy array; else ExerciseError."""
    if isinstance(value, bool):
        raise ExerciseError(f"{exercise}: {what} should be a number, got the bool {value}.")
    if isinstance(value, numbers.Real):
        return float(value)
    t = as_tensor(value, exercise, what)
    if t.numel() != 1:
        raise ExerciseError(f"{exercise}: {what} should be one number, got shape {tuple(t.shape)}.")
    return float(t.reshape(()))


def as_count(value: Any, exercise: str, what: str) -> int:
    """A whole number from an int, a numpy integer, or a 1-element tensor or array holding one; else ExerciseError.

    >>> as_count(torch.tensor([3]), "demo", "the count")
    3
    >>> as_count(2.5, "demo", "the count")
    Traceback (most recent call last):
    ...
    vaelab.checks._core.ExerciseError: demo: the count should be a whole number, got 2.5.
    """
    number = as_number(value, exercise, what)
    if not math.isfinite(number) or number != int(number):
        shown = "NaN" if math.isnan(number) else f"{number:g}"
        raise ExerciseError(f"{exercise}: {what} should be a whole number, got {shown}.")
    return int(number)


# ---------------------------------------------------------------------------- the checker decorator

_REGISTRY: dict[str, Callable] = {}


def checker(exercise: str, reference: Callable, *, function: str | None = None):
    """Turn ``body(fn)``, which raises ExerciseError on a wrong answer, into a checker that reports.

    The checker returns ``fn`` when it passes and ``reference`` otherwise; ``function`` is the name
    of the lesson's function (for :func:`vaelab.checks.solution`), by default the checker's own name.
    """
    def wrap(body: Callable[[Callable], None]) -> Callable:
        name = body.__name__

        @functools.wraps(body)
        def check(fn: Callable) -> Callable:
            try:
                if not callable(fn):
                    raise ExerciseError(f"{exercise}: pass your function itself, e.g. checks.{name}({function or name}), "
                                        f"not the result of calling it (got {type(fn).__name__}).")
                body(fn)
            except NotImplementedYet as error:  # unsolved: never an error, not even under the tests
                report(str(error))
            except ExerciseError as error:
                if strict():
                    raise
                report(str(error))
            except Exception as error:  # a case the checker did not foresee: still never stop Run All
                if strict():
                    raise
                report(f"{exercise}: the checker could not finish ({type(error).__name__}: {error}).")
            else:
                passed(exercise)
                return fn
            print(f"→ the rest of the lesson uses vaelab's reference {function or name} instead "
                  f"(vaelab.checks.solution({name!r}) shows a solution).")
            return reference

        check.exercise = exercise
        check.reference = reference
        check.function = function or name
        _REGISTRY[name] = check
        return check
    return wrap
