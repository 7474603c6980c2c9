"""The lesson 01 checkers accept correct answers and name each typical mistake."""
import math

import pytest
import torch

from vaelab import checks, gmm
from vaelab.checks import ExerciseError


def log_gauss(x, means, covariances):
    """log N(x_n; μ_k, Σ_k) of shape (N, K), written out as a student would."""
    D = x.shape[1]
    diff = x[:, None, :] - means[None]  # (N, K, D)
    maha = torch.einsum("nki,kij,nkj->nk", diff, torch.linalg.inv(covariances), diff)
    return -0.5 * (D * math.log(2 * math.pi) + torch.logdet(covariances) + maha)


# ---------------------------------------------------------------- E-step

def e_step_reference(x, weights, means, covariances):
    log_joint = torch.log(weights) + log_gauss(x, means, covariances)
    return torch.exp(log_joint - torch.logsumexp(log_joint, dim=1, keepdim=True))


def test_e_step_accepts_correct_answers(capsys):
    checks.e_step(e_step_reference)
    checks.e_step(lambda x, w, m, c: torch.softmax(torch.log(w) + log_gauss(x, m, c), dim=1).numpy())  # numpy is fine
    assert capsys.readouterr().out == "Correct: e_step passes every check.\nCorrect: e_step passes every check.\n"


def _unnormalised(x, w, m, c):
    return w * log_gauss(x, m, c).exp()


def _naive(x, w, m, c):
    joint = w * log_gauss(x, m, c).exp()
    return joint / joint.sum(1, keepdim=True)


def _not_implemented(*args):
    raise NotImplementedError("Exercise 2")


