import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from vaelab import data
from vaelab.models import VAE
from vaelab.train import History, TrainingDiverged, adam, evaluate, fit, load, save


@pytest.fixture(scope="module")
def digits():
    X, _ = data.digits("train")
    X_test, _ = data.digits("test")
    return X[:600], X_test[:200]


def small_vae(seed=0, **kwargs):
    torch.manual_seed(seed)
    return VAE.mlp(64, 4, hidden=(32,), **kwargs)


def test_training_lowers_the_validation_loss_on_digits(digits):
    X, X_valid = digits
    model = small_vae()
    before = evaluate(model, X_valid)["loss"]
    history = fit(model, X, epochs=5, batch_size=32, lr=3e-3, X_valid=X_valid, progress=False, seed=0)
    assert len(history) == 5 and history.epoch == [1, 2, 3, 4, 5]
    assert history.valid_loss[-1] < before - 5.0  # nats per image, from about 44 to below 39
    assert history.valid_elbo[-1] > history.valid_elbo[0]
    assert history.train_loss[-1] < history.train_loss[0]
    # beta = 1 and no free bits: the loss is the negative ELBO, and the ELBO is reconstruction minus KL
    torch.testing.assert_close(torch.tensor(history.train_loss), -torch.tensor(history.train_elbo))
    torch.testing.assert_close(torch.tensor(history.valid_elbo),
                               torch.tensor(history.valid_reconstruction) - torch.tensor(history.valid_kl))


def test_seeded_cpu_runs_are_reproducible(digits):
    X, X_valid = digits
    runs = []
    for _ in range(2):
        model = small_vae(seed=1)
        history = fit(model, X[:200], epochs=2, X_valid=X_valid[:50], progress=False, seed=3)
        runs.append((history.as_dict(), model.state_dict()))
    (h1, s1), (h2, s2) = runs
    h1.pop("seconds"), h2.pop("seconds")
    assert h1 == h2
    for key in s1:
        torch.testing.assert_close(s1[key], s2[key], rtol=0, atol=0)


def test_beta_and_free_bits_change_the_loss_not_the_reported_elbo(digits):
    X, _ = digits
    model = small_vae()
    h = fit(model, X[:256], epochs=1, batch_size=256, beta=0.0, progress=False, seed=0)
    # one batch, one step: the metrics describe the model before the step, the loss is rec only
    assert h.train_loss[0] == pytest.approx(-h.train_reconstruction[0], rel=1e-6)
    model = small_vae()
    h = fit(model, X[:256], epochs=1, batch_size=256, free_bits=5.0, progress=False, seed=0)
    assert h.train_loss[0] == pytest.approx(-h.train_reconstruction[0] + 4 * 5.0, rel=1e-6)  # every dim under 5 nats
    assert h.train_elbo[0] == pytest.approx(h.train_reconstruction[0] - h.train_kl[0], rel=1e-6)


def test_kl_warmup_starts_the_kl_weight_at_zero(digits):
    X, _ = digits
    h = fit(small_vae(), X[:256], epochs=1, batch_size=256, kl_warmup=3, progress=False, seed=0)
    assert h.train_loss[0] == pytest.approx(-h.train_reconstruction[0], rel=1e-6)


def test_gaussian_vae_learns_its_obs_scale_on_toy_data():
    x = data.toy("moons", 512, noise=0.02)  # close to a curve: a 1-D latent explains most of it
    torch.manual_seed(0)
    model = VAE.mlp(2, 1, hidden=(32, 32), likelihood="gaussian", activation="tanh")
    history = fit(model, x, epochs=40, batch_size=64, lr=1e-2, progress=False, seed=0)
    assert history.train_elbo[-1] > history.train_elbo[0] + 0.3
    assert float(model.obs_scale) < 0.6  # started at 1


def test_fit_accepts_numpy_and_a_dataset_and_puts_the_model_in_eval_mode(digits):
    X, _ = digits
    h = fit(small_vae(), X[:64].numpy(), epochs=1, progress=False)
    assert len(h) == 1
    model = small_vae()
    h = fit(model, TensorDataset(X[:100]), epochs=2, batch_size=32, X_valid=TensorDataset(X[100:150]),
            progress=False, seed=0)
    assert len(h) == 2 and all(math.isfinite(v) for v in h.valid_elbo)
    assert not model.training


