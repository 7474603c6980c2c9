import math

import pytest
import torch

from vaelab import checks
from vaelab.checks import ExerciseError


# ---------------------------------------------------------------- the dequantization correction

def log_pmf_reference(log_density, n_features, n_levels):
    return log_density - n_features * math.log(n_levels)


def test_dequantized_log_pmf_accepts_the_reference(capsys):
    checks.dequantized_log_pmf(log_pmf_reference)
    assert capsys.readouterr().out == "Correct: dequantized_log_pmf passes every check.\n"


@pytest.mark.parametrize("wrong, msg", [
    (lambda lp, d, L: lp + d * math.log(L), r"you added D·log L"),
    (lambda lp, d, L: lp - d * math.log(L - 1), r"you used L − 1 levels"),
    (lambda lp, d, L: lp - math.log(L), r"you subtracted log L once"),
    (lambda lp, d, L: lp - d * math.log2(L), r"you used log base 2"),
    (lambda lp, d, L: lp, r"log P\(v\) for D = 64, L = 17 is off by up to 181"),
    (lambda lp, d, L: "no", r"should be a torch.Tensor \(or numbers\), got str"),
])
def test_dequantized_log_pmf_names_the_mistake(wrong, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.dequantized_log_pmf(wrong)


# ---------------------------------------------------------------- a Gaussian mixture's parameter count

def count_reference(n_components, n_features, covariance_type):
    k, d = n_components, n_features
    covariances = k * d * (d + 1) // 2 if covariance_type == "full" else k * d
    return (k - 1) + k * d + covariances


def test_gmm_n_parameters_accepts_the_reference(capsys):
    checks.gmm_n_parameters(count_reference)
    checks.gmm_n_parameters(lambda k, d, c: torch.tensor(count_reference(k, d, c)))  # a 0-d tensor is fine too
    assert capsys.readouterr().out.count("Correct: gmm_n_parameters passes every check.") == 2


@pytest.mark.parametrize("wrong, msg", [
    (lambda k, d, c: count_reference(k, d, c) + 1, r"\(K = 3, D = 2, 'full'\): you counted K weights; they sum to 1"),
    (lambda k, d, c: count_reference(k, d, c) - k * d, r"you are K·D short: you left out the means"),
    (lambda k, d, c: (k - 1) + k * d + (k * d * d if c == "full" else k * d), r"you counted D² numbers per covariance; it is symmetric"),
    (lambda k, d, c: k + k * d + (k * d * d if c == "full" else k * d), r"D² numbers per covariance \(it is symmetric.*and K weights"),
    (lambda k, d, c: (k - 1) + k * d + (k * d * (d - 1) // 2 if c == "full" else k * d), r"K·D short: .* the diagonal included"),
    (lambda k, d, c: (k - 1) + k * d + k * d * (d + 1) // 2, r"\(K = 5, D = 3, 'diag'\): with covariance_type='diag' each covariance is a diagonal"),
    (lambda k, d, c: 7, r"expected 17 parameters, got 7"),
    (lambda k, d, c: 16.5, r"the number of parameters should be a whole number, got 16.5"),
])
def test_gmm_n_parameters_names_the_mistake(wrong, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.gmm_n_parameters(wrong)


# ---------------------------------------------------------------- the rate of a finite mixture

def rate_reference(resp, weights):
    return (torch.xlogy(resp, resp) - torch.xlogy(resp, weights)).sum(1).mean() / math.log(2)


def test_mixture_rate_bits_accepts_the_reference(capsys):
    checks.mixture_rate_bits(rate_reference)
    checks.mixture_rate_bits(lambda r, w: float(rate_reference(r, w)))  # a float is fine too
    assert capsys.readouterr().out.count("Correct: mixture_rate_bits passes every check.") == 2


@pytest.mark.parametrize("wrong, msg", [
    (lambda r, w: rate_reference(r, w) * math.log(2), r"that is the rate in nats; divide by log 2"),
    (lambda r, w: rate_reference(r, w) * len(r), r"you summed over examples"),
    (lambda r, w: (w * (w / r).log()).sum(1).mean() / math.log(2), r"the KL is the wrong way round"),
    (lambda r, w: -(r * r.log()).sum(1).mean() / math.log(2), r"you computed the entropy of the responsibilities"),
    (lambda r, w: (r * (r / w).log()).sum(1).mean() / math.log(10), r"you used log base 10"),
    (lambda r, w: (r * (r / w).log()).sum(1).mean() / math.log(2), r"got NaN when a responsibility is exactly 0"),
    (lambda r, w: (r * (r / w).log2()).sum(1) , r"return one number, the average over examples; got shape \(6,\)"),
])
def test_mixture_rate_bits_names_the_mistake(wrong, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.mixture_rate_bits(wrong)


@pytest.mark.parametrize("wrong, msg", [
    (lambda lp, d, L: (lp - d * math.log(L)) / math.log(2), r"the result is in bits"),
    (lambda lp, d, L: lp / math.log(2) - d * math.log(L), r"converted the log density to bits"),
])
def test_dequantized_log_pmf_in_bits_is_named(wrong, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.dequantized_log_pmf(wrong)
