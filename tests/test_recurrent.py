"""SimpleRNN, LSTM and GRU: gradients, Keras 3 parity, masks, dropout, files.

The golden fixtures in tests/fixtures/rnn/ were made by real Keras 3.15
(TensorFlow backend) with tests/fixtures/rnn/make_rnn_golden.py; these tests
only read them.
"""
import glob
import json
import os

import numpy as np
import pytest

import nncore as keras
from nncore.ops import recurrent as R

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "rnn")
GOLDEN = sorted(glob.glob(os.path.join(HERE, "rnn_*.npz")))
GOLDEN = [p for p in GOLDEN if not p.endswith("rnn_tf_model.npz")]


# ------------------------------------------------------------ gradient checks
def _numeric_grad(f, arr, eps=1e-6):
    num = np.zeros_like(arr)
    it = np.nditer(arr, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = arr[i]
        arr[i] = old + eps
        lp = f()
        arr[i] = old - eps
        lm = f()
        arr[i] = old
        num[i] = (lp - lm) / (2 * eps)
    return num


GRAD_CASES = [("simple_rnn", {}), ("simple_rnn", {"activation": "relu"}),
              ("lstm", {}), ("lstm", {"activation": "sigmoid",
                                      "recurrent_activation": "tanh"}),
              ("gru", {}), ("gru", {"reset_after": False})]


@pytest.mark.parametrize("masked", [False, True], ids=["plain", "mask+dropout"])
@pytest.mark.parametrize("cell,opts", GRAD_CASES,
                         ids=[f"{c}-{'-'.join(map(str, o.values())) if o else 'default'}"
                              .replace("False", "reset_before") for c, o in GRAD_CASES])
def test_bptt_matches_finite_differences(cell, opts, masked):
    """Every gradient of the twins (inputs, kernel, recurrent kernel, bias,
    initial states) against central differences in float64, with a step
    mask and per-gate dropout masks in the masked case."""
    rng = np.random.default_rng(len(cell) + 7 * masked)
    B, T, F, u, G = 3, 5, 4, 3, R.GATES[cell]
    x = rng.standard_normal((B, T, F))
    W = rng.standard_normal((F, G * u)) * 0.5
    U = rng.standard_normal((u, G * u)) * 0.5
    two_rows = cell == "gru" and opts.get("reset_after", True)
    b = rng.standard_normal((2, G * u) if two_rows else (G * u,)) * 0.3
    h0 = [rng.standard_normal((B, u)) * 0.5 for _ in range(2 if cell == "lstm" else 1)]
    mask = dp = rdp = None
    if masked:
        mask = rng.random((B, T)) > 0.4
        dp = (rng.random((G, B, F)) > 0.3) / 0.7
        rdp = (rng.random((G, B, u)) > 0.3) / 0.7
    gy = rng.standard_normal((B, T, u))
    gs = [rng.standard_normal((B, u)) for _ in h0]

    def loss():
        o, s, _ = R.rnn_forward(cell, x, W, U, b, h0, mask=mask, dp=dp, rdp=rdp, **opts)
        return (o * gy).sum() + sum((a * g).sum() for a, g in zip(s, gs))

    _, _, cache = R.rnn_forward(cell, x, W, U, b, h0, mask=mask, dp=dp, rdp=rdp, **opts)
    dx, dW, dU, db, dh0 = R.rnn_backward(cache, gy, gs)
    for name, arr, g in [("x", x, dx), ("W", W, dW), ("U", U, dU), ("b", b, db)] + \
            [(f"state{k}", h0[k], dh0[k]) for k in range(len(h0))]:
        num = _numeric_grad(loss, arr)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-7, err_msg=name)