class Conditional(nn.Module):
    """A minimal model taking (x, c) batches: checks that tuples reach loss() row-aligned."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.seen = 0

    def loss(self, batch, *, beta, free_bits):
        x, c = batch
        assert torch.equal(x[:, 0].long(), c)  # rows stay aligned after shuffling
        self.seen += len(x)
        loss = (self.w - x.mean()) ** 2
        return loss, {"loss": loss.detach()}


def test_tuples_are_batched_together_for_conditional_models():
    c = torch.arange(50)
    x = torch.stack([c.float(), torch.ones(50)], 1)
    model = Conditional()
    history = fit(model, (x, c), epochs=3, batch_size=8, progress=False, seed=0)
    assert model.seen == 150 and len(history.train_loss) == 3


class Exploding(nn.Module):
    """Its loss is finite for ``good`` steps, then NaN."""

    def __init__(self, good, exception=None):
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))
        self.good, self.calls, self.exception = good, 0, exception

    def loss(self, batch, *, beta, free_bits):
        self.calls += 1
        if self.calls > self.good:
            if self.exception is not None:
                raise self.exception
            loss = self.w.sum() * float("nan")
        else:
            loss = (self.w - batch.mean()).pow(2).sum()
        return loss, {"loss": loss.detach()}


def test_nan_loss_stops_with_a_clear_error_and_restores_the_last_good_weights():
    model = Exploding(good=6)  # 4 batches an epoch: NaN in the second epoch
    with pytest.raises(TrainingDiverged, match=r"Training diverged in epoch 2 \(by batch 3\): the loss is no longer "
                                               r"finite \(loss=nan\)\. The model keeps its weights from epoch 1\. "
                                               r"Try a lower learning rate \(lr=0\.1 now, e\.g\. lr=0\.01\)") as info:
        fit(model, torch.rand(32, 2), epochs=5, batch_size=8, lr=0.1, progress=False, seed=0)
    assert len(info.value.history) == 1
    assert torch.isfinite(model.w).all()
    assert isinstance(info.value, FloatingPointError)


def test_after_divergence_a_given_optimizer_is_restored_with_the_weights():
    """The NaN step also wrote NaN into Adam's moments: a retry at a lower lr diverged at once."""
    X = torch.rand(32, 2, generator=torch.Generator().manual_seed(0))
    model = Exploding(good=6)  # 4 batches an epoch: NaN in the second epoch
    opt = adam(model, lr=0.1)
    with pytest.raises(TrainingDiverged):
        fit(model, X, epochs=5, batch_size=8, progress=False, seed=0, optimizer=opt)
    moments = [t for state in opt.state.values() for t in state.values() if torch.is_tensor(t)]
    assert moments and all(torch.isfinite(t).all() for t in moments)
    # exactly the state after the one good epoch: the same run stopped there by hand
    reference = Exploding(good=99)
    reference_opt = adam(reference, lr=0.1)
    fit(reference, X, epochs=1, batch_size=8, progress=False, seed=0, optimizer=reference_opt)
    torch.testing.assert_close(model.w, reference.w, rtol=0, atol=0)
    for key, value in reference_opt.state_dict()["state"][0].items():
        torch.testing.assert_close(opt.state_dict()["state"][0][key], value, rtol=0, atol=0)
    model.good = 10 ** 6  # the cause is gone: training continues from the restored state
    for group in opt.param_groups:
        group["lr"] = 0.01
    history = fit(model, X, epochs=2, batch_size=8, progress=False, optimizer=opt)
    assert all(math.isfinite(v) for v in history.train_loss)


def test_nan_in_the_first_epoch_keeps_the_initial_weights():
    model = Exploding(good=0)
    with pytest.raises(TrainingDiverged, match="in epoch 1 .* keeps its weights from before training"):
        fit(model, torch.rand(8, 2), epochs=2, progress=False)
    torch.testing.assert_close(model.w.detach(), torch.ones(3))


def test_keyboard_interrupt_returns_the_finished_epochs():
    model = Exploding(good=9, exception=KeyboardInterrupt())
    history = fit(model, torch.rand(32, 2), epochs=5, batch_size=8, progress=False)
    assert history.interrupted and len(history) == 2 and "interrupted" in repr(history)
    assert torch.isfinite(model.w).all() and not model.training


def test_history_table_and_dict():
    h = History()
    h.append(1, 0.25, {"elbo": -30.123, "kl": 2.0}, {"elbo": -31.0, "kl": 2.5})
    h.append(2, 0.5, {"elbo": -29.0, "kl": 3.0}, {"elbo": -30.0, "kl": 3.5})
    assert h.as_dict() == {"epoch": [1, 2], "train_elbo": [-30.123, -29.0], "train_kl": [2.0, 3.0],
                           "valid_elbo": [-31.0, -30.0], "valid_kl": [2.5, 3.5], "seconds": [0.25, 0.5]}
    assert h.table().splitlines() == ["epoch  train_elbo  train_kl  valid_elbo  valid_kl",
                                      "    1      -30.12      2.00      -31.00      2.50",
                                      "    2      -29.00      3.00      -30.00      3.50"]
    assert "seconds" in h.table(seconds=True)
    assert repr(h) == "History(2 epochs, train_elbo=-29.00, valid_elbo=-30.00)"
    with pytest.raises(AttributeError, match="History has no attribute 'train_bogus'"):
        h.train_bogus


