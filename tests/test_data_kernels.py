"""The passes over user inputs (src_cython/data.pyx) against their NumPy twin
(nncore/ops/data.py), and what nncore/models/data.py makes of them: the
first bad value named in the error, a shuffled batch of a big float64 input
converted for a float32 model."""
import numpy as np
import pytest

from nncore.models import data as D
from nncore.ops import data as T

C = pytest.importorskip("nncore._ext.data")


@pytest.mark.parametrize("src", [np.float32, np.float64])
@pytest.mark.parametrize("dst", [np.float32, np.float64])
@pytest.mark.parametrize("n,F", [(3, 5), (64, 20000)])      # one thread / shared rows
def test_gather_rows_equals_twin(src, dst, n, F):
    rng = np.random.default_rng(n)
    a = rng.uniform(-1, 1, size=(n + 7, F)).astype(src)
    rows = rng.integers(0, n + 7, size=n).astype(np.intp)
    got, want = np.full((n, F), 7.0, dst), np.full((n, F), 7.0, dst)
    assert C.gather_rows(a, rows, got, 2.0) == T.gather_rows(a, rows, want, 2.0) == -1
    assert np.array_equal(got, want)
    assert np.array_equal(got, a[rows].astype(dst))
    # the first bad value of the gathered rows, as a flat index into out
    a[rows[-1], F - 1] = np.nan
    a[rows[n // 2], F // 2] = 3.0              # beyond the limit, and earlier
    k = list(rows).index(rows[n // 2])         # the first k holding that row
    first = k * F + F // 2
    assert C.gather_rows(a, rows, got, 2.0) == T.gather_rows(a, rows, want, 2.0) == first
    assert np.array_equal(got, want, equal_nan=True)


def test_gather_rows_refuses_a_row_out_of_range_or_a_wrong_output():
    a = np.zeros((4, 3))
    with pytest.raises(IndexError, match="row 4 is out of range for 4 rows"):
        C.gather_rows(a, np.array([0, 4], np.intp), np.empty((2, 3), np.float32), 1.0)
    with pytest.raises(IndexError, match="row -1"):
        C.gather_rows(a, np.array([-1], np.intp), np.empty((1, 3), np.float32), 1.0)
    with pytest.raises(ValueError, match="out has shape"):
        C.gather_rows(a, np.array([0], np.intp), np.empty((2, 3), np.float32), 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 16383, 16384, 16385, 300001])
def test_first_bad_value_equals_twin(dtype, n):
    rng = np.random.default_rng(n)
    a = rng.uniform(-1, 1, size=n).astype(dtype)
    big = float(np.finfo(dtype).max)
    assert C.first_bad_value(a, big) == T.first_bad_value(a, big) == -1
    for where in sorted({0, n // 3, n - 1}) if n else []:
        for bad in (np.nan, np.inf, -np.inf, 5.0):
            b = a.copy()
            b[where] = bad
            b[-1] = np.nan if where != n - 1 else b[-1]    # a later bad value too
            for limit in (4.0, big):
                got = C.first_bad_value(b, limit)
                assert got == T.first_bad_value(b, limit), (where, bad, limit)
                if bad == 5.0 and limit == big:
                    assert got == (n - 1 if where != n - 1 else -1)
                else:
                    assert got == where


def test_as_features_names_the_first_bad_value():
    x = np.zeros((3000, 20, 30))
    x[1234, 4, 5] = np.nan
    x[2000, 1, 2] = np.inf
    with pytest.raises(ValueError, match=r"NaN or inf \(first at index \(1234, 4, 5\)\)"):
        D.as_features(x, "float32")
    x[1234, 4, 5] = 1e39                  # too large for float32 only
    with pytest.raises(ValueError, match=r"too large for float32.*\(1234, 4, 5\)"):
        D.as_features(x, "float32")
    with pytest.raises(ValueError, match=r"NaN or inf \(first at index \(2000, 1, 2\)\)"):
        D.as_features(x, "float64")
    x[2000, 1, 2] = 0
    assert D.as_features(x, "float64").shape == x.shape


def test_a_shuffled_batch_of_a_lazily_converted_input_is_the_rows_converted():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 6, 7))
    lazy = D.CastOnRead(base, np.float32)
    rows = rng.permutation(50)[:13]
    got = lazy[rows]
    assert got.dtype == np.float32 and got.flags.c_contiguous
    assert np.array_equal(got, base[rows].astype(np.float32))
    assert np.array_equal(lazy[10:20], base[10:20].astype(np.float32))
    # a view that is not C-contiguous takes the NumPy loop: the same rows
    lazy_t = D.CastOnRead(base[:, ::2], np.float32)
    assert np.array_equal(lazy_t[rows], base[rows, ::2].astype(np.float32))


def test_predict_checks_a_big_float64_input_as_it_converts_it(monkeypatch):
    """predict converts a big input of another dtype batch by batch and checks
    each batch as it converts it (no separate pass over the whole input):
    the error is the one as_features gives, naming the first bad value."""
    import nncore as keras
    monkeypatch.setattr(D, "LAZY_CAST_BYTES", 1 << 10)
    m = keras.Sequential([keras.Input((6, 40)), keras.layers.SimpleRNN(3),
                          keras.layers.Dense(1)])
    rng = np.random.default_rng(0)
    x = np.eye(40)[rng.integers(0, 40, size=(500, 6))]        # float64 one-hot
    lazy = D.as_features(x, "float32", lazy=True, check_later=True)
    assert isinstance(lazy, D.CastOnRead) and lazy.check_as == "x"
    good = m.predict(x, batch_size=64, verbose=0)
    assert np.allclose(good, m.predict(x.astype(np.float32), batch_size=64, verbose=0))
    for bad, message in ((np.inf, r"NaN or inf \(first at index \(321, 2, 7\)\)"),
                         (1e39, r"too large for float32 .*1e\+39 at index \(321, 2, 7\)")):
        y = x.copy()
        y[321, 2, 7] = bad
        y[400, 0, 0] = np.nan                  # a later one is not the one named
        with pytest.raises(ValueError, match=message):
            m.predict(y, batch_size=64, verbose=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [5, 8000])        # one chunk / rows shared by threads
def test_onehot_positions_equals_twin(dtype, n):
    rng = np.random.default_rng(n)
    F = 40
    cols = rng.integers(0, F, size=n)
    x = np.eye(F, dtype=dtype)[cols]
    x[::7] = 0                                  # rows of zeros
    want = np.where(x.any(axis=1), cols, -1)
    got, twin = np.full(n, 9, np.int32), np.full(n, 9, np.int32)
    assert C.onehot_positions(x, got) is True and T.onehot_positions(x, twin) is True
    assert np.array_equal(got, want) and np.array_equal(twin, want)
    # any row of another kind, first or last, makes the answer False
    for r, spoil in ((n - 1, "two"), (0, "two"), (n // 2, 2.0), (n // 3, -1.0),
                     (n - 1, np.nan), (1, 1e-30)):
        bad = x.copy()
        if spoil == "two":
            bad[r, :2] = 1
        else:
            bad[r, 3] = spoil
        assert C.onehot_positions(bad, got) is False, (r, spoil)
        assert T.onehot_positions(bad, twin) is False, (r, spoil)
    empty = np.zeros((0, F), dtype)
    assert C.onehot_positions(empty, got[:0]) is T.onehot_positions(empty, twin[:0]) is True
    with pytest.raises(ValueError, match="positions has 4 entries for 5 rows"):
        C.onehot_positions(x[:5], got[:4])