# ------------------------------------------------------------ Keras parity
def _nn_layer(cfg):
    return getattr(keras.layers, cfg["class"])(cfg["units"], **cfg["options"])


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: os.path.basename(p)[4:-4])
def test_matches_keras_forward_and_gradients(path):
    """Outputs (and final states), and the gradient of a Dense(1)+MSE loss with
    respect to every weight, equal Keras 3's for the same weights and data."""
    fx = np.load(path)
    cfg = json.loads(str(fx["config"]))
    x, y = fx["x"], fx["y"]
    mask = fx["mask"] if "mask" in fx.files else None
    layer = _nn_layer(cfg)
    dense = keras.layers.Dense(1)
    layer.build((None,) + x.shape[1:])
    n = len(layer.weights)
    layer.set_weights([fx[f"w0_{i}"] for i in range(n)])
    out = layer(x, mask=mask)
    outs = out if isinstance(out, list) else [out]
    n_out = len([k for k in fx.files if k.startswith("out_")])
    assert len(outs) == n_out
    for i, o in enumerate(outs):
        np.testing.assert_allclose(o, fx[f"out_{i}"], rtol=1e-5, atol=2e-6)
    # gradients: forward, Dense, d(mean square)/dpred, backward
    a = layer.forward(x, training=True, mask=mask)
    dense.build((None,) + a.shape[1:])
    dense.set_weights([fx[f"w0_{n}"], fx[f"w0_{n + 1}"]])
    pred = dense.forward(a, training=True)
    np.testing.assert_allclose(np.mean((pred - y) ** 2), fx["loss"], rtol=1e-5)
    da = dense.backward((2.0 * (pred - y) / pred.size).astype(np.float32))
    layer.backward(da)
    for i, g in enumerate(layer.grads + dense.grads):
        np.testing.assert_allclose(g, fx[f"grad_{i}"], rtol=1e-4, atol=1e-6,
                                   err_msg=f"gradient {i}")


# (the model's output must be 2-D to fit, so the return_sequences cases are
# covered by the gradient test above)
STEP = [p for p in GOLDEN if "w1_0" in np.load(p).files
        and not json.loads(str(np.load(p)["config"]))["options"].get("return_sequences")]