@pytest.mark.parametrize("fn, msg", [
    (lambda x, w, m, c: None, r"returned None; did you forget `return`"),
    (lambda x, w, m, c: 1 / 0, r"raised ZeroDivisionError"),
    (lambda x, w, m, c: e_step_reference(x, w, m, c).T, r"\(n_components, n_samples\)"),
    (lambda x, w, m, c: e_step_reference(x, w, m, c)[:, :2], r"should have shape \(n_samples, n_components\) = \(8, 3\)"),
    (_unnormalised, r"unnormalised .* divide each row by its sum"),
    (lambda x, w, m, c: _unnormalised(x, w, m, c) / _unnormalised(x, w, m, c).sum(0), r"normalised over points"),
    (lambda x, w, m, c: torch.softmax(log_gauss(x, m, c), dim=1), r"you forgot the weights"),
    (lambda x, w, m, c: torch.softmax(torch.log(w) + log_gauss(x, m, torch.linalg.inv(c)), dim=1), r"inverse covariance"),
    (lambda x, w, m, c: torch.softmax(torch.log(w) + log_gauss(x, m, c) + 0.5 * torch.logdet(c), dim=1), r"normaliser of each Gaussian is missing"),
    (_naive, r"NaN for points far from every component.*torch.logsumexp"),
    (lambda x, w, m, c: e_step_reference(x, w, m, c) * 0.9 + 0.1 / 3, r"resp is off by up to"),
])
def test_e_step_names_the_mistake(fn, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.e_step(fn)


def test_naive_e_step_is_right_on_ordinary_points():
    """The exp-then-normalise version is only wrong far away, which is why the checker tests there."""
    x, w, m, c = torch.randn(5, 2, dtype=torch.float64), torch.tensor([0.5, 0.5], dtype=torch.float64), \
        torch.zeros(2, 2, dtype=torch.float64), torch.eye(2, dtype=torch.float64).repeat(2, 1, 1)
    torch.testing.assert_close(_naive(x, w, m, c), gmm.e_step(x, w, m, c))


# ---------------------------------------------------------------- M-step

def m_step_reference(x, resp, reg_covar):
    nk = resp.sum(0) + 10 * torch.finfo(resp.dtype).eps  # (K,)
    weights = nk / x.shape[0]
    means = resp.T @ x / nk[:, None]
    diff = x[None] - means[:, None]  # (K, N, D)
    covariances = torch.einsum("nk,kni,knj->kij", resp, diff, diff) / nk[:, None, None]
    return weights, means, covariances + reg_covar * torch.eye(x.shape[1], dtype=x.dtype)


def _m_variant(weights=None, means=None, cov=None, eps=True):
    """The reference with one part swapped for a mistake; each part gets (x, resp, reg_covar, nk, means)."""
    def fn(x, resp, reg_covar):
        nk = resp.sum(0) + (10 * torch.finfo(resp.dtype).eps if eps else 0.0)
        w = weights(x, resp, nk) if weights else nk / x.shape[0]
        mu = means(x, resp, nk) if means else resp.T @ x / nk[:, None]
        diff = x[None] - mu[:, None]
        scatter = torch.einsum("nk,kni,knj->kij", resp, diff, diff)
        eye = torch.eye(x.shape[1], dtype=x.dtype)
        sigma = cov(x, resp, nk, mu, scatter, reg_covar, eye) if cov else scatter / nk[:, None, None] + reg_covar * eye
        return w, mu, sigma
    return fn


def test_m_step_accepts_correct_answers(capsys):
    checks.m_step(m_step_reference)
    checks.m_step(lambda x, resp, reg_covar: gmm.m_step(x, resp, reg_covar=reg_covar))
    assert capsys.readouterr().out.count("Correct: m_step passes every check.") == 2


def _hard_means(x, resp, nk):
    hard = torch.nn.functional.one_hot(resp.argmax(1), resp.shape[1]).to(x.dtype)
    return hard.T @ x / hard.sum(0).clamp_min(1)[:, None]


def _global_centre(x, resp, nk, mu, scatter, reg, eye):
    c = x - x.mean(0)
    return torch.einsum("nk,ni,nj->kij", resp, c, c) / nk[:, None, None] + reg * eye


@pytest.mark.parametrize("fn, msg", [
    (lambda x, resp, reg: m_step_reference(x, resp, reg)[:2], r"should return three things"),
    (lambda x, resp, reg: (*m_step_reference(x, resp, reg)[:2], m_step_reference(x, resp, reg)[2][0]), r"covariances should have shape \(3, 2, 2\), got \(2, 2\)"),
    (_m_variant(weights=lambda x, resp, nk: nk), r"weights are N_k .* divide by the number of points N"),
    (_m_variant(weights=lambda x, resp, nk: torch.full_like(nk, 1 / 3)), r"not kept uniform"),
    (_m_variant(means=lambda x, resp, nk: resp.T @ x), r"divide each by N_k to get an average"),
    (_m_variant(means=lambda x, resp, nk: resp.T @ x / x.shape[0]), r"means divided by N"),
    (_m_variant(means=_hard_means), r"hard \(argmax\) assignments"),
    (_m_variant(means=lambda x, resp, nk: x.mean(0).expand(resp.shape[1], -1)), r"plain data mean"),
    (_m_variant(cov=lambda x, resp, nk, mu, s, reg, eye: s / nk[:, None, None]), r"you forgot reg_covar"),
    (_m_variant(cov=lambda x, resp, nk, mu, s, reg, eye: s / (nk - 1)[:, None, None] + reg * eye), r"divided by N_k − 1 \(the unbiased"),
    (_m_variant(cov=lambda x, resp, nk, mu, s, reg, eye: s / nk[:, None, None] + reg), r"diagonal only"),
    (_m_variant(cov=lambda x, resp, nk, mu, s, reg, eye: s / x.shape[0] + reg * eye), r"covariances: you divided by N;"),
    (_m_variant(cov=lambda x, resp, nk, mu, s, reg, eye: s + reg * eye), r"forgot to divide the weighted scatter by N_k"),
    (_m_variant(cov=lambda x, resp, nk, mu, s, reg, eye: torch.einsum("kni,knj->kij", x[None] - mu[:, None], x[None] - mu[:, None]) / nk[:, None, None] + reg * eye),
     r"weighted by its responsibility"),
    (_m_variant(cov=_global_centre), r"overall data mean"),
    (_m_variant(eps=False), r"no responsibility at all \(N_k = 0\).*10 \* torch.finfo"),
])
def test_m_step_names_the_mistake(fn, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.m_step(fn)


# ---------------------------------------------------------------- log-likelihood

def log_likelihood_reference(x, weights, means, covariances):
    return torch.logsumexp(torch.log(weights) + log_gauss(x, means, covariances), dim=1)


def test_log_likelihood_accepts_correct_answers(capsys):
    checks.log_likelihood(log_likelihood_reference)
    checks.log_likelihood(lambda x, w, m, c: torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(w), torch.distributions.MultivariateNormal(m, c)).log_prob(x))
    assert capsys.readouterr().out.count("Correct: log_likelihood passes every check.") == 2


@pytest.mark.parametrize("fn, msg", [
    (lambda x, w, m, c: log_likelihood_reference(x, w, m, c).sum(), r"returned sum over the points; return one log p\(x_n\) per row"),
    (lambda x, w, m, c: log_likelihood_reference(x, w, m, c).mean(), r"returned mean over the points"),
    (lambda x, w, m, c: log_likelihood_reference(x, w, m, c)[:, None], r"should have shape \(n_samples,\) = \(8,\), got \(8, 1\)"),
    (lambda x, w, m, c: (w * log_gauss(x, m, c).exp()).sum(1), r"you returned p\(x_n\), not log p\(x_n\)"),
    (lambda x, w, m, c: torch.logsumexp(log_gauss(x, m, c), 1), r"you forgot the weights"),
    (lambda x, w, m, c: torch.logsumexp(log_gauss(x, m, c), 1) - math.log(3), r"equal weights 1/K"),
    (lambda x, w, m, c: (w * log_gauss(x, m, c)).sum(1), r"log of a sum is not the sum of logs.*Jensen"),
    (lambda x, w, m, c: (torch.log(w) + log_gauss(x, m, c)).sum(1), r"summed log π_k \+ log N over components"),
    (lambda x, w, m, c: (torch.log(w) + log_gauss(x, m, c)).max(1).values, r"only the most likely component"),
    (lambda x, w, m, c: torch.logsumexp(torch.log(w) + log_gauss(x, m, c) + math.log(2 * math.pi), 1), r"log 2π normalising constant"),
    (lambda x, w, m, c: torch.logsumexp(torch.log(w) + log_gauss(x, m, c) - 0.5 * torch.logdet(c), 1), r"log det Σ_k is not halved"),
    (lambda x, w, m, c: torch.logsumexp(torch.log(w) + log_gauss(x, m, c) + 0.5 * torch.logdet(c), 1), r"−½ log det Σ_k term .* is missing"),
    (lambda x, w, m, c: torch.log((w * log_gauss(x, m, c).exp()).sum(1)), r"−inf \(or NaN\) for points far from every component"),
    (lambda x, w, m, c: log_likelihood_reference(x, w, m, c) + 0.01, r"log p\(x\) is off by up to 0.01"),
])
def test_log_likelihood_names_the_mistake(fn, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.log_likelihood(fn)


def test_checkers_do_not_let_in_place_edits_leak():
    def vandal(x, w, m, c):
        w.zero_()  # spoils only its own copy
        return e_step_reference(x, torch.tensor([0.5, 0.3, 0.2], dtype=x.dtype), m, c)
    checks.e_step(vandal)


@pytest.mark.parametrize("checker, fn, msg", [
    (checks.e_step, lambda x, w, m, c: e_step_reference(x, w, m, c) / 0, r"resp contains NaN or inf for ordinary points"),
    (checks.e_step, lambda x, w, m, c: e_step_reference(x, w, m, c) * 2 + 0.1, r"rows of resp must sum to 1 .* range over"),
    (checks.e_step, lambda x, w, m, c: "resp", r"resp should be a torch.Tensor \(or numbers\), got str"),
    (checks.m_step, lambda x, resp, reg: tuple(t * float("nan") for t in m_step_reference(x, resp, reg)), r"weights contains NaN or inf"),
    (checks.m_step, lambda x, resp, reg: m_step_reference(x, resp, reg)[0], r"should return three things, \(weights, means, covariances\); got Tensor"),
    (checks.m_step, _m_variant(weights=lambda x, resp, nk: nk.flip(0) / x.shape[0]), r"weights is off by up to .* π_k = N_k / N"),
    (checks.log_likelihood, lambda x, w, m, c: torch.tensor(3.0), r"returned a single number over the points"),
])
def test_other_messages(checker, fn, msg):
    with pytest.raises(ExerciseError, match=msg):
        checker(fn)


def test_e_step_returning_log_responsibilities_is_told_to_exponentiate():
    with pytest.raises(ExerciseError, match=r"log-responsibilities .* exponentiate"):
        checks.e_step(lambda x, w, m, c: torch.log_softmax(torch.log(w) + log_gauss(x, m, c), dim=1))


def _m_step_torch_cov(x, resp, reg_covar, correction=1, reg=True):
    nk = resp.sum(0)
    means = resp.T @ x / nk[:, None]
    covariances = torch.stack([torch.cov(x.T, correction=correction, aweights=resp[:, k]) for k in range(resp.shape[1])])
    return nk / len(x), means, covariances + (reg_covar * torch.eye(x.shape[1], dtype=x.dtype) if reg else 0)


@pytest.mark.parametrize("reg, msg", [(True, r"correction=1 by default.*pass correction=0\."),
                                      (False, r"correction=0 and add reg_covar")])
def test_m_step_with_torch_cov_names_its_correction(reg, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.m_step(lambda x, resp, reg_covar: _m_step_torch_cov(x, resp, reg_covar, reg=reg))


def test_m_step_with_torch_cov_and_no_correction_is_right_until_a_component_is_empty():
    with pytest.raises(ExerciseError, match=r"N_k = 0"):
        checks.m_step(lambda x, resp, reg_covar: _m_step_torch_cov(x, resp, reg_covar, correction=0))
