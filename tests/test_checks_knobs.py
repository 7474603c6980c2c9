import pytest
import torch

from vaelab import checks
from vaelab.checks import ExerciseError


def half_kl(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)


# ------------------------------------------------------------------ KL per dimension


def kl_per_dimension(mu, logvar):
    return half_kl(mu, logvar).mean(0)


def test_kl_per_dimension_accepts_the_reference_and_the_seeds_form(capsys):
    checks.kl_per_dimension(kl_per_dimension)
    checks.kl_per_dimension(lambda mu, logvar: (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean(dim=0))
    assert capsys.readouterr().out.count("Correct: kl_per_dimension passes every check.") == 2


def _in_place(mu, logvar):
    mu.pow_(2)
    return 0.5 * (mu + logvar.exp() - 1 - logvar).mean(0)


@pytest.mark.parametrize("wrong, msg", [
    (lambda mu, logvar: half_kl(mu, logvar).sum(1).mean(), "returned the total KL"),
    (lambda mu, logvar: half_kl(mu, logvar), "returned the KL per example"),
    (lambda mu, logvar: half_kl(mu, logvar).mean(1), r"averaged over the latent dimensions \(dim 1\)"),
    (lambda mu, logvar: half_kl(mu, logvar).sum(0), "summed over the data instead of averaging"),
    (lambda mu, logvar: 2 * half_kl(mu, logvar).mean(0), "factor ½"),
    (lambda mu, logvar: half_kl(mu, 2 * logvar).mean(0), "treats logvar as log σ"),
    (lambda mu, logvar: -half_kl(mu, logvar).mean(0), "sign flipped"),
    (lambda mu, logvar: (0.5 * (logvar.exp() - 1 - logvar)).mean(0), "forgot the mu² term"),
    (lambda mu, logvar: (0.5 * (mu.pow(2) + logvar - 1)).mean(0), "the KL per dimension is off by up to"),
    (_in_place, "changed mu or logvar in place"),
    (lambda mu, logvar: str(half_kl(mu, logvar).mean(0).tolist()), "should be a torch.Tensor .*, got str"),
])
def test_kl_per_dimension_rejects_typical_mistakes(wrong, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.kl_per_dimension(wrong)


def test_kl_per_dimension_reports_a_stub_and_hands_back_the_reference(capsys):
    def stub(mu, logvar):
        raise NotImplementedError("Exercise: write the body of kl_per_dimension")

    assert checks.kl_per_dimension(stub) is checks.kl_per_dimension.reference
    assert "not implemented yet" in capsys.readouterr().err


# ------------------------------------------------------------------ active units


def active_units(mu, threshold=0.01):
    return int((mu.var(dim=0) > threshold).sum())


def test_active_units_accepts_the_reference_and_a_tensor_count(capsys):
    checks.active_units(active_units)
    checks.active_units(lambda mu, threshold=0.01: (mu.var(0, correction=0) > threshold).sum())
    assert capsys.readouterr().out.count("Correct: active_units passes every check.") == 2


@pytest.mark.parametrize("wrong, msg", [
    (lambda mu, threshold=0.01: int((mu.var(1) > threshold).sum()), r"variance over the latent dimensions \(dim 1\)"),
    (lambda mu, threshold=0.01: int((mu.mean(0).abs() > threshold).sum()), "thresholded the mean of mu"),
    (lambda mu, threshold=0.01: int((mu.std(0) > threshold).sum()), "thresholded the standard deviation"),
    (lambda mu, threshold=0.01: mu.var(0) > threshold, "return the number of active units"),
    (lambda mu, threshold=0.01: int((mu.var(0) > 0.01).sum()), "ignores the `threshold` argument"),
    (lambda mu, threshold=0.01: int((mu.var(0) < threshold).sum()), "found 4 active units where there are 2"),
    (lambda mu, threshold=0.01: "two", "the number of active units .*got str"),
])
def test_active_units_rejects_typical_mistakes(wrong, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.active_units(wrong)


# ------------------------------------------------------------------ free bits


def free_bits_kl(kl, free_bits):
    return torch.clamp(kl.mean(dim=0), min=free_bits).sum()


def test_free_bits_accepts_the_reference_and_a_where_form(capsys):
    checks.free_bits_kl(free_bits_kl)

    def with_where(kl, free_bits):
        m = kl.mean(0)
        return torch.where(m < free_bits, torch.full_like(m, free_bits), m).sum()

    checks.free_bits_kl(with_where)
    assert capsys.readouterr().out.count("Correct: free_bits_kl passes every check.") == 2


@pytest.mark.parametrize("wrong, msg", [
    (lambda kl, fb: kl.clamp(min=fb).mean(0).sum(), "floored each example's KL"),
    (lambda kl, fb: kl.mean(0).sum().clamp(min=fb), "floored the total KL"),
    (lambda kl, fb: kl.mean(0).clamp(max=fb).sum(), r"capped the KL at λ \(min instead of max\)"),
    (lambda kl, fb: kl.mean(0).sum(), "ignores free_bits"),
    (lambda kl, fb: kl.sum(0).clamp(min=fb).sum(), "summed over the batch"),
    (lambda kl, fb: kl.mean(0).clamp(min=fb), "returned one number per dimension"),
    (lambda kl, fb: free_bits_kl(kl, fb).detach(), "carries no gradient"),
    (lambda kl, fb: free_bits_kl(kl, fb).tolist(), "should return a torch tensor"),
    (lambda kl, fb: torch.where(kl.mean(0) < fb, kl.mean(0) + (fb - kl.mean(0)).detach(), kl.mean(0)).sum(),
     "below the floor still get a gradient"),
    (lambda kl, fb: kl.mean(0).clamp(min=fb).sum() * 1.1, "the free-bits KL is off by up to"),
])
def test_free_bits_rejects_typical_mistakes(wrong, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.free_bits_kl(wrong)
