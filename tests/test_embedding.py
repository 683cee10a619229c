"""keras.layers.Embedding: lookup and scatter-add gradient (kernel and NumPy
twin), index checks, masks, Keras files and Keras exactness.

embedding_golden.npz / embedding_tf.keras come from
tests/fixtures/imdb/make_embedding_golden_tf.py (run with TensorFlow).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import nncore as keras
from nncore import backend
from nncore._ext import embedding as ext_embedding
from nncore.ops import embedding as ops_embedding

FIX = Path(__file__).resolve().parent / "fixtures" / "imdb"


@pytest.fixture(scope="module")
def golden():
    with np.load(FIX / "embedding_golden.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def book_model(mask_zero=False):
    m = keras.Sequential([keras.Input(shape=(7,)),
                          keras.layers.Embedding(50, 4, mask_zero=mask_zero),
                          keras.layers.Flatten(),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.01),
              loss="binary_crossentropy")
    return m


# --------------------------------------------------------------------------
# Kernel and twin
# --------------------------------------------------------------------------
def _case(dtype, n=300, v=40, d=9, seed=0):
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((v, d)).astype(dtype)
    idx = rng.integers(0, v, n).astype(np.intp)
    idx[:20] = 3                                  # many hits on one row
    grad = rng.standard_normal((n, d)).astype(dtype)
    return table, idx, grad


@pytest.mark.parametrize("d", [9, 8, 16, 32, 64, 3])     # the kernel's constant widths and others
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_equals_twin_bitwise(dtype, d):
    table, idx, grad = _case(dtype, d=d)
    outs, dts = [], []
    for mod in (ext_embedding, ops_embedding):
        out = np.empty((idx.shape[0], table.shape[1]), dtype)
        mod.embedding_forward(table, idx, out)
        dt = np.full_like(table, 7.0)             # must be overwritten, not added to
        mod.embedding_backward(grad, idx, dt)
        outs.append(out)
        dts.append(dt)
    np.testing.assert_array_equal(outs[0], table[idx])
    np.testing.assert_array_equal(outs[0], outs[1])
    assert dts[0].tobytes() == dts[1].tobytes()
    expect = np.zeros_like(table)
    for n, i in enumerate(idx):
        expect[i] += grad[n]
    assert dts[0].tobytes() == expect.tobytes()
    unused = np.setdiff1d(np.arange(table.shape[0]), idx)
    assert not dts[0][unused].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_index_check_kernel_equals_twin(dtype):
    """embedding_indices: the same indices for good input, the same first bad
    position for each kind of bad value (the layer raises from it)."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 40, 500).astype(dtype)
    for mod in (ext_embedding, ops_embedding):
        idx = np.full(500, -7, np.intp)
        assert mod.embedding_indices(x, 40, idx) == -1
        np.testing.assert_array_equal(idx, x.astype(np.intp))
        assert mod.embedding_indices(x, 40, None) == -1       # check only
    bad_values = [-1, 40, 1000]
    if np.dtype(dtype).kind == "f":
        bad_values += [2.5, -0.5, 39.5, np.nan, np.inf, -np.inf, 1e30]
    for v in bad_values:
        y = x.copy()
        y[[123, 321]] = v
        got = [mod.embedding_indices(y, 40, np.empty(500, np.intp))
               for mod in (ext_embedding, ops_embedding)]
        assert got == [123, 123], (v, got)


def test_index_check_of_a_huge_vocabulary_in_float32():
    """Past 2**24 rows a float32 index is checked in doubles (the vectorized
    test assumes exact floats): the same verdicts as the twin."""
    V = 2 ** 24 + 8
    x = np.array([0, 5, 2 ** 24, 2 ** 24 + 2, 2 ** 24 + 8, 3], np.float32)
    for mod in (ext_embedding, ops_embedding):
        idx = np.empty(6, np.intp)
        assert mod.embedding_indices(x[:4], V, idx[:4]) == -1
        np.testing.assert_array_equal(idx[:4], [0, 5, 2 ** 24, 2 ** 24 + 2])
        assert mod.embedding_indices(x, V, idx) == 4


