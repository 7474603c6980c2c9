import math

import pytest
import torch

from vaelab import checks
from vaelab.checks import ExerciseError


# ------------------------------------------------------------------ Monte Carlo log p(x)

def log_lik(x, z, decoder, obs_scale):
    """log N(x_b; f(z_s), σ²I) for every pair, as a student would write it: (B, S)."""
    means = decoder(z)
    return torch.distributions.Normal(means, obs_scale).log_prob(x[:, None, :]).sum(-1)


def mc_reference(x, z, decoder, obs_scale):
    return torch.logsumexp(log_lik(x, z, decoder, obs_scale), dim=1) - math.log(z.shape[0])


def mc_mean_of_logs(x, z, decoder, obs_scale):
    return log_lik(x, z, decoder, obs_scale).mean(1)


def mc_naive_exp(x, z, decoder, obs_scale):
    return log_lik(x, z, decoder, obs_scale).exp().mean(1).log()


def mc_no_log_n(x, z, decoder, obs_scale):
    return torch.logsumexp(log_lik(x, z, decoder, obs_scale), dim=1)


def mc_no_constant(x, z, decoder, obs_scale):
    sq = -0.5 * ((x[:, None, :] - decoder(z)) ** 2).sum(-1) / obs_scale**2
    return torch.logsumexp(sq, dim=1) - math.log(z.shape[0])


def mc_variance_as_scale(x, z, decoder, obs_scale):
    return mc_reference(x, z, decoder, math.sqrt(obs_scale))


def mc_wrong_dim(x, z, decoder, obs_scale):
    return torch.logsumexp(log_lik(x, z, decoder, obs_scale), dim=0) - math.log(x.shape[0])


def mc_not_written(x, z, decoder, obs_scale):
    raise NotImplementedError("Exercise: write the body of mc_log_prob")


def test_mc_log_prob_accepts_the_reference(capsys):
    checks.mc_log_prob(mc_reference)
    assert capsys.readouterr().out.strip() == "Correct: mc_log_prob passes every check."


@pytest.mark.parametrize("fn, message", [
    (mc_mean_of_logs, r"you averaged the log-likelihoods \(mean of the logs\)"),
    (mc_naive_exp, r"exp\(\) of that underflows to 0 .* use torch.logsumexp"),
    (mc_no_log_n, r"off by exactly log S = log 40: .* forgot to divide by the number of samples"),
    (mc_no_constant, r"normalising constant −\(D/2\) log\(2πσ²\) is missing"),
    (mc_variance_as_scale, r"obs_scale is the standard deviation σ; the variance is σ²"),
    (mc_wrong_dim, r"should return one number per row of x, shape \(5,\), got \(40,\)"),
    (lambda x, z, d, s: None, r"returned None"),
    (lambda x, z, d, s: mc_reference(x, z, d, s) + 0.1, r"log p̂\(x\) is off by up to 0.1"),
])
def test_mc_log_prob_names_the_mistake(fn, message):
    with pytest.raises(ExerciseError, match=message):
        checks.mc_log_prob(fn)


# ------------------------------------------------------------------ pPCA covariance

def cov_reference(W, obs_scale):
    return W @ W.T + obs_scale**2 * torch.eye(W.shape[0], dtype=W.dtype)


def test_ppca_covariance_accepts_the_reference(capsys):
    checks.ppca_covariance(cov_reference)
    assert capsys.readouterr().out.strip() == "Correct: ppca_covariance passes every check."


@pytest.mark.parametrize("fn, message", [
    (lambda W, s: W @ W.T, r"the noise σ²I is missing"),
    (lambda W, s: W.T @ W + s**2 * torch.eye(W.shape[1], dtype=W.dtype), r"you computed WᵀW \(shape \(2, 2\)\)"),
    (lambda W, s: W.T @ W, r"you computed WᵀW"),
    (lambda W, s: W @ W.T + s * torch.eye(W.shape[0], dtype=W.dtype), r"you added σI"),
    (lambda W, s: 2 * cov_reference(W, s), r"the covariance is off by up to"),
])
def test_ppca_covariance_names_the_mistake(fn, message):
    with pytest.raises(ExerciseError, match=message):
        checks.ppca_covariance(fn)