@pytest.mark.parametrize("path", STEP, ids=lambda p: os.path.basename(p)[4:-4])
def test_one_rmsprop_step_matches_keras(path):
    """model.fit for one batch (RMSprop(0.01), MSE) leaves the weights Keras left."""
    fx = np.load(path)
    cfg = json.loads(str(fx["config"]))
    x, y = fx["x"], fx["y"]
    model = keras.Sequential([keras.Input(x.shape[1:]), _nn_layer(cfg), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.RMSprop(0.01), loss="mse")
    n = len(model.get_weights())
    model.set_weights([fx[f"w0_{i}"] for i in range(n)])
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    for i, w in enumerate(model.get_weights()):
        # RMSprop's first step is about lr/sqrt(1 - rho) = 0.03 per weight whatever
        # the gradient's size, so a tiny gradient's float32 round-off shows at 1e-6
        np.testing.assert_allclose(w, fx[f"w1_{i}"], rtol=1e-5, atol=1e-5, err_msg=f"w{i}")


@pytest.mark.filterwarnings("ignore:.*optimizer starts fresh")
def test_keras_file_made_by_tensorflow_loads_with_equal_predictions():
    fx = np.load(os.path.join(HERE, "rnn_tf_model.npz"))
    model = keras.models.load_model(os.path.join(HERE, "rnn_tf_model.keras"))
    assert [type(l).__name__ for l in model.layers] == ["LSTM", "GRU", "SimpleRNN", "Dense"]
    assert model.layers[1].go_backwards and not model.layers[1].reset_after
    np.testing.assert_allclose(model.predict(fx["x"], verbose=0), fx["pred"],
                               rtol=1e-5, atol=1e-6)


def test_save_and_load_round_trip_keeps_weights_in_keras_cell_layout(tmp_path):
    keras.utils.set_random_seed(3)
    x = np.random.default_rng(0).standard_normal((5, 7, 3)).astype("float32")
    model = keras.Sequential([keras.Input((7, 3)),
                              keras.layers.LSTM(4, return_sequences=True, go_backwards=True,
                                                unit_forget_bias=False),
                              keras.layers.GRU(3, reset_after=False),
                              keras.layers.Dense(1)])
    model.compile(optimizer="rmsprop", loss="mse")
    path = tmp_path / "rnn.keras"
    model.save(path)
    import zipfile, io
    import h5py
    with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as f:
        # Keras 3 keeps an RNN's variables on its cell
        assert f["layers/lstm/cell/vars/0"].shape == (3, 16)
        assert f["layers/gru/cell/vars/2"].shape == (9,)
    loaded = keras.models.load_model(path)
    assert loaded.layers[0].go_backwards and not loaded.layers[0].unit_forget_bias
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


# ------------------------------------------------------------ the book's models
def test_parameter_counts_and_summary_shapes_as_keras(capsys):
    m = keras.Sequential([keras.Input((100, 200)), keras.layers.SimpleRNN(8),
                          keras.layers.Dense(1, activation="sigmoid")])
    assert m.count_params() == 1681
    lstm = keras.Sequential([keras.Input((100, 16)), keras.layers.LSTM(8),
                             keras.layers.Dense(1, activation="sigmoid")])
    assert lstm.layers[0].count_params() == 800          # + Embedding(500, 16) = 8,809
    gru = keras.Sequential([keras.Input((100, 16)), keras.layers.GRU(8),
                            keras.layers.Dense(1, activation="sigmoid")])
    assert gru.layers[0].count_params() == 624
    assert keras.layers.GRU(8, reset_after=False).weight_shapes((None, 100, 16))[2] == (24,)
    seq = keras.Sequential([keras.Input((100, 16)), keras.layers.LSTM(8, return_sequences=True),
                            keras.layers.SimpleRNN(4)])
    seq.summary()
    text = capsys.readouterr().out
    assert "(None, 100, 8)" in text and "(None, 4)" in text


@pytest.mark.parametrize("cls", ["SimpleRNN", "LSTM", "GRU"])
def test_layer_contract(cls):
    layer = getattr(keras.layers, cls)(6)
    shapes = layer.weight_shapes((None, 9, 4))
    layer.build((None, 9, 4))
    assert [w.shape for w in layer.weights] == shapes
    assert layer.keras_name == cls and layer.keras_vars == "cell/vars"
    fwd, bwd = layer.describe(None)
    assert cls in fwd and "BPTT" in bwd
    cfg = layer.to_keras()
    again = getattr(keras.layers, cls)(**layer.from_keras(cfg, cls))
    assert again.to_keras() == cfg
    # the compiled training loop runs it (its own forward/backward, kind "layer")
    from nncore.models.plan import explain, make_plan
    model = keras.Sequential([keras.Input((9, 4)), getattr(keras.layers, cls)(6),
                              keras.layers.Dense(1)])
    model.compile("rmsprop", "mse")
    assert explain(model) is None
    entry = make_plan(model).entries[0]
    assert entry.kind == "layer" and [p.name for p in entry.params] == \
        [w.name for w in model.layers[0].weights]


def test_lstm_starts_with_forget_bias_one_and_orthogonal_recurrent_kernel():
    keras.utils.set_random_seed(0)
    layer = keras.layers.LSTM(5)
    layer.build((None, 3, 2))
    b = layer.bias.numpy()
    np.testing.assert_array_equal(b[5:10], 1.0)
    np.testing.assert_array_equal(np.delete(b, np.s_[5:10]), 0.0)
    U = layer.recurrent_kernel.numpy()            # (5, 20): orthonormal rows
    np.testing.assert_allclose(U @ U.T, np.eye(5), atol=1e-5)
    init = keras.initializers.Orthogonal(gain=2.0, seed=4)
    a, c = init((6, 3)), init((6, 3))
    np.testing.assert_array_equal(a, c)
    np.testing.assert_allclose(a.T @ a, 4 * np.eye(3), atol=1e-5)


def test_learns_a_sequence_task():
    """The sign of a sequence's sum: a GRU learns it, the loss falls."""
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((512, 12, 2)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("float32")
    model = keras.Sequential([keras.Input((12, 2)), keras.layers.GRU(8),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.RMSprop(0.01), loss="binary_crossentropy",
                  metrics=["accuracy"])
    hist = model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    assert hist.history["accuracy"][-1] > 0.85


# ------------------------------------------------------------ masks
class _MaskZeros(keras.layers.Layer):
    """Marks time steps whose features are all zero as padding (like Masking(0))."""

    def forward(self, x, training=False, logits=False):
        return x

    def backward(self, grad, from_logits=False, need_input_grad=True):
        return grad

    def compute_mask(self, inputs, mask=None):
        return np.any(inputs != 0, axis=-1)


def test_sequential_hands_the_mask_of_the_layer_below():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6, 3)).astype("float32")
    x[1, :3] = 0                      # padding at the start, as pad_sequences makes
    x[2, 4] = 0
    keras.utils.set_random_seed(5)
    lstm = keras.layers.LSTM(5, return_sequences=True)
    model = keras.Sequential([keras.Input((6, 3)), _MaskZeros(), lstm, keras.layers.GRU(2)])
    got = model.predict(x, verbose=0)
    mask = np.any(x != 0, axis=-1)
    seq = lstm(x, mask=mask)
    # a masked step repeats the previous output; all-padding prefix outputs stay 0
    np.testing.assert_array_equal(seq[1, :3], 0.0)
    np.testing.assert_array_equal(seq[2, 4], seq[2, 3])
    assert not np.allclose(seq, lstm(x))
    np.testing.assert_allclose(got, model.layers[2](seq, mask=mask), rtol=1e-6)


# ------------------------------------------------------------ dropout
def test_dropout_masks_are_the_same_at_every_step_and_seeded():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 5, 6)).astype("float32")
    layer = keras.layers.SimpleRNN(4, dropout=0.5, seed=11)
    layer.build((None, 5, 6))
    out = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(out))
    zero = dx == 0
    # an input feature dropped for a sample is dropped at every time step
    np.testing.assert_array_equal(zero, np.repeat(zero[:, :1], 5, axis=1))
    assert 0.3 < zero[:, 0].mean() < 0.7
    np.testing.assert_array_equal(layer.forward(x), layer.forward(x))   # inference: no dropout
    twin = keras.layers.SimpleRNN(4, dropout=0.5, seed=11)
    twin.build((None, 5, 6))
    twin.set_weights(layer.get_weights())
    np.testing.assert_array_equal(twin.forward(x, training=True), out)