def test_kernel_one_vs_two_threads_bitwise():
    table, idx, grad = _case(np.float32, n=70000, v=500, d=16)   # past the threading cutoff
    results = []
    before = keras.get_num_threads()
    try:
        for threads in (1, 2):
            keras.set_num_threads(threads)
            out = np.empty((idx.shape[0], 16), np.float32)
            ext_embedding.embedding_forward(table, idx, out)
            dt = np.empty_like(table)
            ext_embedding.embedding_backward(grad, idx, dt)
            results.append((out.tobytes(), dt.tobytes()))
    finally:
        keras.set_num_threads(before)
    assert results[0] == results[1]


def test_kernel_rejects_mismatched_arrays():
    table, idx, grad = _case(np.float32)
    with pytest.raises(ValueError, match="indices for"):
        ext_embedding.embedding_forward(table, idx[:-1], np.empty((300, 9), np.float32))
    with pytest.raises(ValueError, match="rows of"):
        ext_embedding.embedding_backward(grad, idx, np.empty((40, 8), np.float32))


def test_finite_differences_float64():
    """dL/dE by the layer's backward against central differences of
    L = sum(R * Embedding(x)) in float64."""
    keras.utils.set_random_seed(0)
    layer = keras.layers.Embedding(6, 3, dtype="float64")
    x = np.array([[0, 2, 2, 5], [5, 1, 2, 0]])
    layer(x)
    rng = np.random.default_rng(1)
    r = rng.standard_normal((2, 4, 3))
    layer.forward(x, training=True)
    layer.backward(r)
    analytic = layer.grads[0].copy()
    e = layer.embeddings.value
    numeric = np.zeros_like(e)
    h = 1e-6
    for i in range(e.shape[0]):
        for j in range(e.shape[1]):
            old = e[i, j]
            e[i, j] = old + h
            up = float((layer.forward(x) * r).sum())
            e[i, j] = old - h
            down = float((layer.forward(x) * r).sum())
            e[i, j] = old
            numeric[i, j] = (up - down) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)
    assert not analytic[3].any() and not analytic[4].any()     # unused rows


# --------------------------------------------------------------------------
# The layer as a learner uses it
# --------------------------------------------------------------------------
def test_book_summary_parameter_count():
    m = keras.Sequential()
    m.add(keras.layers.Embedding(200, 16, input_shape=(100,)))
    m.add(keras.layers.Flatten())
    m.add(keras.layers.Dense(1, activation="sigmoid"))
    m.build()
    assert m.layers[0].count_params() == 3200
    assert m.layers[0].output_shape == (None, 100, 16)
    assert m.count_params() == 3200 + 1601
    assert m.layers[0].weight_shapes((None, 100)) == [(200, 16)]
    assert m.layers[0].embeddings.name == "embeddings"


def test_default_initializer_is_keras_uniform():
    keras.utils.set_random_seed(0)
    e = keras.layers.Embedding(1000, 50)
    e.build((None, 3))
    v = e.embeddings.value
    assert v.dtype == np.float32 and -0.05 <= v.min() < -0.045 and 0.045 < v.max() <= 0.05


@pytest.mark.parametrize("bad,message", [
    (np.array([[1, 50]]), r"index 50 at position \(0, 1\) is out of range: indices must be in 0\.\.49"),
    (np.array([[-1, 3]]), r"index -1 at position \(0, 0\) is out of range"),
    (np.array([[1.5, 3.0]]), r"input 1\.5 at index \(0, 0\) is not an integer word index"),
    (np.array([[np.nan, 3.0]]), r"input nan at index \(0, 0\) is not an integer word index"),
])
def test_bad_indices_are_clear_errors_naming_the_layer(bad, message):
    layer = keras.layers.Embedding(50, 4, name="words")
    layer.build((None, 2))
    with pytest.raises(ValueError, match="Embedding 'words': " + message):
        layer.forward(bad)


def test_model_with_out_of_range_data_names_the_layer():
    m = book_model()
    x = np.full((2, 7), 3)
    x[1, 6] = 60
    with pytest.raises(ValueError, match=r"index 60 at position \(1, 6\)"):
        m.fit(x, np.zeros(2), verbose=0)


def test_float_inputs_holding_ints_work_as_ints():
    keras.utils.set_random_seed(0)
    layer = keras.layers.Embedding(10, 2)
    xi = np.array([[1, 9, 0]])
    a = layer(xi)
    b = layer(xi.astype(np.float32))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0], layer.embeddings.value[[1, 9, 0]])


