"""nncore.datasets.imdb: Keras 3's exact processing, the restricted reader of
the file's object arrays (hostile files refused, nothing executed), finding
and downloading the file.

imdb_small.npz (tests/fixtures/imdb/make_imdb_fixture.py) is a tiny file in
Keras's exact format; imdb_golden.json (make_imdb_golden_tf.py, run with
TensorFlow) holds what Keras 3.15's own imdb.load_data returned for it.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nncore.datasets import DatasetUnavailableError, _download, _npy_objects, imdb
from nncore.datasets._npy_objects import UnsafeArrayError

from test_datasets import LocalServer, _closed_port_url, sha256_bytes

FIX = Path(__file__).resolve().parent / "fixtures" / "imdb"
SMALL = FIX / "imdb_small.npz"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("NNCORE_HOME", str(tmp_path / "nncore_home"))
    monkeypatch.delenv("NNCORE_DATA_DIR", raising=False)
    monkeypatch.setenv("NNCORE_DATASET_MIRRORS", _closed_port_url())


GOLDEN = json.loads((FIX / "imdb_golden.json").read_text())


def as_lists(x):
    return [list(r) for r in x]


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: repr(c["kwargs"]))
def test_load_data_equals_keras(case):
    (xtr, ytr), (xte, yte) = imdb.load_data(path=str(SMALL), **case["kwargs"])
    assert xtr.dtype == object and xtr.ndim == 1
    assert as_lists(xtr) == case["x_train"]
    assert as_lists(xte) == case["x_test"]
    assert ytr.tolist() == case["y_train"] and yte.tolist() == case["y_test"]
    assert str(ytr.dtype) == case["y_train_dtype"]
    assert all(type(w) is int for w in xtr[0])  # Python ints, as Keras gives


def test_processing_rules_by_hand():
    """The rules themselves, independent of the golden file."""
    raw = _npy_objects.load_npz_lists(str(SMALL), ("x_train",), ("y_train",))["x_train"]
    order = np.arange(len(raw))
    np.random.RandomState(113).shuffle(order)
    (xtr, _), _ = imdb.load_data(path=str(SMALL), num_words=10 ** 6)
    assert xtr[0] == [1] + [w + 3 for w in raw[order[0]]]
    # Keras's quirk kept: num_words=None means "below the largest index", so
    # the largest index itself becomes oov_char
    (xtr, _), (xte, _) = imdb.load_data(path=str(SMALL))
    top = max(w + 3 for r in raw for w in r)
    assert top not in {w for r in list(xtr) + list(xte) for w in r}
    (xtr, _), (xte, _) = imdb.load_data(path=str(SMALL), num_words=10, skip_top=4)
    words = [w for r in list(xtr) + list(xte) for w in r]
    assert set(words) <= set(range(4, 10)) | {2}
    (xtr, _), _ = imdb.load_data(path=str(SMALL), maxlen=20)
    assert max(len(r) for r in xtr) < 20      # long reviews dropped, not cut


def test_bad_arguments():
    with pytest.raises(TypeError, match="num_words"):
        imdb.load_data(path=str(SMALL), num_words=2.5)
    with pytest.raises(ValueError, match="no review is shorter than maxlen=2"):
        imdb.load_data(path=str(SMALL), maxlen=2)
    with pytest.raises(ValueError, match="skip_top"):
        imdb.load_data(path=str(SMALL), skip_top=-1)


# --------------------------------------------------------------------------
# Finding and downloading the file
# --------------------------------------------------------------------------
def test_offline_error_says_where_to_put_imdb_npz():
    with pytest.raises(DatasetUnavailableError) as info:
        imdb.load_data(progress=False)
    msg = str(info.value)
    assert "imdb.npz" in msg and "NNCORE_DATA_DIR" in msg
    assert not Path(_download.cache_dir("imdb")).exists()


@pytest.mark.parametrize("sub", ["", "imdb"])
def test_data_dir_file_with_other_hash_warns_and_is_used(tmp_path, monkeypatch, sub):
    folder = tmp_path / "data" / sub
    folder.mkdir(parents=True)
    (folder / "imdb.npz").write_bytes(SMALL.read_bytes())
    monkeypatch.setenv("NNCORE_DATA_DIR", str(tmp_path / "data"))
    with pytest.warns(RuntimeWarning, match="SHA-256 differs"):
        (xtr, _), _ = imdb.load_data()
    assert as_lists(xtr) == GOLDEN["cases"][0]["x_train"]


def test_download_from_local_server_verified_and_cached(tmp_path, monkeypatch, capsys):
    www = tmp_path / "www"
    www.mkdir()
    blob = SMALL.read_bytes()
    (www / "imdb.npz").write_bytes(blob)
    monkeypatch.setitem(imdb.SHA256, "imdb.npz", sha256_bytes(blob))
    srv = LocalServer(www)
    try:
        (xtr, _), _ = imdb.load_data(mirrors=[srv.url()])
        assert srv.requests == ["/imdb.npz"]
        assert "Downloading" in capsys.readouterr().err   # the progress bar
        cached = Path(_download.cache_dir("imdb")) / "imdb.npz"
        assert cached.read_bytes() == blob
        assert as_lists(xtr) == GOLDEN["cases"][0]["x_train"]
        imdb.load_data(mirrors=[srv.url()])             # from the cache now
        assert srv.requests == ["/imdb.npz"]
    finally:
        srv.close()


def test_download_with_wrong_hash_is_refused(tmp_path, monkeypatch):
    www = tmp_path / "www"
    www.mkdir()
    (www / "imdb.npz").write_bytes(SMALL.read_bytes())   # official digest differs
    srv = LocalServer(www)
    try:
        with pytest.raises(DatasetUnavailableError, match="corrupt download"):
            imdb.load_data(mirrors=[srv.url()], progress=False)
        assert not (Path(_download.cache_dir("imdb")) / "imdb.npz").exists()
    finally:
        srv.close()


def test_word_index_download_checked_by_md5(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "imdb_word_index.json").write_text('{"the": 1, "and": 2}')
    srv = LocalServer(www)
    try:   # not Keras's official file: its MD5 differs, so it is refused
        with pytest.raises(DatasetUnavailableError, match="corrupt download: MD5"):
            imdb.get_word_index(mirrors=[srv.url()], progress=False)
    finally:
        srv.close()
    path = tmp_path / "wi.json"
    path.write_text('{"the": 1, "and": 2}')
    assert imdb.get_word_index(str(path)) == {"the": 1, "and": 2}
    path.write_text('["the"]')
    with pytest.raises(ValueError, match="word: integer index"):
        imdb.get_word_index(str(path))


# --------------------------------------------------------------------------
# Hostile files: refused, nothing executed
# --------------------------------------------------------------------------
def npy_bytes(pickle_bytes, shape=(1,), descr="|O"):
    fp = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        fp, {"descr": descr, "fortran_order": False, "shape": shape})
    fp.write(pickle_bytes)
    return fp.getvalue()


def write_npz(path, x_train_npy):
    good = zipfile.ZipFile(SMALL)
    with zipfile.ZipFile(path, "w") as z:
        for name in good.namelist():
            z.writestr(name, x_train_npy if name == "x_train.npy" else good.read(name))
    return str(path)


def good_stream(rows):
    arr = np.empty(len(rows), dtype=object)
    for i, r in enumerate(rows):
        arr[i] = r
    return pickle.dumps(arr, protocol=2), arr   # noqa: S301 (writing only)


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_reader_accepts_numpy_streams_of_every_protocol():
    arr = np.empty(3, dtype=object)
    arr[:] = [[1, 2], [2 ** 40, -5], []]
    for proto in (2, 3, 4, 5):
        data = npy_bytes(pickle.dumps(arr, protocol=proto), (3,))
        out = _npy_objects.read_object_npy(data)
        assert [list(r) for r in out] == [[1, 2], [2 ** 40, -5], []]


def py2_stream():
    """What Python 2's cPickle (protocol 2) writes for a NumPy object array
    [[1, 2], [300, 70000]] -- the era Keras's imdb.npz comes from: GLOBAL
    opcodes, and Python 2 str (SHORT_BINSTRING) for b'b' and 'O8'.
    (pickle.loads of these bytes gives that array; checked when written.)"""
    s = b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x00cnumpy\nndarray\nq\x01"
    s += b"K\x00\x85q\x02U\x01bq\x03\x87q\x04Rq\x05(K\x01K\x02\x85q\x06"
    s += b"cnumpy\ndtype\nq\x07U\x02O8q\x08\x89\x88\x87q\x09Rq\x0a"
    s += b"(K\x03U\x01|q\x0bNNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tq\x0cb"
    s += b"\x89]q\x0d(]q\x0e(K\x01K\x02e]q\x0f(M,\x01J\x70\x11\x01\x00ee"
    s += b"tq\x10b."
    return s


def test_reader_accepts_python2_streams():
    out = _npy_objects.read_object_npy(npy_bytes(py2_stream(), (2,)))
    assert [list(r) for r in out] == [[1, 2], [300, 70000]]


def hostile_streams(tmp_path):
    marker = tmp_path / "pwned"
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = [1, 2], [3]
    base = pickle.dumps(arr, protocol=2)
    yield "os.system", pickle.dumps(Evil(marker), protocol=2), (1,), "not part of a NumPy array"
    arr_f = np.empty(1, dtype=object)
    arr_f[0] = [1.5]
    yield "float", pickle.dumps(arr_f, protocol=2), (1,), "BINFLOAT is not allowed"
    arr_d = np.empty(1, dtype=object)
    arr_d[0] = {"a": 1}
    yield "dict", pickle.dumps(arr_d, protocol=2), (1,), "EMPTY_DICT is not allowed"
    arr_c = np.empty(1, dtype=object)
    arr_c[0] = Path("/x")
    yield "class", pickle.dumps(arr_c, protocol=2), (1,), "not part of a NumPy array"
    arr_n = np.empty(1, dtype=object)
    arr_n[0] = [[1, 2]]
    yield "nested", pickle.dumps(arr_n, protocol=2), (1,), "holds a list, not an int"
    deep = []
    for _ in range(50):
        deep = [deep]
    arr_dp = np.empty(1, dtype=object)
    arr_dp[0] = deep
    yield "deep", pickle.dumps(arr_dp, protocol=2), (1,), "not an int"
    yield "truncated", base[: len(base) // 2], (2,), "truncated"
    yield "huge shape", base, (10 ** 12,), "header says"
    # a bytes opcode that claims 2 GB
    huge = b"\x80\x02B" + (2 ** 31 - 1).to_bytes(4, "little") + b"xx"
    yield "huge length", huge, (1,), "truncated or malformed"
    yield "not object", base, (2,), "expected object"


@pytest.mark.parametrize("which", ["os.system", "float", "dict", "class", "nested", "deep",
                                   "truncated", "huge shape", "huge length", "not object"])
def test_hostile_file_refused(tmp_path, which):
    streams = {name: rest for name, *rest in hostile_streams(tmp_path)}
    data, shape, message = streams[which]
    npy = npy_bytes(data, shape, descr="<i8" if which == "not object" else "|O")
    path = write_npz(tmp_path / "bad.npz", npy)
    with pytest.raises(UnsafeArrayError, match=message):
        imdb.load_data(path=path)
    assert not (tmp_path / "pwned").exists()


def test_zip_member_size_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(_npy_objects, "MAX_MEMBER_BYTES", 100)
    with pytest.raises(UnsafeArrayError, match="would unpack to"):
        imdb.load_data(path=str(SMALL))


def test_pickle_is_never_loaded(monkeypatch):
    """The reader only parses: pickle.load/loads must not run at all."""
    def boom(*a, **k):
        raise AssertionError("pickle executed")
    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)
    (xtr, _), _ = imdb.load_data(path=str(SMALL))
    assert len(xtr) == 60
    # and the opcodes the reader walks are the ones genops parses
    assert pickletools.genops is not None
