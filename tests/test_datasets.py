"""Tests for nncore.datasets: IDX parsing, download/verify/cache, loaders, sample.

No test touches the internet or the real ``~/.nncore``: an autouse fixture
points ``NNCORE_HOME`` at a temporary folder and the mirror list at a closed
local port.  Download tests use a local ``http.server`` on 127.0.0.1 serving a
small fake four-file dataset (its own hash table), plus one end-to-end run
with the real Fashion-MNIST files when they are present.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import shutil
import socket
import struct
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from nncore.datasets import DatasetUnavailableError, fashion_mnist, mnist
from nncore.datasets import _download, _idx, _mnist_format, _sample
from nncore.datasets._mnist_format import FILE_NAMES

# --------------------------------------------------------------------------
# Where the real Fashion-MNIST files are (decided once, before any fixture
# changes the environment): an already-set NNCORE_DATA_DIR, else
# <repo>/../shared/data/fashion-mnist.
# --------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]


def _find_real_fmnist():
    candidates = [os.environ.get("NNCORE_DATA_DIR"), REPO.parent / "shared" / "data" / "fashion-mnist"]
    for c in candidates:
        if c and all((Path(c) / n).is_file() for n in FILE_NAMES):
            return Path(c)
    return None


REAL_FMNIST = _find_real_fmnist()
needs_real = pytest.mark.skipif(
    REAL_FMNIST is None,
    reason="real Fashion-MNIST files not found (set NNCORE_DATA_DIR or provide "
           "<repo>/../shared/data/fashion-mnist with the 4 .gz files)")


def _closed_port_url():
    """A base URL on 127.0.0.1 where nothing listens (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Temporary cache home, no user data dir, and no reachable mirror."""
    monkeypatch.setenv("NNCORE_HOME", str(tmp_path / "nncore_home"))
    monkeypatch.delenv("NNCORE_DATA_DIR", raising=False)
    monkeypatch.setenv("NNCORE_DATASET_MIRRORS", _closed_port_url())
    yield


# --------------------------------------------------------------------------
# Helpers: IDX writers, a fake dataset, a local HTTP server
# --------------------------------------------------------------------------
def idx_bytes(arr, type_code=0x08):
    arr = np.asarray(arr)
    header = struct.pack(">HBB", 0, type_code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_gz(path, payload):
    with gzip.open(path, "wb") as f:
        f.write(payload)
    return path


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


class FakeDataset:
    """A tiny four-file MNIST-style dataset with its own hash table."""

    def __init__(self, folder: Path, n_train=40, n_test=10):
        rng = np.random.default_rng(0)
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.x_train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
        self.y_train = rng.integers(0, 10, n_train, dtype=np.uint8)
        self.x_test = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
        self.y_test = rng.integers(0, 10, n_test, dtype=np.uint8)
        arrays = dict(zip(FILE_NAMES, (self.x_train, self.y_train, self.x_test, self.y_test)))
        self.blobs = {}
        for name, arr in arrays.items():
            write_gz(folder / name, idx_bytes(arr))
            self.blobs[name] = (folder / name).read_bytes()
        sha = {n: sha256_bytes(b) for n, b in self.blobs.items()}
        sizes = {n: len(b) for n, b in self.blobs.items()}
        self.spec = _mnist_format.make_spec("nncore_test_fake", "FakeMNIST", sha, sizes)

    def load(self, mirrors, **kw):
        kw.setdefault("progress", True)
        return _mnist_format.load(self.spec, [], mirrors=mirrors, **kw)

    def check(self, result):
        (xtr, ytr), (xte, yte) = result
        np.testing.assert_array_equal(xtr, self.x_train)
        np.testing.assert_array_equal(ytr, self.y_train)
        np.testing.assert_array_equal(xte, self.x_test)
        np.testing.assert_array_equal(yte, self.y_test)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


class LocalServer:
    """http.server on 127.0.0.1 (ephemeral port) in a thread, counting requests."""

    def __init__(self, root: Path):
        self.requests = []
        server_self = self

        class Handler(_QuietHandler):
            def do_GET(self):
                server_self.requests.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.port = self.httpd.server_address[1]
        # Short poll interval: shutdown() waits up to one interval.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def url(self, sub=""):
        return f"http://127.0.0.1:{self.port}/{sub}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def fake(tmp_path):
    return FakeDataset(tmp_path / "www" / "good")


@pytest.fixture
def server(tmp_path, fake):
    """Serves tmp_path/www: /good/ holds the fake dataset; tests add folders."""
    srv = LocalServer(tmp_path / "www")
    yield srv
    srv.close()


def cache_folder(spec):
    return Path(_download.cache_dir(spec.name))


def assert_clean_cache(spec):
    """Only verified, complete files in the cache; no temporary leftovers."""
    folder = cache_folder(spec)
    if not folder.exists():
        return
    for p in folder.iterdir():
        assert not p.name.endswith(".part"), f"temporary file left behind: {p}"
        assert sha256_bytes(p.read_bytes()) == spec.file(p.name).sha256


# --------------------------------------------------------------------------
# Module layout / API surface
# --------------------------------------------------------------------------
def test_public_api_and_submodules():
    import nncore.datasets
    import nncore.datasets.fashion_mnist as fm

    assert nncore.datasets.fashion_mnist is fm
    assert callable(nncore.datasets.mnist.load_data)
    assert len(fashion_mnist.CLASS_NAMES) == 10
    assert fashion_mnist.CLASS_NAMES[0] == "T-shirt/top" and fashion_mnist.CLASS_NAMES[9] == "Ankle boot"
    assert issubclass(DatasetUnavailableError, FileNotFoundError)
    for table in (fashion_mnist.SHA256, mnist.SHA256):
        assert set(table) == set(FILE_NAMES)
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in table.values())
    assert fashion_mnist.MIRRORS[0].startswith("https://storage.googleapis.com/tensorflow/tf-keras-datasets")
    assert mnist.MIRRORS[0].startswith("https://storage.googleapis.com/cvdf-datasets/mnist")


def test_fashion_mnist_sha256_matches_shared_sums():
    sums = REPO.parent / "shared" / "data" / "fashion-mnist" / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip(f"{sums} not present")
    table = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
    for name, digest in fashion_mnist.SHA256.items():
        assert table[name] == digest


def test_cache_dir_follows_nncore_home(tmp_path, monkeypatch):
    monkeypatch.setenv("NNCORE_HOME", str(tmp_path / "h"))
    assert Path(_download.cache_dir("fashion_mnist")) == tmp_path / "h" / "datasets" / "fashion_mnist"
    monkeypatch.delenv("NNCORE_HOME")
    assert Path(_download.cache_dir("mnist")) == Path.home() / ".nncore" / "datasets" / "mnist"


# --------------------------------------------------------------------------
# Real Fashion-MNIST (loaded once for the module: ~0.3-1 s)
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_fmnist(tmp_path_factory):
    if REAL_FMNIST is None:
        pytest.skip("real Fashion-MNIST files not found")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NNCORE_DATA_DIR", str(REAL_FMNIST))
        mp.setenv("NNCORE_HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("NNCORE_DATASET_MIRRORS", _closed_port_url())
        return fashion_mnist.load_data(download=False)


@needs_real
def test_real_fashion_mnist_shapes_dtypes_stats(real_fmnist):
    (x_train, y_train), (x_test, y_test) = real_fmnist
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and x_test.dtype == np.uint8
    assert y_test.shape == (10000,) and y_test.dtype == np.uint8
    assert np.bincount(y_train, minlength=10).tolist() == [6000] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [1000] * 10
    assert x_train.mean() / 255 == pytest.approx(0.2860, abs=5e-5)
    assert x_test.mean() / 255 == pytest.approx(0.2868, abs=5e-5)
    assert x_train.flags.writeable  # like Keras: ordinary, writable arrays


@needs_real
def test_real_sample_is_genuine_prefix(real_fmnist):
    (x_train, y_train), (x_test, y_test) = real_fmnist
    (sx_train, sy_train), (sx_test, sy_test) = fashion_mnist.load_sample()
    n, m = len(sx_train), len(sx_test)
    assert (n, m) == (_sample.SAMPLE_TRAIN, _sample.SAMPLE_TEST)
    np.testing.assert_array_equal(sx_train, x_train[:n])
    np.testing.assert_array_equal(sy_train, y_train[:n])
    np.testing.assert_array_equal(sx_test, x_test[:m])
    np.testing.assert_array_equal(sy_test, y_test[:m])


@needs_real
def test_real_fashion_mnist_download_end_to_end(real_fmnist, capsys):
    """Serve the real files over local HTTP; download, verify, cache, reuse."""
    srv = LocalServer(REAL_FMNIST)
    try:
        got = fashion_mnist.load_data(mirrors=[_closed_port_url(), srv.url()])
        assert sorted(srv.requests) == sorted("/" + n for n in FILE_NAMES)
    finally:
        srv.close()
    for a, b in zip(got[0] + got[1], real_fmnist[0] + real_fmnist[1]):
        np.testing.assert_array_equal(a, b)
    assert_clean_cache(fashion_mnist.SPEC)
    assert "Downloading http://127.0.0.1" in capsys.readouterr().err
    # Server gone, downloads disabled: now served from the cache.  Check the
    # lookup only (no second 1 s parse of the train images).
    paths = _download.fetch(fashion_mnist.SPEC, [], download=False)
    assert all(Path(p).parent == cache_folder(fashion_mnist.SPEC) for p in paths.values())


# --------------------------------------------------------------------------
# Bundled sample and the fallback helper
# --------------------------------------------------------------------------
def test_sample_shapes_and_size():
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_sample()
    assert x_train.shape == (2000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (2000,) and y_train.dtype == np.uint8
    assert x_test.shape == (500, 28, 28) and x_test.dtype == np.uint8
    assert y_test.shape == (500,) and y_test.dtype == np.uint8
    assert set(np.unique(y_train)) == set(range(10))
    assert os.path.getsize(_sample.SAMPLE_PATH) < 2_000_000
    # Plain arrays only: loading with pickle disabled must work (it did above)
    with np.load(_sample.SAMPLE_PATH, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["x_test", "x_train", "y_test", "y_train"]
    second = fashion_mnist.load_data(sample=True)
    np.testing.assert_array_equal(second[0][0], x_train)


def test_load_data_or_sample_falls_back_with_one_line(capsys):
    (x_train, _), (x_test, _) = fashion_mnist.load_data_or_sample()
    assert x_train.shape == (2000, 28, 28) and x_test.shape == (500, 28, 28)
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "sample" in err and "NNCORE_DATA_DIR" in err
    assert str(cache_folder(fashion_mnist.SPEC)) in err


@needs_real
def test_load_data_or_sample_prefers_full_set(monkeypatch, capsys):
    monkeypatch.setenv("NNCORE_DATA_DIR", str(REAL_FMNIST))
    # Label files only would do, but the public helper loads everything; use
    # the real folder and just check it did not fall back.
    (x_train, _), _ = fashion_mnist.load_data_or_sample(download=False)
    assert x_train.shape == (60000, 28, 28)
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------
# Download / verify / cache, with the fake dataset on a local server
# --------------------------------------------------------------------------
def test_download_then_cache_without_network(fake, server, capsys):
    fake.check(fake.load([server.url("good/")]))
    assert len(server.requests) == 4
    assert_clean_cache(fake.spec)
    assert len(list(cache_folder(fake.spec).iterdir())) == 4
    err = capsys.readouterr().err
    assert err.count("Downloading http://127.0.0.1") == 4 and "done" in err
    # Second call: from the cache, no request at all (even with the server up).
    fake.check(fake.load([server.url("good/")]))
    assert len(server.requests) == 4
    # ... and with no network whatsoever.
    fake.check(fake.load([_closed_port_url()], download=False))


def test_dead_first_mirror_falls_back_to_second(fake, server):
    fake.check(fake.load([_closed_port_url(), server.url("good/")]))
    assert_clean_cache(fake.spec)


def test_missing_file_on_first_mirror_falls_back(fake, server, tmp_path):
    (tmp_path / "www" / "empty").mkdir()  # answers 404 for every file
    fake.check(fake.load([server.url("empty/"), server.url("good/")]))
    assert sum(r.startswith("/empty/") for r in server.requests) == 4


@pytest.mark.parametrize("damage", ["flip", "truncate", "extra"])
def test_corrupt_first_mirror_is_deleted_and_next_used(fake, server, tmp_path, damage):
    bad = tmp_path / "www" / "bad"
    bad.mkdir()
    for name, blob in fake.blobs.items():
        b = bytearray(blob)
        if damage == "flip":
            b[len(b) // 2] ^= 0xFF
            b[-5] ^= 0x01
        elif damage == "truncate":
            del b[len(b) // 2:]
        else:
            b += b"\0" * 100
        (bad / name).write_bytes(bytes(b))
    fake.check(fake.load([server.url("bad/"), server.url("good/")]))
    assert sum(r.startswith("/bad/") for r in server.requests) == 4
    assert_clean_cache(fake.spec)  # corrupt copies never reached the cache


def test_all_mirrors_fail_raises_one_clear_error(fake, server, tmp_path):
    bad = tmp_path / "www" / "bad"
    bad.mkdir()
    for name, blob in fake.blobs.items():
        (bad / name).write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(DatasetUnavailableError) as info:
        fake.load([_closed_port_url(), server.url("bad/"), server.url("missing/")])
    msg = str(info.value)
    assert "NNCORE_DATA_DIR" in msg
    assert str(cache_folder(fake.spec)) in msg
    for name in FILE_NAMES:
        assert name in msg
    assert "cannot connect" in msg and "SHA-256" in msg and "HTTP 404" in msg
    assert_clean_cache(fake.spec)
    assert not cache_folder(fake.spec).exists() or not any(cache_folder(fake.spec).iterdir())


def test_public_loaders_raise_clear_error_offline():
    for module, name in ((fashion_mnist, "fashion_mnist"), (mnist, "mnist")):
        with pytest.raises(DatasetUnavailableError) as info:
            module.load_data()  # mirrors come from NNCORE_DATASET_MIRRORS (dead)
        msg = str(info.value)
        assert "NNCORE_DATA_DIR" in msg and os.path.join("datasets", name) in msg
        assert "train-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg


def test_download_false_never_touches_network(fake, server):
    with pytest.raises(DatasetUnavailableError, match="downloads disabled"):
        fake.load([server.url("good/")], download=False)
    assert server.requests == []


def test_mirror_override_precedence(fake, server, monkeypatch):
    assert _download.resolve_mirrors(["http://a/"], None) == [os.environ["NNCORE_DATASET_MIRRORS"]]
    monkeypatch.setenv("NNCORE_DATASET_MIRRORS", f"{_closed_port_url()}, {server.url('good')}")
    fake.check(fake.load(None))  # env var used (and missing trailing "/" fixed)
    monkeypatch.delenv("NNCORE_DATASET_MIRRORS")
    assert _download.resolve_mirrors(["http://a/x"], None) == ["http://a/x/"]
    assert _download.resolve_mirrors(["http://a/"], "http://b/") == ["http://b/"]


def test_module_level_mirrors_list_is_used(monkeypatch):
    monkeypatch.delenv("NNCORE_DATASET_MIRRORS")
    dead = _closed_port_url()
    monkeypatch.setattr(fashion_mnist, "MIRRORS", [dead])
    with pytest.raises(DatasetUnavailableError) as info:
        fashion_mnist.load_data()
    assert dead in str(info.value)


def test_non_http_mirror_rejected(fake, tmp_path):
    with pytest.raises(DatasetUnavailableError, match="unsupported URL scheme"):
        fake.load([(tmp_path / "www" / "good").as_uri() + "/"])


def test_data_dir_takes_priority_over_cache_and_network(fake, server, monkeypatch):
    monkeypatch.setenv("NNCORE_DATA_DIR", str(fake.folder))
    fake.check(fake.load([server.url("good/")]))
    assert server.requests == []
    assert not cache_folder(fake.spec).exists()


def test_data_dir_subfolder_named_after_dataset(fake, tmp_path, monkeypatch):
    """$NNCORE_DATA_DIR/<name>/ wins over $NNCORE_DATA_DIR (shared file names)."""
    root = tmp_path / "data"
    shutil.copytree(fake.folder, root / fake.spec.name)
    for name in FILE_NAMES:  # other dataset's files with the same names
        (root / name).write_bytes(b"not this one")
    monkeypatch.setenv("NNCORE_DATA_DIR", str(root))
    fake.check(fake.load([]))


def test_data_dir_file_with_wrong_hash_is_used_with_warning(fake, tmp_path, monkeypatch):
    user = tmp_path / "user"
    shutil.copytree(fake.folder, user)
    # A valid IDX file, but not the "official" one of this dataset.
    write_gz(user / FILE_NAMES[1], idx_bytes(np.zeros(len(fake.y_train), np.uint8)))
    monkeypatch.setenv("NNCORE_DATA_DIR", str(user))
    with pytest.warns(RuntimeWarning, match="SHA-256 differs"):
        (_, y_train), _ = fake.load([])
    assert not y_train.any()


def test_corrupt_cache_file_is_replaced(fake, server):
    fake.check(fake.load([server.url("good/")]))
    victim = cache_folder(fake.spec) / FILE_NAMES[0]
    victim.write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning, match="cached file is corrupt"):
        fake.check(fake.load([server.url("good/")]))
    assert server.requests.count("/good/" + FILE_NAMES[0]) == 2
    assert_clean_cache(fake.spec)


def test_progress_bar_renders_on_terminal():
    out = io.StringIO()
    bar = _download._ProgressBar("http://x/f.gz", total=2_000_000, stream=out, live=True)
    bar.update(1_000_000)
    bar.close(2_000_000, ok=True)
    text = out.getvalue()
    assert text.startswith("Downloading http://x/f.gz\n")
    assert "\r[###############" in text and " 50.0%" in text
    assert "100.0% 2.0 MB/2.0 MB done\n" in text


# --------------------------------------------------------------------------
# MNIST specifics
# --------------------------------------------------------------------------
def test_mnist_keras_npz_path(tmp_path):
    path = tmp_path / "my_mnist.npz"
    x_tr = np.zeros((60000, 28, 28), np.uint8)
    x_tr[0, 0, 0] = 7
    np.savez(path, x_train=x_tr, y_train=np.ones(60000, np.uint8),
             x_test=np.zeros((10000, 28, 28), np.uint8), y_test=np.zeros(10000, np.uint8))
    (x_train, y_train), (x_test, _) = mnist.load_data(path=str(path))
    assert x_train[0, 0, 0] == 7 and y_train.shape == (60000,) and x_test.shape == (10000, 28, 28)
    np.savez(path, x_train=np.zeros((5, 28, 28), np.uint8), y_train=np.zeros(5, np.uint8),
             x_test=x_test, y_test=np.zeros(10000, np.uint8))
    with pytest.raises(ValueError, match="x_train"):
        mnist.load_data(path=str(path))


def test_mnist_loader_with_fake_files_in_data_dir(tmp_path, monkeypatch):
    """mnist.load_data parses the IDX files and enforces the official counts."""
    fake = FakeDataset(tmp_path / "m", n_train=3, n_test=2)
    monkeypatch.setenv("NNCORE_DATA_DIR", str(fake.folder))
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="dimension 0 is 3, expected 60000"):
        mnist.load_data()


# --------------------------------------------------------------------------
# IDX parser: malformed and hostile files
# --------------------------------------------------------------------------
def _gz(tmp_path, payload, name="x-idx3-ubyte.gz"):
    return write_gz(tmp_path / name, payload)


def test_idx_roundtrip_gz_and_raw(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(_idx.read_idx(_gz(tmp_path, idx_bytes(arr))), arr)
    raw = tmp_path / "raw-idx3-ubyte"
    raw.write_bytes(idx_bytes(arr))
    np.testing.assert_array_equal(_idx.read_idx(raw, expected_shape=(None, 3, 4)), arr)
    ints = np.array([[1, -2], [300000, 4]], dtype=np.int32)
    got = _idx.read_idx(_gz(tmp_path, idx_bytes(ints, 0x0C), "i.gz"))
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, ints)


@pytest.mark.parametrize("header, match", [
    (b"\x00\x01\x08\x03", "bad magic"),
    (b"\x00\x00\x07\x03", "unknown element type"),
    (b"\x00\x00\x08\x01", "declares 1 dimension"),
    (b"\x00\x00\x08", "truncated header"),
    (b"", "truncated header"),
])
def test_idx_bad_magic(tmp_path, header, match):
    payload = header + struct.pack(">3I", 1, 28, 28) + bytes(784) if len(header) == 4 else header
    path = _gz(tmp_path, payload)
    with pytest.raises(ValueError, match=match) as info:
        _idx.read_idx(path, expected_shape=(None, 28, 28), expected_dtype=np.uint8)
    assert path.name in str(info.value)


def test_idx_wrong_image_size(tmp_path):
    path = _gz(tmp_path, idx_bytes(np.zeros((2, 27, 28), np.uint8)))
    with pytest.raises(ValueError, match="dimension 1 is 27, expected 28"):
        _idx.read_idx(path, expected_shape=(None, 28, 28))


def test_idx_wrong_dtype(tmp_path):
    path = _gz(tmp_path, idx_bytes(np.zeros(3, np.int32), 0x0C))
    with pytest.raises(ValueError, match="expected uint8"):
        _idx.read_idx(path, expected_dtype=np.uint8)


def test_idx_truncated_payload(tmp_path):
    full = idx_bytes(np.zeros((10, 28, 28), np.uint8))
    path = _gz(tmp_path, full[:-100])
    with pytest.raises(ValueError, match="truncated payload") as info:
        _idx.read_idx(path)
    assert path.name in str(info.value)


def test_idx_trailing_garbage(tmp_path):
    path = _gz(tmp_path, idx_bytes(np.zeros(5, np.uint8)) + b"junk")
    with pytest.raises(ValueError, match="trailing data"):
        _idx.read_idx(path)


@pytest.mark.parametrize("count", [10**12 // 784, 2**32 - 1])
def test_idx_huge_declared_count_does_not_allocate(tmp_path, count):
    payload = struct.pack(">HBB3I", 0, 8, 3, count, 28, 28) + bytes(784)
    path = _gz(tmp_path, payload)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="limit"):
            _idx.read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


def test_idx_lying_header_costs_only_real_data(tmp_path):
    """Claim within the limits, but far more than present: memory stays small."""
    count = 1_000_000  # 784 MB claimed, ~1 KB present
    payload = struct.pack(">HBB3I", 0, 8, 3, count, 28, 28) + bytes(1000)
    raw = tmp_path / "lie-idx3-ubyte"  # raw: limit = file size -> rejected upfront
    raw.write_bytes(payload)
    with pytest.raises(ValueError, match="limit"):
        _idx.read_idx(raw)
    stream = io.BytesIO(payload)  # no size hint at all: streamed, then truncated
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="truncated payload"):
            _idx.parse_idx(stream, "lie")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


def test_idx_gzip_bomb_is_not_inflated(tmp_path):
    """A tiny header followed by 64 MB of zeros (~64 KB compressed): reading
    stops right after the declared payload."""
    path = tmp_path / "bomb-idx1-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">HBBI", 0, 8, 1, 10) + bytes(10))
        zeros = bytes(1 << 20)
        for _ in range(64):
            f.write(zeros)
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="trailing data"):
            _idx.read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


def test_idx_corrupt_gzip(tmp_path):
    good = _gz(tmp_path, idx_bytes(np.arange(1000, dtype=np.uint8) % 7))
    blob = bytearray(good.read_bytes())
    blob[-6] ^= 0xFF  # CRC32 in the gzip trailer
    bad = tmp_path / "crc-idx1-ubyte.gz"
    bad.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="crc-idx1-ubyte.gz"):
        _idx.read_idx(bad)
    cut = tmp_path / "cut-idx1-ubyte.gz"
    cut.write_bytes(bytes(blob[: len(blob) // 2]))
    with pytest.raises(ValueError, match="cut-idx1-ubyte.gz"):
        _idx.read_idx(cut)


def test_split_consistency_checks(tmp_path):
    x = _gz(tmp_path, idx_bytes(np.zeros((3, 28, 28), np.uint8)), "x.gz")
    y2 = _gz(tmp_path, idx_bytes(np.zeros(2, np.uint8)), "y2.gz")
    y_bad = _gz(tmp_path, idx_bytes(np.array([0, 1, 10], np.uint8)), "ybad.gz")
    with pytest.raises(ValueError, match="3 images but"):
        _mnist_format._load_split(str(x), str(y2), None, (28, 28), 10)
    with pytest.raises(ValueError, match="label 10 out of range"):
        _mnist_format._load_split(str(x), str(y_bad), None, (28, 28), 10)


def test_idx_fuzz_only_valueerror():
    """Random / mutated byte strings never crash the parser with anything but
    ValueError, and never allocate beyond the stream's real size."""
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import given, settings, strategies as st

    base = idx_bytes(np.arange(12, dtype=np.uint8).reshape(1, 3, 4))

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.one_of(
        st.binary(max_size=64),
        st.tuples(st.integers(0, len(base) - 1), st.integers(0, 255)).map(
            lambda t: base[:t[0]] + bytes([t[1]]) + base[t[0] + 1:]),
        st.integers(0, len(base)).map(lambda n: base[:n]),
    ))
    def check(data):
        try:
            arr = _idx.parse_idx(io.BytesIO(data), "fuzz", max_bytes=1 << 20)
        except ValueError:
            return
        assert arr.nbytes <= len(data)

    check()
    assert hypothesis  # imported