def test_constructor_arguments():
    with pytest.raises(ValueError, match="`input_dim` must be a positive integer"):
        keras.layers.Embedding(0, 4)
    with pytest.raises(ValueError, match="`output_dim` must be a positive integer"):
        keras.layers.Embedding(5, 2.0)
    with pytest.warns(UserWarning, match="input_length` is deprecated"):
        e = keras.layers.Embedding(5, 2, input_length=10)
    assert e.input_dim == 5
    with pytest.raises(ValueError, match="embeddings_constraint is not supported"):
        keras.layers.Embedding(5, 2, embeddings_constraint="non_neg")
    w = np.arange(10, dtype=np.float32).reshape(5, 2)
    e = keras.layers.Embedding(5, 2, weights=[w])
    np.testing.assert_array_equal(e(np.array([[4]]))[0, 0], w[4])


def test_mask_zero():
    e = keras.layers.Embedding(5, 2, mask_zero=True)
    assert e.supports_masking
    np.testing.assert_array_equal(e.compute_mask(np.array([[0, 3, 0, 1]])),
                                  [[False, True, False, True]])
    plain = keras.layers.Embedding(5, 2)
    assert not plain.supports_masking and plain.compute_mask(np.array([[0, 1]])) is None


def test_describe_for_trace():
    e = keras.layers.Embedding(200, 16, mask_zero=True)
    line, back = e.describe(None)
    assert "0..199" in line and "16" in line and "masked" in line
    assert "dE[i]" in back


def test_regularizer_adds_penalty_and_gradient():
    keras.utils.set_random_seed(0)
    e = keras.layers.Embedding(4, 2, embeddings_regularizer=keras.regularizers.l2(0.1),
                               dtype="float64")
    e.build((None, 1))
    e.forward(np.array([[1]]))
    e.backward(np.zeros((1, 1, 2)))
    pen = e.regularization(add_grads=True)
    w = e.embeddings.value
    assert pen == pytest.approx(0.1 * (w ** 2).sum())
    np.testing.assert_allclose(e.grads[0], 0.2 * w)