def test_recurrent_dropout_draws_one_mask_per_gate():
    layer = keras.layers.LSTM(8, dropout=0.4, recurrent_dropout=0.3, seed=2)
    dp, rdp = layer._dropout_masks(32, 5)
    assert dp.shape == (4, 32, 5) and rdp.shape == (4, 32, 8)
    assert not np.array_equal(dp[0], dp[1])          # Keras's implementation 1
    assert set(np.unique(dp)) <= {0.0, np.float32(1 / 0.6)}
    shared, none = keras.layers.LSTM(8, dropout=0.4, seed=2)._dropout_masks(32, 5)
    assert none is None and all(np.array_equal(shared[0], shared[k]) for k in range(4))


# ------------------------------------------------------------ bad input
@pytest.mark.parametrize("kwargs,match", [
    ({"stateful": True}, "stateful"), ({"unroll": True}, "unroll"),
    ({"dropout": 1.0}, "dropout"), ({"activation": "softmax"}, "activation"),
    ({"kernel_constraint": "non_neg"}, "kernel_constraint")])
def test_unsupported_options_say_so(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras.layers.LSTM(4, **kwargs)


def test_bad_inputs_are_refused_before_the_loop():
    layer = keras.layers.GRU(3)
    with pytest.raises(ValueError, match="3-D"):
        layer(np.zeros((4, 5), "float32"))
    layer.build((None, 5, 2))
    with pytest.raises(ValueError, match="incompatible"):
        layer(np.zeros((4, 5, 3), "float32"))
    with pytest.raises(ValueError, match="mask"):
        layer(np.zeros((4, 5, 2), "float32"), mask=np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="initial state"):
        layer(np.zeros((4, 5, 2), "float32"), initial_state=[np.zeros((4, 2))])
    with pytest.raises(ValueError, match="units"):
        keras.layers.SimpleRNN(0)


def test_return_state_and_initial_state():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 2)).astype("float32")
    layer = keras.layers.LSTM(5, return_state=True)
    out, h, c = layer(x)
    np.testing.assert_array_equal(out, h)
    h2 = layer(x, initial_state=[h, c])[0]
    assert not np.allclose(h2, h)


