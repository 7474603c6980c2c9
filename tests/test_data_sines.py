"""vaelab.data.sines, the toy time series of lesson 05."""
import numpy as np
import pytest
import torch

from vaelab import data


def test_shape_dtype_and_seed():
    x = data.sines(50, 30, seed=3)
    assert x.shape == (50, 30, 1) and x.dtype == torch.float32 and torch.isfinite(x).all()
    torch.testing.assert_close(x, data.sines(50, 30, seed=3))
    assert not torch.equal(x, data.sines(50, 30, seed=4))


def test_without_noise_each_series_is_one_sine_of_the_documented_ranges():
    from scipy.optimize import minimize_scalar

    x = data.sines(200, 64, noise=0.0)[..., 0].double().numpy()  # (n, T)
    assert np.abs(x).max() <= 1.5 + 1e-6
    t = np.arange(64) / 64

    def fit(series, f):  # least squares a·sin + b·cos at frequency f: (max residual, amplitude)
        basis = np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)], 1)
        coef, *_ = np.linalg.lstsq(basis, series, rcond=None)
        return np.abs(basis @ coef - series).max(), np.hypot(*coef)

    # one sine a·sin(2π f t + φ) with f in [1, 3] cycles per series and a in [0.5, 1.5] fits each exactly
    for series in x[:20]:
        coarse = min(np.linspace(1.0, 3.0, 401), key=lambda f: fit(series, f)[0])
        f = minimize_scalar(lambda f: fit(series, f)[0], bounds=(max(1.0, coarse - 0.01), min(3.0, coarse + 0.01)),
                            method="bounded", options={"xatol": 1e-9}).x
        residual, amplitude = fit(series, f)
        assert residual < 1e-4 and 0.5 - 1e-4 <= amplitude <= 1.5 + 1e-4


def test_noise_is_added_with_the_requested_standard_deviation():
    clean, noisy = data.sines(400, 50, noise=0.0, seed=1), data.sines(400, 50, noise=0.2, seed=1)
    residual = (noisy - clean).flatten()  # the same a, f, φ: only the noise differs
    assert abs(residual.std().item() - 0.2) < 0.005 and abs(residual.mean().item()) < 0.005


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(n=0, length=10), ValueError, "`n` must be an integer >= 1, got 0"),
    (dict(n=5, length=1), ValueError, "`length` must be an integer >= 2, got 1"),
    (dict(n=5, length=2.5), TypeError, "`length` must be an integer >= 2, got 2.5"),
    (dict(n=5, length=10, noise=-0.1), ValueError, "`noise` must be a finite number >= 0, got -0.1"),
    (dict(n=5, length=10, seed=-1), ValueError, "`seed` must be an integer >= 0, got -1"),
])
def test_bad_input(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        data.sines(**kwargs)