# ------------------------------------------------------------------ checkpoints


def test_checkpoint_round_trip_rebuilds_the_model(tmp_path, digits):
    X, X_valid = digits
    model = small_vae(likelihood="bernoulli")
    fit(model, X[:128], epochs=1, progress=False, seed=0)
    save(model, tmp_path / "vae.pt")
    again = load(tmp_path / "vae.pt", device="cpu")
    assert isinstance(again, VAE) and not again.training and again.config == model.config
    for key, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value, rtol=0, atol=0)
    torch.manual_seed(0)
    expected = model.elbo(X_valid)
    torch.manual_seed(0)
    torch.testing.assert_close(again.elbo(X_valid), expected)


def test_checkpoint_keeps_a_learned_obs_scale(tmp_path):
    model = VAE.mlp(2, 1, hidden=(4,), likelihood="gaussian")
    with torch.no_grad():
        model.log_obs_scale.fill_(-1.5)
    save(model, tmp_path / "g.pt")
    assert float(load(tmp_path / "g.pt").obs_scale) == pytest.approx(math.exp(-1.5))


def test_checkpoint_of_custom_modules_loads_into_a_given_model(tmp_path):
    def build():
        return VAE(nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 4)), nn.Linear(2, 5))

    torch.manual_seed(0)
    model = build()
    save(model, tmp_path / "c.pt")
    with pytest.raises(ValueError, match=r"holds a VAE built from custom modules, which cannot be rebuilt from "
                                         r"plain data: build the same model and pass it, load\(path, model=model\)"):
        load(tmp_path / "c.pt")
    torch.manual_seed(1)
    other = load(tmp_path / "c.pt", model=build())
    torch.testing.assert_close(other.encoder[0].weight, model.encoder[0].weight)


def test_checkpoint_errors(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not a vaelab checkpoint"):
        load(tmp_path / "other.pt")
    save(VAE.mlp(4, 2, hidden=(3,)), tmp_path / "v.pt")
    with pytest.raises(ValueError, match="holds a VAE, got a model of type Linear"):
        load(tmp_path / "v.pt", model=nn.Linear(2, 2))


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(epochs=0), ValueError, "`epochs` must be an integer >= 1, got 0"),
    (dict(epochs=1.5), TypeError, "`epochs` must be an integer >= 1, got 1.5"),
    (dict(epochs=1, batch_size=0), ValueError, "`batch_size` must be an integer >= 1, got 0"),
    (dict(epochs=1, lr=0), ValueError, "`lr` must be a finite number > 0, got 0.0"),
    (dict(epochs=1, beta=-0.5), ValueError, "`beta` must be a finite number >= 0, got -0.5"),
    (dict(epochs=1, free_bits=-1), ValueError, "`free_bits` must be a finite number >= 0, got -1"),
    (dict(epochs=1, kl_warmup=-2), ValueError, "`kl_warmup` must be a finite number >= 0, got -2"),
    (dict(epochs=1, seed=-1), ValueError, "`seed` must be an integer >= 0, got -1"),
    (dict(epochs=1, device="tpu"), ValueError, "`device` must name one of cpu, cuda, mps"),
    (dict(epochs=1, X=torch.rand(10, 63)), ValueError, r"`X` must have 64 features \(columns\), got 63"),
    (dict(epochs=1, X=torch.rand(10, 64) * 255), ValueError, r"`X` must hold values in \[0, 1\] for likelihood='bernoulli'"),
    (dict(epochs=1, X=torch.rand(10, 8, 8)), ValueError, r"flatten images first: X.flatten\(1\)"),
    (dict(epochs=1, X_valid=torch.rand(5, 60)), ValueError, r"`X_valid` must have 64 features \(columns\), got 60"),
    (dict(epochs=1, X=(torch.rand(10, 64), torch.zeros(10))), TypeError, r"got a tuple of 2; pass the data alone"),
])
def test_bad_input_to_fit(kwargs, exc, msg):
    kwargs = {"X": torch.rand(10, 64), **kwargs}
    with pytest.raises(exc, match=msg):
        fit(small_vae(), progress=False, **kwargs)


