import pytest
import torch

# the models under test are tiny: one thread is as fast as two and immune to a busy machine
torch.set_num_threads(1)


def _arc(z):
    return torch.cat([2 * torch.sin(1.1 * z), 2 * torch.cos(1.1 * z) - 0.5], -1)


@pytest.fixture
def arc():
    """A decoder for the continuous-mixture tests: z ↦ a point on a circle of radius 2 (lesson 02's arc)."""
    return _arc


@pytest.fixture
def mixture(arc):
    """The arc's continuous mixture with a standard-normal 1-D latent, float64, σ = 0.25."""
    from torch.distributions import Normal

    from vaelab.continuous import ContinuousMixture

    f64 = torch.float64
    return ContinuousMixture(arc, obs_scale=0.25, prior=Normal(torch.tensor(0.0, dtype=f64), torch.tensor(1.0, dtype=f64)))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
