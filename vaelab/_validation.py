"""Shared input checks for vaelab's public entry points.

Every check raises ``ValueError`` or ``TypeError`` whose message names the parameter,
what was expected and what came, e.g.
"`X` must be 2-D of shape (n_samples, n_features), got shape (64,)".
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "check_2d",
    "check_choice",
    "check_finite",
    "check_fraction",
    "check_nonnegative",
    "check_positive",
    "check_positive_int",
    "check_probabilities",
    "sum_tolerance",
]


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise if it is not an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer >= {minimum}, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value}")
    return int(value)


def _check_real(value: Any, name: str, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be {expected}, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be {expected}, got {value}")
    return value


def check_positive(value: Any, name: str) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number > 0."""
    value = _check_real(value, name, "a finite number > 0")
    if value <= 0:
        raise ValueError(f"`{name}` must be a finite number > 0, got {value}")
    return value


def check_nonnegative(value: Any, name: str) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number >= 0."""
    value = _check_real(value, name, "a finite number >= 0")
    if value < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value}")
    return value


def check_fraction(value: Any, name: str) -> float:
    """Return ``value`` as a float, or raise if it is not in the open interval (0, 1)."""
    value = _check_real(value, name, "a number in (0, 1)")
    if not 0 < value < 1:
        raise ValueError(f"`{name}` must be a number in (0, 1), got {value}")
    return value


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise naming the valid ones."""
    choices = tuple(choices)
    # == alone lets 0, 0.0 and np.False_ pass for False (and 1 for True): a choice matches its own kind only
    if not any(_same_kind(value, c) and _equal(value, c) for c in choices):
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {options}; got {value!r}")
    return value


def _same_kind(value: Any, choice: Any) -> bool:
    if isinstance(choice, bool):
        return isinstance(value, bool)
    if isinstance(choice, str):
        return isinstance(value, str)
    return not isinstance(value, (bool, np.bool_))


def _equal(value: Any, choice: Any) -> bool:
    try:
        return bool(value == choice)
    except (TypeError, ValueError):  # an array compared with a string: not a choice
        return False


def as_tensor(X: Any, name: str, *, dtype: torch.dtype | None = None,
              device: torch.device | str | None = None) -> torch.Tensor:
    """Convert a numpy array, a tensor or a nested list of numbers to a floating tensor.

    Also takes anything numpy can read as an array (``__array__``, an object array of numbers).
    Sparse matrices, ragged lists, strings and complex numbers are refused with a message naming ``name``.

    >>> as_tensor([[1, 2], [3, 4]], "X").dtype
    torch.float32
    """
    if isinstance(X, torch.Tensor):
        t = X
    elif type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"`{name}` must be a dense numpy array or torch tensor; sparse input is not "
                        f"supported (got a {type(X).__name__}): convert it with {name}.toarray()")
    elif isinstance(X, (np.ndarray, list, tuple, numbers.Real)) or hasattr(X, "__array__"):
        try:
            arr = np.asarray(X)
        except ValueError as error:  # numpy's words for a ragged list
            raise ValueError(f"`{name}` must be a rectangular array (every row of the same length), "
                             f"got a ragged sequence: {error}") from None
        if arr.dtype == object:
            try:  # an object array of numbers (as pandas or a list of mixed types give) is fine
                arr = arr.astype(np.float64)
            except (TypeError, ValueError) as error:
                raise TypeError(f"`{name}` must hold real numbers, got an array of dtype object whose "
                                f"entries do not convert to float: {error}") from None
        if np.issubdtype(arr.dtype, np.complexfloating):
            raise ValueError(f"`{name}` must hold real numbers: Complex data not supported, got dtype {arr.dtype}")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"`{name}` must hold real numbers, got an array of dtype {arr.dtype}")
        if not arr.flags.writeable:  # torch cannot wrap a read-only buffer (a memmap, a broadcast view)
            arr = arr.copy()
        t = torch.from_numpy(np.ascontiguousarray(arr))
    else:
        raise TypeError(f"`{name}` must be a numpy array or a torch tensor, got {type(X).__name__}")
    if t.is_complex():
        raise ValueError(f"`{name}` must hold real numbers: Complex data not supported, got dtype {t.dtype}")
    if dtype is None:
        dtype = t.dtype if t.is_floating_point() else torch.get_default_dtype()
    return t.to(device=device, dtype=dtype)


