"""vaelab.diagnostics given numpy arrays: every entry takes them (only activity did not)."""
import numpy as np
import torch

from vaelab import diagnostics
from vaelab.models import VAE


def test_activity_takes_a_numpy_array():
    """It raised numpy's "_var() got an unexpected keyword argument 'dim'"."""
    mu = np.array([[0.0, 1.0], [2.0, 1.0]])
    torch.testing.assert_close(diagnostics.activity(mu), torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_the_data_entries_take_numpy_arrays():
    torch.manual_seed(0)
    model = VAE.mlp(4, 2, hidden=(3,))
    X = np.random.RandomState(0).rand(10, 4)
    mu, logvar = diagnostics.posterior_params(model, X)
    assert mu.shape == (10, 2) and diagnostics.kl_per_dimension(model, X).shape == (2,)
    assert isinstance(diagnostics.active_units(model, X), int)
    assert diagnostics.gaussian_elbo(model, X, mu.numpy(), logvar.numpy()).shape == (10,)
    assert np.isfinite(diagnostics.independent_pixels(X, X))
