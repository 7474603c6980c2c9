"""vaelab.about: a trained number printed with "≈", checked against the band its lesson states."""
import configparser
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from vaelab import about
from vaelab.trained import OutsideBand, Trained

ROOT = Path(__file__).resolve().parents[1]


def sanitize(text: str) -> str:
    """What nbval does to an output with notebooks/sanitize.cfg."""
    config = configparser.ConfigParser()
    config.read(ROOT / "notebooks" / "sanitize.cfg", encoding="utf-8")
    for section in config.sections():
        text = re.sub(config[section]["regex"], config[section]["replace"], text)
    return text


def test_prints_the_value_with_a_mark_and_default_decimals_from_the_tolerance():
    assert f"{about(-24.384, -24.4, 0.3)}" == "≈-24.38"
    assert f"{about(0.8971, 0.9, 0.01)}" == "≈0.897"
    assert f"{about(123.4, 120, 5)}" == "≈123.4"
    assert f"{about(torch.tensor(-3.0), -3.0, 0.5):.1f}" == "≈-3.0"
    assert f"{about(np.float32(2.5), 2.5, 0.1, spec='.1f')}" == "≈2.5"


def test_keeps_the_field_width_in_tables():
    assert f"{about(-24.38, -24.4, 0.3):8.2f}" == " ≈-24.38"
    assert len(f"{about(-24.38, -24.4, 0.3):8.2f}") == len(f"{-24.38:8.2f}")
    assert isinstance(about(1.0, 1.0, 0.1), Trained) and about(1.0, 1.0, 0.1) == 1.0


def test_outside_the_band_raises_under_the_tests(monkeypatch):
    monkeypatch.setenv("VAELAB_STRICT", "1")
    with pytest.raises(OutsideBand, match=r"held-out ELBO = -25.00 is outside the band -24.40 ± 0.3"):
        about(-25.0, -24.4, 0.3, what="held-out ELBO")
    with pytest.raises(OutsideBand):
        about(float("nan"), 0.0, 1.0)
    about(-24.1, -24.4, 0.3)  # on the edge: inside


def test_outside_the_band_only_warns_in_a_learners_run(monkeypatch):
    monkeypatch.delenv("VAELAB_STRICT", raising=False)
    with pytest.warns(UserWarning, match="your run differs from the text"):
        value = about(-25.0, -24.4, 0.3)
    assert float(value) == -25.0


def test_sequences_are_checked_element_by_element(monkeypatch):
    monkeypatch.setenv("VAELAB_STRICT", "1")
    assert [f"{v}" for v in about([0.91, 0.88], [0.9, 0.9], 0.05)] == ["≈0.910", "≈0.880"]
    with pytest.raises(OutsideBand, match=r"acc\[1\]"):
        about(torch.tensor([0.91, 0.70]), 0.9, 0.05, what="acc")
    with pytest.raises(ValueError, match="`expect` must have one value per element"):
        about([1.0, 2.0], [1.0], 0.1)


@pytest.mark.parametrize("tol", [0, -1, float("inf"), float("nan")])
def test_tolerance_must_be_positive_and_finite(tol):
    with pytest.raises(ValueError, match="`tol` must be a finite number > 0"):
        about(1.0, 1.0, tol)


def test_bad_values_are_named():
    with pytest.raises(TypeError, match="`value` must be a real number"):
        about("1.0", 1.0, 0.1)
    with pytest.raises(TypeError, match="`expect`"):
        about(1.0, None, 0.1)


def test_the_sanitizer_masks_trained_numbers_only():
    assert sanitize("held-out ELBO ≈-24.38 nats, K = 16, exact -1.607") == "held-out ELBO TRAINED nats, K = 16, exact -1.607"
    assert sanitize(f"{about(-24.38, -24.4, 0.3):8.2f} | {about(1234.5, 1230, 10)}") == " TRAINED | TRAINED"
    assert sanitize("≈ 3e-05 and ≈−2.5") == "TRAINED and TRAINED"
