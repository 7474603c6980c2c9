import random

import numpy as np
import pytest
import torch

import vaelab
from vaelab.device import get_device, seed_everything


def test_default_is_best_available(monkeypatch):
    monkeypatch.delenv("VAELAB_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert get_device().type == expected


def test_env_overrides(monkeypatch):
    monkeypatch.setenv("VAELAB_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_explicit_argument_wins_over_env(monkeypatch):
    monkeypatch.setenv("VAELAB_DEVICE", "nonsense")
    assert get_device("cpu") == torch.device("cpu")
    assert get_device(torch.device("cpu")) == torch.device("cpu")


def test_unknown_device_from_env(monkeypatch):
    monkeypatch.setenv("VAELAB_DEVICE", "tpu")
    with pytest.raises(ValueError, match=r"`VAELAB_DEVICE` must name one of cpu, cuda, mps .*got 'tpu'"):
        get_device()


@pytest.mark.parametrize("name", ["gpu", "cuda:x", ""])
def test_unknown_device_argument(name):
    with pytest.raises(ValueError, match="`device` must name one of cpu, cuda, mps"):
        get_device(name if name else " ")


def test_device_of_wrong_type():
    with pytest.raises(TypeError, match="`device` must be a string or torch.device, got int"):
        get_device(0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_cuda():
    with pytest.raises(ValueError, match="no cuda device is available here; use 'cpu'"):
        get_device("cuda")


def test_public_name():
    assert vaelab.get_device is get_device


def test_seed_everything_reproduces_all_generators():
    seed_everything(7)
    a = (torch.rand(3), np.random.rand(3), random.random())
    seed_everything(7)
    b = (torch.rand(3), np.random.rand(3), random.random())
    torch.testing.assert_close(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]


@pytest.mark.parametrize("seed, exc, msg", [(-1, ValueError, "`seed` must be an integer >= 0, got -1"),
                                            (1.5, TypeError, "`seed` must be an integer >= 0, got 1.5")])
def test_seed_everything_rejects_bad_seed(seed, exc, msg):
    with pytest.raises(exc, match=msg):
        seed_everything(seed)
