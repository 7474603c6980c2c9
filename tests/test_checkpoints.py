"""vaelab.train.save / load: what saves also loads safely, a failed save destroys nothing, a bad file says what is wrong."""
import io
import os

import numpy as np
import pytest
import torch
from torch import nn

from vaelab.models import VAE, VQVAE
from vaelab.train import load, save


@pytest.mark.parametrize("build", [
    lambda: VAE.mlp(8, 2, hidden=(4,), likelihood="gaussian", obs_scale=np.float32(0.37)),
    lambda: VAE.mlp(np.int64(8), np.int64(2), hidden=(np.int32(4),)),
    lambda: VQVAE.mlp(8, n_codes=np.int64(16), code_dim=2, hidden=(4,), decay=np.float64(0.9)),
], ids=["numpy obs_scale", "numpy sizes", "numpy n_codes"])
def test_numpy_builder_arguments_save_and_load_with_weights_only(tmp_path, build):
    """These saved, then failed to load with torch's 'Weights only load failed … weights_only=False'."""
    torch.manual_seed(0)
    model = build()
    save(model, tmp_path / "m.pt")
    raw = torch.load(tmp_path / "m.pt", weights_only=True)  # the safe loader reads it, without vaelab's help
    assert all(type(v) in (int, float, str, list, type(None)) for v in raw["config"].values())
    again = load(tmp_path / "m.pt")
    assert type(again) is type(model) and again.config == model.config
    for key, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value, rtol=0, atol=0)


def test_a_checkpoint_that_would_not_load_safely_is_refused_at_save_and_the_old_file_survives(tmp_path):
    path = tmp_path / "m.pt"
    good = VAE.mlp(4, 2, hidden=(3,))
    save(good, path)
    before = path.read_bytes()
    bad = VAE.mlp(4, 2, hidden=(3,))
    bad.config = {**bad.config, "note": object()}  # not plain data
    with pytest.raises(TypeError, match=r"cannot save model.config\['note'\] = <object object at .*> of type object "
                                        r"as plain data"):
        save(bad, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.pt"]  # no temporary file left behind


def test_a_save_that_fails_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    save(VAE.mlp(4, 2, hidden=(3,)), path)
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        save(VAE.mlp(4, 2, hidden=(5,)), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.pt"]
    assert load(path).config["hidden"] == [3]


def test_save_and_load_through_a_buffer():
    buffer = io.BytesIO()
    model = VAE.mlp(4, 2, hidden=(3,))
    save(model, buffer)
    buffer.seek(0)
    assert load(buffer).config == model.config


@pytest.mark.parametrize("content, msg", [
    (b"", r"m.pt is empty \(0 bytes\), not a checkpoint: was the save interrupted\?"),
    (b"hello, I am a text file\n", r"m.pt is not a readable checkpoint: it is a text file \(it starts with 'hello, I am"),
    ("truncated", r"m.pt is not a readable checkpoint: the zip archive torch.save writes is truncated or corrupted"),
    ("pickled code", r"m.pt holds objects other than tensors and plain data, which vaelab does not load"),
])
def test_bad_files_raise_a_value_error_naming_the_file_and_the_problem(tmp_path, content, msg):
    path = tmp_path / "m.pt"
    if content == "truncated":
        save(VAE.mlp(4, 2, hidden=(3,)), path)
        content = path.read_bytes()[:300]
    elif content == "pickled code":
        torch.save({"format": "vaelab-checkpoint-1", "config": nn.Linear(1, 1)}, path)
        content = path.read_bytes()
    path.write_bytes(content)
    with pytest.raises(ValueError, match=msg) as info:
        load(path)
    assert "weights_only=False" not in str(info.value)  # never steer anyone to the unsafe loader


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at .*nothing.pt"):
        load(tmp_path / "nothing.pt")