def test_fit_needs_a_model_with_a_loss():
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module with a loss\(batch, \*, beta, free_bits\) "
                                        r"method \(e.g. vaelab.VAE\), got Linear"):
        fit(nn.Linear(2, 2), torch.rand(4, 2), epochs=1)


def test_tuple_data_must_have_rows_aligned():
    with pytest.raises(ValueError, match=r"`X` is a tuple of arrays, which must all have the same number of rows, "
                                         r"got shapes \[\(10, 2\), \(9,\)\]"):
        fit(Conditional(), (torch.rand(10, 2), torch.zeros(9)), epochs=1, progress=False)


@pytest.mark.gpu
def test_fit_on_cuda_keeps_data_on_the_device(digits):
    X, X_valid = digits
    model = small_vae()
    history = fit(model, X, epochs=2, X_valid=X_valid, device="cuda", progress=False, seed=0)
    assert next(model.parameters()).device.type == "cuda"
    assert history.valid_elbo[-1] > history.valid_elbo[0] - 1.0


def test_fit_with_bf16_autocast_trains(digits):
    X, X_valid = digits
    history = fit(small_vae(), X[:256], epochs=3, batch_size=32, lr=3e-3, X_valid=X_valid[:64], amp=True,
                  progress=False, seed=0)
    assert all(math.isfinite(v) for v in history.valid_elbo) and history.train_loss[-1] < history.train_loss[0]


def test_an_optimizer_passed_to_successive_calls_continues_training_exactly(digits):
    X, _ = digits
    once = small_vae()
    fit(once, X[:200], epochs=2, batch_size=50, progress=False, seed=0)
    twice = small_vae()
    opt = adam(twice, lr=1e-3)
    fit(twice, X[:200], epochs=1, batch_size=50, progress=False, seed=0, optimizer=opt)
    fit(twice, X[:200], epochs=1, batch_size=50, progress=False, optimizer=opt)
    for key, value in once.state_dict().items():
        torch.testing.assert_close(twice.state_dict()[key], value, rtol=0, atol=0)
    with pytest.raises(TypeError, match="`optimizer` must be a torch.optim.Optimizer, got str"):
        fit(twice, X[:10], epochs=1, optimizer="adam")


def test_progress_bar_shows_the_running_elbo_and_kl(monkeypatch, capsys, digits):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    X, X_valid = digits
    fit(small_vae(), X[:64], epochs=2, batch_size=32, X_valid=X_valid[:32], progress=True, seed=0)
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "elbo=" in err and "kl=" in err and "valid_elbo=" in err


def test_history_copies_and_pickles():
    import copy
    import pickle

    h = History()
    h.append(1, 0.1, {"elbo": -3.0})
    assert copy.deepcopy(h).train_elbo == [-3.0] and pickle.loads(pickle.dumps(h)).as_dict() == h.as_dict()


# ------------------------------------------------------------------ Datasets


def test_a_nan_in_a_dataset_is_reported_at_its_row_in_the_dataset():
    """It was reported at its index in the shuffled batch ("index (1, 2)"), which names no row of the data."""
    X = torch.rand(100, 4)
    X[57, 2] = float("nan")
    with pytest.raises(ValueError, match=r"`X` must contain only finite values, got NaN or infinity in row 57 of the "
                                         r"Dataset: X\[57\]"):
        fit(VAE.mlp(4, 2, hidden=(3,)), TensorDataset(X), epochs=1, batch_size=16, progress=False, seed=0)
    with pytest.raises(ValueError, match=r"`X_valid` must contain only finite values, got NaN or infinity in row 57"):
        fit(VAE.mlp(4, 2, hidden=(3,)), torch.rand(20, 4), X_valid=TensorDataset(X), epochs=1, progress=False)


def test_an_empty_dataset_says_so():
    """It raised torch's "num_samples should be a positive integer value, but got num_samples=0"."""
    with pytest.raises(ValueError, match=r"`X` is an empty Dataset \(len X == 0\): there is nothing to train on"):
        fit(VAE.mlp(4, 2, hidden=(3,)), TensorDataset(torch.rand(0, 4)), epochs=1, progress=False)


def test_a_dataset_is_shuffled_as_a_shuffling_dataloader_would():
    X = torch.rand(50, 4, generator=torch.Generator().manual_seed(0))
    seen = []

    class Recording(TensorDataset):
        def __getitem__(self, i):
            seen.append(i)
            return super().__getitem__(i)

    fit(VAE.mlp(4, 2, hidden=(3,)), Recording(X), epochs=1, batch_size=16, progress=False, seed=0)
    torch.manual_seed(0)
    expected = [i for batch in torch.utils.data.DataLoader(range(50), batch_size=16, shuffle=True) for i in batch.tolist()]
    assert seen == expected
