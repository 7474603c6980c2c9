"""What every checker shares: how a pass is announced and how a mistake is reported."""
from __future__ import annotations

import torch

__all__ = ["ExerciseError", "check_close", "passed"]


class ExerciseError(AssertionError):
    """A student's answer is wrong; the message names the mistake and what to try."""


def passed(exercise: str) -> None:
    """Print the one-line confirmation a checker gives a correct answer."""
    print(f"Correct: {exercise} passes every check.")


def check_close(got, expected, exercise: str, what: str, *, hint: str = "",
                rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Raise ``ExerciseError`` unless ``got`` matches ``expected`` in shape and value."""
    got = torch.as_tensor(got)
    expected = torch.as_tensor(expected)
    if got.shape != expected.shape:
        raise ExerciseError(f"{exercise}: {what} should have shape {tuple(expected.shape)}, got {tuple(got.shape)}.")
    if not torch.allclose(got.to(expected.dtype), expected, rtol=rtol, atol=atol, equal_nan=False):
        diff = (got.to(expected.dtype) - expected).abs().max().item()
        message = f"{exercise}: {what} is off by up to {diff:.3g}."
        raise ExerciseError(message + (f" {hint}" if hint else ""))