def test_ppca_covariance_catches_wt_w_on_a_square_matrix():
    calls = []

    def transposed_only_when_square(W, s):
        calls.append(W.shape)
        M = W.T @ W if W.shape[0] == W.shape[1] else W @ W.T
        return M + s**2 * torch.eye(W.shape[0], dtype=W.dtype)

    with pytest.raises(ExerciseError, match=r"you computed WᵀW \(shape \(3, 3\)\)"):
        checks.ppca_covariance(transposed_only_when_square)
    assert calls == [(4, 2), (3, 3)]


def test_checkers_do_not_let_a_student_mutate_the_cases():
    def mutating(x, z, decoder, obs_scale):
        out = mc_reference(x, z, decoder, obs_scale)
        x.zero_()
        z.zero_()
        return out

    checks.mc_log_prob(mutating)  # later cases are rebuilt, so this still passes


def test_mc_log_prob_without_the_sum_over_coordinates():
    def per_coordinate(x, z, decoder, obs_scale):
        log_lik = torch.distributions.Normal(decoder(z), obs_scale).log_prob(x[:, None, :])  # (B, S, D): no .sum(-1)
        return torch.logsumexp(log_lik, dim=1) - math.log(z.shape[0])
    with pytest.raises(ExerciseError, match=r"sum of the D one-dimensional log-densities. Sum over the last axis") as e:
        checks.mc_log_prob(per_coordinate)
    assert "Reduce over the samples" not in str(e.value)


def test_ppca_covariance_with_the_identity_of_the_latent_size():
    with pytest.raises(ExerciseError, match=r"not torch.eye\(L\)"):
        checks.ppca_covariance(lambda W, s: W @ W.T + s**2 * torch.eye(W.shape[1], dtype=W.dtype))


# ------------------------------------------------------------------ pPCA posterior (the E-step of pPCA)

def post_reference(x, W, b, obs_scale):
    M = W.T @ W + obs_scale**2 * torch.eye(W.shape[1], dtype=W.dtype)
    return torch.linalg.solve(M, W.T @ (x - b).T).T, obs_scale**2 * torch.linalg.inv(M)


def test_ppca_posterior_accepts_the_reference_and_returns_it(capsys):
    returned = checks.ppca_posterior(post_reference)
    assert returned is post_reference
    assert capsys.readouterr().out.strip() == "Correct: ppca_posterior passes every check."


def _M(W, s):
    return W.T @ W + s**2 * torch.eye(W.shape[1], dtype=W.dtype)


@pytest.mark.parametrize("fn, message", [
    (lambda x, W, b, s: (post_reference(x, W, b, s)[0], torch.linalg.inv(_M(W, s))), r"you returned M⁻¹ \(the σ² factor is missing\)"),
    (lambda x, W, b, s: (post_reference(x, W, b, s)[0], s**2 * _M(W, s)), r"the posterior covariance is its\s+inverse"),
    (lambda x, W, b, s: (post_reference(x, W, b, s)[0], W @ W.T + s**2 * torch.eye(4, dtype=W.dtype)), r"a covariance over x"),
    (lambda x, W, b, s: ((x - b) @ W, post_reference(x, W, b, s)[1]), r"without the M⁻¹"),
    (lambda x, W, b, s: post_reference(x, W, torch.zeros_like(b), s), r"the mean ignores b"),
    (lambda x, W, b, s: (x - b, post_reference(x, W, b, s)[1]), r"the mean should be over z"),
    (lambda x, W, b, s: post_reference(x, W, b, s)[0], r"return two things, \(mean, cov\)"),
    (lambda x, W, b, s: (post_reference(x, W, b, s)[0] + 0.1, post_reference(x, W, b, s)[1]), r"the posterior mean is off by up to 0.1"),
])
def test_ppca_posterior_names_the_mistake(fn, message):
    with pytest.raises(ExerciseError, match=message):
        checks.ppca_posterior(fn)
