import gzip
import hashlib
import http.server
import socket
import threading
import time

import numpy as np
import pytest
import torch

from vaelab import data

# ------------------------------------------------------------------ toy sets


@pytest.mark.parametrize("name", data.TOY_SETS)
def test_toy_shapes_dtype_and_seed(name):
    x = data.toy(name, 500, seed=3)
    assert x.shape == (500, 2) and x.dtype == torch.float32
    assert torch.isfinite(x).all() and x.abs().max() < 6
    torch.testing.assert_close(x, data.toy(name, 500, seed=3))
    assert not torch.equal(x, data.toy(name, 500, seed=4))


def test_toy_noise_zero_puts_ring_on_circle():
    x = data.toy("ring", 200, noise=0.0)
    torch.testing.assert_close(x.norm(dim=1), torch.full((200,), 2.0))


def test_toy_blobs_have_three_clusters():
    from sklearn.cluster import KMeans
    x = data.toy("blobs", 600, noise=0.1).numpy()
    km = KMeans(3, n_init=3, random_state=0).fit(x)
    assert km.inertia_ / len(x) < 0.05


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(name="circles", n=10), ValueError, "`name` must be one of 'blobs', 'moons', 'ring', 'spiral', 'pinwheel'; got 'circles'"),
    (dict(name="moons", n=0), ValueError, "`n` must be an integer >= 1, got 0"),
    (dict(name="moons", n=-5), ValueError, "`n` must be an integer >= 1, got -5"),
    (dict(name="moons", n=2.5), TypeError, "`n` must be an integer >= 1, got 2.5"),
    (dict(name="moons", n=10, noise=-0.1), ValueError, "`noise` must be a finite number >= 0, got -0.1"),
    (dict(name="moons", n=10, noise=float("nan")), ValueError, "`noise` must be a finite number >= 0, got nan"),
    (dict(name="moons", n=10, seed=-1), ValueError, "`seed` must be an integer >= 0, got -1"),
    (dict(name="ring", n=10, noise=1e300), ValueError, r"`noise` = 1e\+300 is too large: the points overflow float32"),
])
def test_toy_bad_input(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        data.toy(**kwargs)

# ------------------------------------------------------------------ digits


def test_digits_split_is_fixed_stratified_and_scaled():
    X_train, y_train = data.digits("train")
    X_test, y_test = data.digits("test")
    assert X_train.shape == (1437, 64) and X_test.shape == (360, 64)
    assert X_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert float(X_train.min()) == 0.0 and float(X_train.max()) == 1.0
    assert torch.bincount(y_test).tolist() == [36] * 10 or torch.bincount(y_test).min() >= 35
    torch.testing.assert_close(X_test, data.digits("test")[0])
    # no image is in both splits
    train_rows = {tuple(r) for r in X_train.tolist()}
    assert sum(tuple(r) in train_rows for r in X_test.tolist()) < 5  # a few exact duplicates exist in the source


def test_digits_binarize():
    grey = data.digits("test")[0]
    static = data.digits("test", binarize="static")[0]
    assert set(static.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(static, data.digits("test", binarize="static")[0])
    assert not torch.equal(static, data.digits("test", binarize="static", seed=1)[0])
    torch.manual_seed(0)
    d1 = data.digits("test", binarize="dynamic")[0]
    d2 = data.digits("test", binarize="dynamic")[0]
    assert not torch.equal(d1, d2)
    # a Bernoulli draw keeps the grey level as its mean
    assert abs(float(static.mean() - grey.mean())) < 0.01


@pytest.mark.parametrize("kwargs, msg", [
    (dict(split="valid"), "`split` must be one of 'train', 'test'; got 'valid'"),
    (dict(binarize="yes"), "`binarize` must be one of False, 'static', 'dynamic'; got 'yes'"),
    (dict(binarize=True), "`binarize` must be one of False, 'static', 'dynamic'; got True"),
    # these equal False but silently took the "dynamic" branch
    (dict(binarize=0), "`binarize` must be one of False, 'static', 'dynamic'; got 0"),
    (dict(binarize=0.0), "`binarize` must be one of False, 'static', 'dynamic'; got 0.0"),
    (dict(binarize=np.False_), "`binarize` must be one of False, 'static', 'dynamic'; got np.False_"),
])
def test_digits_bad_input(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        data.digits(**kwargs)

# ------------------------------------------------------------------ IDX download, served for real on 127.0.0.1


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


@pytest.fixture()
def idx_files():
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", 6), ("test", 4)):
        images_name, labels_name = data._FILES[split]
        files[images_name] = idx_bytes(rng.integers(0, 256, size=(n, 28, 28)))
        files[labels_name] = idx_bytes(rng.integers(0, 10, size=(n,)))
    return files


class Server:
    """Serves ``files`` by name; ``lie_about_length`` names files sent with a Content-Length too large."""

    def __init__(self, files):
        self.files, self.lie_about_length, self.requests = dict(files), set(), []
        self.cut_mid_chunk, self.trickle = set(), set()  # chunked and cut short; one byte every 20 ms
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(name)
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if name in server.cut_mid_chunk:  # announce a chunk of the whole body, send half, hang up
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(f"{len(body):x}\r\n".encode() + body[:len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if name in server.trickle:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    try:
                        for i in range(len(body)):
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(0.02)
                    except OSError:  # the client gave up
                        pass
                    return
                extra = 1000 if name in server.lie_about_length else 0
                self.send_header("Content-Length", str(len(body) + extra))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server(idx_files, monkeypatch):
    srv = Server(idx_files)
    sums = {name: hashlib.sha256(body).hexdigest() for name, body in idx_files.items()}
    monkeypatch.setitem(data.SHA256, "mnist", sums)
    monkeypatch.setitem(data.SHA256, "fashion", sums)
    yield srv
    srv.close()


def test_mnist_downloads_once_verifies_and_reads(server, tmp_path):
    X, y = data.mnist("train", root=tmp_path, mirrors=(server.url,))
    assert X.shape == (6, 784) and X.dtype == torch.float32 and y.shape == (6,)
    assert 0.0 <= float(X.min()) and float(X.max()) <= 1.0
    assert len(server.requests) == 2
    X2, _ = data.mnist("train", root=tmp_path, mirrors=(server.url,))
    assert len(server.requests) == 2, "a verified cached file must not be downloaded again"
    torch.testing.assert_close(X, X2)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(data._FILES["train"])


def test_fashion_uses_its_own_folder_and_env_root(server, tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path))
    X, y = data.fashion_mnist("test", mirrors=(server.url,))
    assert X.shape == (4, 784)
    assert (tmp_path / "fashion" / "t10k-images-idx3-ubyte.gz").exists()


def test_wrong_checksum_keeps_nothing(server, tmp_path):
    server.files["train-images-idx3-ubyte.gz"] = idx_bytes(np.zeros((6, 28, 28)))
    with pytest.raises(ConnectionError, match="checksum mismatch .* the file was not kept"):
        data.mnist("train", root=tmp_path, mirrors=(server.url,))
    assert not (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").exists()
    assert not any(p.name.endswith(".part") for p in (tmp_path / "mnist").iterdir())


def test_truncated_transfer_keeps_nothing(server, tmp_path):
    server.lie_about_length.add("train-images-idx3-ubyte.gz")
    with pytest.raises(ConnectionError, match="cut short|could not download"):
        data.mnist("train", root=tmp_path, mirrors=(server.url,))
    assert list((tmp_path / "mnist").iterdir()) == []


def test_corrupted_cached_file_is_replaced(server, tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"half a file")
    X, y = data.mnist("train", root=tmp_path, mirrors=(server.url,))
    assert y.shape == (6,)
    assert "train-labels-idx1-ubyte.gz" in server.requests


def test_second_mirror_is_tried(server, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/"
    X, _ = data.mnist("test", root=tmp_path, mirrors=(dead, server.url))
    assert X.shape == (4, 784)


def test_a_chunked_transfer_cut_mid_chunk_is_a_connection_error_and_the_next_mirror_is_tried(server, tmp_path):
    """http.client.IncompleteRead escaped mnist() raw, and the second mirror was never asked."""
    server.cut_mid_chunk.add("t10k-labels-idx1-ubyte.gz")
    with pytest.raises(ConnectionError, match=r"could not download .*t10k-labels-idx1-ubyte.gz: IncompleteRead"):
        data.fetch(server.url + "t10k-labels-idx1-ubyte.gz", tmp_path / "f.gz", data.SHA256["mnist"]["t10k-labels-idx1-ubyte.gz"])
    good = Server(server.files)
    try:
        X, y = data.mnist("test", root=tmp_path, mirrors=(server.url, good.url))
        assert y.shape == (4,) and "t10k-labels-idx1-ubyte.gz" in good.requests
    finally:
        good.close()


def test_a_trickling_server_times_out_in_total(server, tmp_path):
    server.trickle.add("t10k-labels-idx1-ubyte.gz")  # ~50 bytes a second, each read well within `timeout`
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=r"took longer than total_timeout=0.3 s \(\d+ bytes so far\): the server is too slow"):
        data.fetch(server.url + "t10k-labels-idx1-ubyte.gz", tmp_path / "f.gz", "0" * 64, timeout=5, total_timeout=0.3)
    assert time.monotonic() - start < 3
    assert list(tmp_path.iterdir()) == []


def test_one_mirror_given_as_a_string_is_one_mirror(server, tmp_path):
    """A string was iterated by character: "h", "t", "t", "p", … were each tried as a mirror."""
    X, _ = data.mnist("test", root=tmp_path, mirrors=server.url.rstrip("/"))
    assert X.shape == (4, 784) and len(server.requests) == 2
    with pytest.raises(TypeError, match=r"`mirrors` must be a base URL or a sequence of base URLs, got \(\)"):
        data.mnist("test", root=tmp_path, mirrors=())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_suggests_digits(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(ConnectionError, match=r"Offline\? vaelab.data.digits\(\) gives 8x8 digits with no network"):
        data.mnist("train", root=tmp_path, mirrors=(dead,))
    assert not any((tmp_path / "mnist").iterdir())


def test_fetch_checksum_error_is_value_error(server, tmp_path):
    with pytest.raises(ValueError, match="expected sha256 0+, got [0-9a-f]{64}"):
        data.fetch(server.url + "t10k-labels-idx1-ubyte.gz", tmp_path / "f.gz", "0" * 64)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x09\x01" + (3).to_bytes(4, "big") + b"abc"))
    with pytest.raises(ValueError, match="is not an IDX file of unsigned bytes"):
        data.read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match=r"should hold 5 values for shape \(5,\), got 3"):
        data.read_idx(short)


@pytest.mark.parametrize("kwargs, msg", [(dict(split="val"), "`split` must be one of 'train', 'test'; got 'val'"),
                                         (dict(kind="kmnist"), "`kind` must be one of 'mnist', 'fashion'; got 'kmnist'")])
def test_mnist_bad_input(kwargs, msg, tmp_path):
    with pytest.raises(ValueError, match=msg):
        data.mnist(root=tmp_path, **kwargs)


def test_real_checksums_are_well_formed():
    for kind in ("mnist", "fashion"):
        assert set(data.SHA256[kind]) == {n for pair in data._FILES.values() for n in pair}
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in data.SHA256[kind].values())
