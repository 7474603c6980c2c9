"""Numbers that come out of training, printed with the band they are expected to stay in.

A formula gives the same digits on every machine; an optimiser does not: another CPU's kernels, a
GPU, or another seed move an ELBO in its second decimal. A lesson therefore prints a trained number
through :func:`about`, which states the value the lesson's text quotes and the tolerance that is
the size of its run-to-run variation::

    print(f"held-out ELBO {about(elbo, -24.4, 0.3)} nats")     # -> held-out ELBO ≈-24.38 nats

The printed number carries a "≈": nbval's sanitizer (``notebooks/sanitize.cfg``) masks "≈<number>",
so the stored digits are not compared; instead :func:`about` itself checks the band, and raises
:class:`OutsideBand` when the value leaves it — under the tests (``VAELAB_STRICT=1``, set by the
root ``conftest.py`` and by ``make lessons``). A learner's own run is never stopped: out of band it
prints a visible note instead. Deterministic outputs (formulas, closed forms, counts) are printed
plainly and compared digit for digit.
"""
from __future__ import annotations

import math
import numbers
import os
import warnings
from typing import Sequence

__all__ = ["about", "Trained", "OutsideBand", "strict"]

MARK = "≈"


class OutsideBand(AssertionError):
    """A trained number left the band its lesson states (a material change, not run-to-run noise)."""


def strict() -> bool:
    """True when a value outside its band must raise (``VAELAB_STRICT`` set to 1 by the tests)."""
    return os.environ.get("VAELAB_STRICT", "") not in ("", "0")


def _default_spec(tol: float) -> str:
    # enough decimals to show the band: tol 0.3 -> 2 decimals, tol 0.01 -> 3, tol 2 -> 1
    decimals = max(0, 1 - math.floor(math.log10(tol))) if tol > 0 else 3
    return f".{decimals}f"


class Trained(float):
    """A float that formats with a leading "≈" (``f"{value:.2f}"`` -> "≈-24.38"), keeping the field width."""

    spec: str

    def __new__(cls, value: float, spec: str):
        self = super().__new__(cls, value)
        self.spec = spec
        return self

    def __format__(self, spec: str) -> str:
        text = format(float(self), spec or self.spec)
        body = text.lstrip(" ")
        pad = len(text) - len(body)
        return " " * max(0, pad - 1) + MARK + body

    def __str__(self) -> str:
        return format(self, "")

    __repr__ = __str__


def _as_float(value, name: str) -> float:
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # a 0-d tensor or numpy scalar
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number (or a 0-d tensor), got {type(value).__name__}")
    return float(value)


def about(value, expect, tol: float, *, what: str = "value", spec: str | None = None):
    """``value`` as a :class:`Trained` number, checked to lie within ``expect ± tol``.

    Parameters
    ----------
    value : a real number or 0-d tensor (or a sequence of them, checked element by element)
    expect : the value the lesson quotes (a number, or a sequence as long as ``value``)
    tol : the half-width of the band: about the run-to-run variation of ``value`` (> 0)
    what : names the number in the message when it leaves its band
    spec : format of the printed number (default: enough decimals to show ``tol``)

    >>> print(f"ELBO {about(-24.38, -24.4, 0.3)} nats")
    ELBO ≈-24.38 nats
    >>> about([0.91, 0.88], [0.9, 0.9], 0.05)
    [≈0.910, ≈0.880]
    """
    tol = _as_float(tol, "tol")
    if not tol > 0 or not math.isfinite(tol):
        raise ValueError(f"`tol` must be a finite number > 0, got {tol}")
    if isinstance(value, (str, bytes)):
        raise TypeError(f"`value` must be a real number (or a 0-d tensor), got {type(value).__name__}")
    if isinstance(value, Sequence) or (hasattr(value, "ndim") and getattr(value, "ndim") > 0):
        values = [v for v in value]
        expects = list(expect) if isinstance(expect, Sequence) or hasattr(expect, "__len__") else [expect] * len(values)
        if len(expects) != len(values):
            raise ValueError(f"`expect` must have one value per element of `value` ({len(values)}), got {len(expects)}")
        return [about(v, e, tol, what=f"{what}[{i}]", spec=spec) for i, (v, e) in enumerate(zip(values, expects))]
    value, expect = _as_float(value, "value"), _as_float(expect, "expect")
    spec = spec or _default_spec(tol)
    if not (abs(value - expect) <= tol):  # also catches NaN
        message = (f"{what} = {value:{spec}} is outside the band {expect:{spec}} ± {tol:g} this lesson states: "
                   "more than run-to-run variation, so what the lesson shows has changed")
        if strict():
            raise OutsideBand(message)
        warnings.warn(message + " (your run differs from the text)", stacklevel=2)
    return Trained(value, spec)