def test_state_gradient_norms_show_vanishing_gradients():
    """||dL/dh_t|| per step: with small recurrent weights a SimpleRNN's gradient
    fades towards the first steps; an LSTM with its forget gate open keeps more."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 30, 3)).astype("float32")
    rnn = keras.layers.SimpleRNN(4, recurrent_initializer=keras.initializers.Orthogonal(
        gain=0.3, seed=1), kernel_initializer=keras.initializers.GlorotUniform(seed=2))
    rnn.build((None, 30, 3))
    out = rnn.forward(x, training=True)
    rnn.backward(np.ones_like(out))
    norms = rnn.state_gradient_norms
    assert norms.shape == (30,)
    assert np.all(np.diff(norms) > 0)             # rising towards the last step
    assert norms[0] < 1e-6 * norms[-1]
    lstm = keras.layers.LSTM(4, recurrent_initializer=keras.initializers.Orthogonal(
        gain=0.3, seed=1), kernel_initializer=keras.initializers.GlorotUniform(seed=2))
    lstm.build((None, 30, 3))
    lstm.set_weights([lstm.kernel.numpy(), lstm.recurrent_kernel.numpy(),
                      np.r_[np.zeros(4), np.full(4, 5.0), np.zeros(8)].astype("float32")])
    out = lstm.forward(x, training=True)
    lstm.backward(np.ones_like(out))
    assert lstm.state_gradient_norms[0] > 1e-3 * lstm.state_gradient_norms[-1]


# ------------------------------------------------- predict's chunks of rows
@pytest.mark.parametrize("cell", ["SimpleRNN", "LSTM", "GRU"])
def test_predict_cuts_rows_to_what_keeps_the_caches_small(cell):
    """predict and evaluate hand a recurrent layer at most its
    inference_rows at a time (its caches: (2*gates + 4) * units values a row
    and step), and the answers are those of one forward pass over all rows."""
    keras.utils.set_random_seed(3)
    T, units = 40, 8
    layer = getattr(keras.layers, cell)(units)
    model = keras.Sequential([keras.Input(shape=(T,)), keras.layers.Embedding(50, 4),
                              layer, keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    gates = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}[cell]
    limit = layer.inference_rows
    assert limit == max(32, (1 << 21) // (T * (2 * gates + 4) * units))
    n = 2 * limit + 7
    x = np.random.default_rng(0).integers(0, 50, size=(n, T))
    y = (x[:, 0] > 25).astype("float32")
    seen = []
    forward = layer.forward

    def spy(inputs, *args, **kwargs):
        seen.append(inputs.shape[0])
        return forward(inputs, *args, **kwargs)

    layer.forward = spy
    got = model.predict(x, batch_size=32, verbose=0)
    assert max(seen) <= limit and sum(seen) == n
    seen.clear()
    loss = model.evaluate(x, y, batch_size=32, verbose=0)
    assert max(seen) <= limit and sum(seen) == n
    layer.forward = forward
    whole = model._forward(x.astype("float32"), training=False)
    np.testing.assert_array_equal(got, whole)
    p = np.clip(whole[:, 0].astype("float64"), 1e-7, 1 - 1e-7)
    want = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert abs(loss - want) < 1e-5