def check_finite(X: torch.Tensor, name: str) -> torch.Tensor:
    """Raise if ``X`` holds NaN or infinity, saying how many and where the first one is."""
    bad = ~torch.isfinite(X)
    if bad.any():
        first = tuple(int(i) for i in bad.nonzero()[0].tolist())
        raise ValueError(
            f"`{name}` must contain only finite values, got {int(bad.sum())} NaN or infinite "
            f"value(s), the first at index {first}"
        )
    return X


def check_2d(X: Any, name: str = "X", *, n_features: int | None = None, min_samples: int = 1,
             dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """Return ``X`` as a finite floating tensor of shape (n_samples, n_features).

    >>> check_2d([[0.0, 1.0]]).shape
    torch.Size([1, 2])
    """
    t = as_tensor(X, name, dtype=dtype, device=device)
    if t.ndim != 2:
        hint = (f". Reshape your data: {name}.reshape(-1, 1) if it has one feature, {name}.reshape(1, -1) "
                "if it is one sample") if t.ndim == 1 else ""
        raise ValueError(f"`{name}` must be 2-D of shape (n_samples, n_features), got shape {tuple(t.shape)}{hint}")
    if t.shape[0] < min_samples:
        raise ValueError(f"`{name}` must have at least {min_samples} sample(s), got shape {tuple(t.shape)}: "
                         f"{t.shape[0]} sample(s) while a minimum of {min_samples} is required.")
    if t.shape[1] < 1:
        # scikit-learn's wording after the colon, which its estimator checks look for
        raise ValueError(f"`{name}` must have at least one feature: "
                         f"0 feature(s) (shape={tuple(t.shape)}) while a minimum of 1 is required.")
    if n_features is not None and t.shape[1] != n_features:
        raise ValueError(f"`{name}` must have {n_features} features (columns), got {t.shape[1]}")
    return check_finite(t, name)


def sum_tolerance(dtype: torch.dtype, n_terms: int) -> float:
    """How far from 1 a sum of ``n_terms`` probabilities stored in ``dtype`` may be: 8 n ε, at least 1e-8.

    Rounding each entry to ``dtype`` moves it by up to ε/2 of itself, so the sum of numbers that summed
    to 1 before rounding is within n ε/2 of 1 (float32, K = 3: 1.8e-7; the tolerance is 2.9e-6).

    >>> sum_tolerance(torch.float64, 3), round(sum_tolerance(torch.float32, 3), 9)
    (1e-08, 2.861e-06)
    """
    return max(1e-8, 8 * n_terms * torch.finfo(dtype).eps)


def check_probabilities(p: Any, name: str, *, atol: float | None = None) -> torch.Tensor:
    """Return ``p`` as a 1-D tensor of non-negative numbers summing to 1, or raise.

    ``atol``: how far from 1 the sum may be; by default ``sum_tolerance`` of ``p``'s own dtype.

    >>> check_probabilities(np.array([0.2, 0.3, 0.5], dtype=np.float32), "weights").sum().item()
    1.0
    """
    t = as_tensor(p, name)
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D array of probabilities, got shape {tuple(t.shape)}")
    check_finite(t, name)
    if (t < 0).any():
        raise ValueError(f"`{name}` must be non-negative, got a minimum of {float(t.min()):.4g}")
    total = float(t.double().sum())
    if atol is None:
        atol = sum_tolerance(t.dtype, t.numel())
    if abs(total - 1.0) > atol:
        raise ValueError(f"`{name}` must sum to 1 (within {atol:.2g}), got a sum of {total:.10g}")
    return t
