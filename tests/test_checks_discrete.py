import pytest
import torch
import torch.nn.functional as F

from vaelab import checks
from vaelab.checks import ExerciseError


# ------------------------------------------------------------------ one-hot conditioning


def one_hot_condition(x, labels, n_classes):
    return torch.cat([x, F.one_hot(labels, n_classes).to(x.dtype)], dim=1)


def test_one_hot_condition_accepts_the_reference_and_an_eye_lookup(capsys):
    checks.one_hot_condition(one_hot_condition)
    checks.one_hot_condition(lambda x, labels, n: torch.hstack([x, torch.eye(n)[labels]]))
    assert capsys.readouterr().out.count("Correct: one_hot_condition passes every check.") == 2


@pytest.mark.parametrize("wrong, msg", [
    (lambda x, labels, n: torch.cat([x, labels[:, None].float()], 1), "label was appended as one number"),
    (lambda x, labels, n: torch.cat([x, F.one_hot(labels).float()], 1), "largest label in this batch plus one"),
    (lambda x, labels, n: torch.cat([F.one_hot(labels, n).float(), x], 1), "one-hot columns come first"),
    (lambda x, labels, n: torch.cat([x.long(), F.one_hot(labels, n)], 1), "the networks need floats"),
    (lambda x, labels, n: torch.cat([x, F.one_hot(labels, n).float()[:, :x.shape[1]]], 0), "stacked along the batch axis"),
    (lambda x, labels, n: torch.cat([x, F.one_hot(labels.flip(0), n).float()], 1), r"\[x, one_hot\(labels\)\] is off"),
    (lambda x, labels, n: F.one_hot(labels, n).float(), r"should have shape \(4, 8\)"),
    (lambda x, labels, n: x[0, 7], "your function raised IndexError: index 7 is out of bounds"),
])
def test_one_hot_condition_rejects_typical_mistakes(wrong, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.one_hot_condition(wrong)


# ------------------------------------------------------------------ nearest code


def nearest_code(z_e, codebook):
    distances = (z_e[:, None, :] - codebook[None, :, :]).pow(2).sum(-1)  # (B, K)
    return distances.argmin(dim=1)


def test_nearest_code_accepts_the_reference_and_the_expanded_form(capsys):
    checks.nearest_code(nearest_code)
    checks.nearest_code(lambda z, e: (z.pow(2).sum(1, keepdim=True) - 2 * z @ e.T + e.pow(2).sum(1)).argmin(1))
    assert capsys.readouterr().out.count("Correct: nearest_code passes every check.") == 2


@pytest.mark.parametrize("wrong, msg", [
    (lambda z, e: torch.cdist(z, e).argmax(1), "picks the \\*farthest\\* code"),
    (lambda z, e: (z @ e.T).argmax(1), "largest inner product"),
    (lambda z, e: torch.cdist(z, e).argmin(0), "the argmin ran over the batch axis"),
    (lambda z, e: e[torch.cdist(z, e).argmin(1)], "return the \\*indices\\*"),
    (lambda z, e: torch.cdist(z, e).argmin(1).float(), "should return integer indices"),
    (lambda z, e: torch.cdist(z, e.flip(0)).argmin(1), "rows do not get their nearest code. Row 0, z_e = .* is nearer"),
    (lambda z, e: torch.cdist(z, e).argmin(1)[:3], "should return one index per row of z_e"),
])
def test_nearest_code_rejects_typical_mistakes(wrong, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.nearest_code(wrong)


def test_stub_is_reported_as_not_written():
    def stub(z_e, codebook):
        raise NotImplementedError("Exercise: write the body of nearest_code")

    assert checks.nearest_code(stub) is checks.nearest_code.reference


# ------------------------------------------------------------------ straight-through


def test_straight_through_accepts_the_reference(capsys):
    checks.straight_through(lambda z_e, z_q: z_e + (z_q - z_e).detach())
    checks.straight_through(lambda z_e, z_q: z_q.detach() - z_e.detach() + z_e)
    assert capsys.readouterr().out.count("Correct: straight_through passes every check.") == 2


@pytest.mark.parametrize("wrong, msg", [
    (lambda z_e, z_q: z_q, "you returned z_q, which comes from an argmin"),
    (lambda z_e, z_q: z_e + (z_q - z_e), r"without \.detach\(\): the two z_e cancel"),
    (lambda z_e, z_q: z_e, "the value is z_e: the decoder would see the unquantized vector"),
    (lambda z_e, z_q: z_q + (z_e - z_q).detach(), "the value is z_e"),
    (lambda z_e, z_q: z_q.detach(), "carries no gradient at all"),
    (lambda z_e, z_q: (z_e + (z_q - z_e).detach()) * 2, r"the value \(it must equal z_q\) is off"),
    (lambda z_e, z_q: z_e + (z_q - z_e.detach()), "leaks into the codebook"),
    (lambda z_e, z_q: z_e * z_q.detach() / z_e.detach(), "the gradient reaching z_e is off"),
])
def test_straight_through_rejects_typical_mistakes(wrong, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.straight_through(wrong)


# ------------------------------------------------------------------ perplexity


def code_perplexity(counts):
    p = counts / counts.sum()
    return torch.exp(-torch.special.xlogy(p, p).sum())


def test_code_perplexity_accepts_the_reference_and_a_float(capsys):
    checks.code_perplexity(code_perplexity)
    checks.code_perplexity(lambda c: float(2 ** -sum(p * torch.log2(p) for p in c / c.sum() if p > 0)))
    assert capsys.readouterr().out.count("Correct: code_perplexity passes every check.") == 2


@pytest.mark.parametrize("wrong, msg", [
    (lambda c: torch.exp(-((c / c.sum()) * (c / c.sum()).log()).sum()), "give NaN: an unused code makes 0 · log 0"),
    (lambda c: -torch.special.xlogy(c / c.sum(), c / c.sum()).sum(), r"returned the entropy H"),
    (lambda c: torch.exp(-torch.special.xlogy(c, c).sum()), "the counts were used as probabilities"),
    (lambda c: (c > 0).sum(), r"counts \[1, 2, 3, 4, 0\]: you counted the codes in use \(4\).*here it is 3.59"),  # counting used codes is not the perplexity
    (lambda c: [1.0, 2.0], "the perplexity should be one number, got shape \\(2,\\)"),
])
def test_code_perplexity_rejects_typical_mistakes(wrong, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.code_perplexity(wrong)


@pytest.mark.parametrize("wrong, msg", [
    (lambda z, e: (z[:, None] - e[None]).abs().sum(-1).argmin(1), r"nearest code in L1 distance .*use .pow\(2\)"),
    (lambda z, e: (z[:, None] - e[None]).abs().max(-1).values.argmin(1), r"L∞"),
    (lambda z, e: torch.cdist(z, e).argmin(1) + 1, r"(only 4 codes|rows do not get their nearest code)"),
])
def test_nearest_code_names_the_distance_used(wrong, msg):
    with pytest.raises(ExerciseError, match=msg) as error:
        checks.nearest_code(wrong)
    assert "off by up to" not in str(error.value)  # a distance between indices means nothing