def test_backends_train_alike():
    name = "cython"
    x = np.random.default_rng(0).integers(0, 50, (64, 7))
    y = (x[:, 0] > 25).astype(np.float32)
    keras.utils.set_random_seed(3)
    with backend.use(name):
        m = book_model()
        m.fit(x, y, epochs=3, batch_size=16, verbose=0)
        w = m.get_weights()
    keras.utils.set_random_seed(3)
    with backend.use("numpy"):
        ref = book_model()
        ref.fit(x, y, epochs=3, batch_size=16, verbose=0)
    for a, b in zip(w, ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------
# Keras exactness (fixtures made by TensorFlow)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("tag", ["", "mask_"])
def test_forward_and_rmsprop_step_equal_tensorflow(golden, tag):
    """Forward, loss, Dense weights and every embedding row used once in the
    batch equal TensorFlow's after one RMSprop step.

    Rows used several times in one batch differ, by design: Keras 3 on
    TensorFlow hands the optimizer the embedding gradient as IndexedSlices
    (one slice per occurrence), and RMSprop's ``square(gradient)`` then sums
    the squares of the occurrences, ``v = rho v + (1-rho) sum_k g_k^2``,
    where nncore (like Keras on JAX or PyTorch, with dense gradients) uses
    ``(sum_k g_k)^2``.  Both formulas are checked against the fixture."""
    m = book_model(mask_zero=bool(tag))
    E0 = golden[tag + "E0"]
    m.set_weights([E0, golden[tag + "W0"], golden[tag + "b0"]])
    x, y = golden["x"], golden["y"]
    np.testing.assert_allclose(m.predict(x, verbose=0), golden[tag + "pred"], rtol=1e-6, atol=1e-7)
    record = keras.utils.trace(m, x, y)            # per-occurrence dL/d(embedding output)
    g_occ = record.layers[0].grad_output.reshape(-1, 4).astype(np.float64)
    loss = m.train_on_batch(x, y)
    assert loss == pytest.approx(float(golden[tag + "loss"]), rel=1e-5)
    E1, W1, b1 = m.get_weights()
    np.testing.assert_allclose(W1, golden[tag + "W1"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b1, golden[tag + "b1"], rtol=1e-5, atol=1e-6)
    idx = x.reshape(-1)
    count = np.bincount(idx, minlength=50)
    once, several, unused = count == 1, count > 1, count == 0
    assert once.any() and several.any() and unused.any()
    np.testing.assert_allclose(E1[once], golden[tag + "E1"][once], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(E1[unused], E0[unused])
    np.testing.assert_array_equal(golden[tag + "E1"][unused], E0[unused])
    total = np.zeros((50, 4))
    np.add.at(total, idx, g_occ)
    squares = np.zeros((50, 4))
    np.add.at(squares, idx, g_occ ** 2)
    lr, rho, eps = 0.01, 0.9, 1e-7
    dense_rule = E0 - lr * total / np.sqrt((1 - rho) * total ** 2 + eps)
    tf_rule = E0 - lr * total / np.sqrt((1 - rho) * squares + eps)
    np.testing.assert_allclose(E1[several], dense_rule[several], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(golden[tag + "E1"][several], tf_rule[several], rtol=1e-5,
                               atol=1e-6)


def test_tensorflow_keras_file_loads_with_equal_predictions(golden):
    m = keras.models.load_model(str(FIX / "embedding_tf.keras"))
    assert type(m.layers[0]).__name__ == "Embedding"
    np.testing.assert_allclose(m.predict(golden["x"], verbose=0), golden["pred1"],
                               rtol=1e-6, atol=1e-7)


def test_keras_file_round_trip(tmp_path, golden):
    m = book_model(mask_zero=True)
    m.set_weights([golden["E1"], golden["W1"], golden["b1"]])
    path = tmp_path / "emb.keras"
    m.save(str(path))
    back = keras.models.load_model(str(path))
    assert back.layers[0].mask_zero and back.layers[0].input_dim == 50
    np.testing.assert_array_equal(back.predict(golden["x"], verbose=0),
                                  m.predict(golden["x"], verbose=0))
    h5py = pytest.importorskip("h5py")
    import zipfile
    with zipfile.ZipFile(path) as z:
        z.extract("model.weights.h5", tmp_path)
    with h5py.File(tmp_path / "model.weights.h5") as f:
        np.testing.assert_array_equal(f["layers/embedding/vars/0"][()], golden["E1"])


def test_trace_shows_what_the_embedding_computes():
    m = book_model()
    x = np.random.default_rng(0).integers(0, 50, (4, 7))
    t = keras.utils.trace(m, x, np.ones(4))
    first = t.layers[0]
    assert first.kind == "Embedding"
    assert first.forward_formula == m.layers[0].describe(first)[0]
    assert first.backward_formula == m.layers[0].describe(first)[1]
    assert first.grads["embeddings"].shape == (50, 4)


def test_huge_embedding_in_a_file_is_refused_before_allocation(tmp_path, golden):
    """A .keras whose config asks for a 2e9 x 4 table (32 GB) must be refused
    by the loader's parameter cap (Embedding.weight_shapes), not die
    allocating it.  Only input_dim changes, so no other layer trips the cap."""
    import json
    import zipfile
    src = FIX / "embedding_tf.keras"
    dst = tmp_path / "huge.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "config.json":
                cfg = json.loads(data)
                for layer in cfg["config"]["layers"]:
                    if layer["class_name"] == "Embedding":
                        layer["config"]["input_dim"] = 2_000_000_000
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)
    from nncore.saving.format import FormatError
    with pytest.raises(FormatError, match="parameters"):
        keras.models.load_model(str(dst))


def test_keras_config_with_unsupported_option_is_refused(tmp_path):
    from nncore.saving.format import FormatError
    base = {"name": "e", "input_dim": 5, "output_dim": 2}
    assert keras.layers.Embedding.from_keras(base, "layer 0")["input_dim"] == 5
    with pytest.raises(FormatError, match="embeddings_constraint"):
        keras.layers.Embedding.from_keras({**base, "embeddings_constraint": {"class_name": "NonNeg"}},
                                          "layer 0")
    with pytest.raises(FormatError, match="input_dim must be a positive integer"):
        keras.layers.Embedding.from_keras({**base, "input_dim": -3}, "layer 0")
