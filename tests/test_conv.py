"""Conv2D, MaxPooling2D, AveragePooling2D: kernels vs twins, gradients, layers, models."""
import math

import numpy as np
import pytest

import nncore as keras
from nncore import backend
from nncore._ext import conv as KC
from nncore.ops import conv as TC

# (N, H, W, C, KH, KW, F, strides, padding): odd sizes, kh != kw, both paddings
CONV_CASES = [
    (2, 5, 7, 3, 3, 2, 4, (1, 1), "valid"),
    (3, 6, 5, 2, 3, 3, 5, (2, 2), "same"),
    (2, 7, 7, 1, 2, 3, 3, (1, 2), "same"),
    (5, 9, 8, 4, 3, 3, 6, (2, 1), "valid"),
    (9, 6, 6, 3, 1, 1, 2, (1, 1), "same"),     # more images than a weight-gradient group
]
POOL_CASES = [
    (2, 6, 7, 3, (2, 2), None, "valid"),
    (2, 7, 5, 2, (2, 2), None, "same"),
    (3, 7, 7, 2, (3, 2), (2, 1), "same"),
    (2, 5, 6, 1, (3, 3), (1, 1), "valid"),     # overlapping windows
]


def geometry(n, k, s, padding):
    """(output size, padding before) from Keras's rule, written out independently."""
    if padding == "valid":
        return (n - k) // s + 1, 0
    out = math.ceil(n / s)
    return out, max((out - 1) * s + k - n, 0) // 2


def conv_args(case, dtype, seed=0):
    n, h, w, c, kh, kw, f, (sh, sw), padding = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    k = rng.standard_normal((kh, kw, c, f)).astype(dtype)
    oh, pt = geometry(h, kh, sh, padding)
    ow, pl = geometry(w, kw, sw, padding)
    return x, k, (n, oh, ow, f), (sh, sw, pt, pl)


def conv_reference(x, k, sh, sw, pt, pl, oh, ow):
    """The definition, one output pixel at a time (no im2col)."""
    n, h, w, c = x.shape
    kh, kw, _, f = k.shape
    out = np.zeros((n, oh, ow, f))
    for a in range(oh):
        for b in range(ow):
            for i in range(kh):
                for j in range(kw):
                    ih, iw = a * sh - pt + i, b * sw - pl + j
                    if 0 <= ih < h and 0 <= iw < w:
                        out[:, a, b, :] += x[:, ih, iw, :].astype(np.float64) @ k[i, j]
    return out


def run_conv(mod, x, k, out_shape, geo, dout=None, with_dx=True, bias=None, act="linear"):
    """Forward (and backward when dout is given): out, dk, dx, db."""
    out = np.empty(out_shape, x.dtype)
    n, oh, ow, f = out_shape
    ws = np.empty(KC.conv2d_workspace_size(n, oh, ow, *k.shape, backward=True), x.dtype)
    mod.conv2d_forward(x, k, bias, out, ws, act, *geo)
    if dout is None:
        return out
    dk = np.empty_like(k)
    db = None if bias is None else np.empty_like(bias)
    dx = np.empty_like(x) if with_dx else None
    mod.conv2d_backward(x, k, out, dout, act, dk, db, dx, ws, *geo)
    return out, dk, dx, db


# ------------------------------------------------------------------ kernels
@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("act", ["linear", "relu", "softmax"])
def test_conv_kernel_equals_twin_and_definition(case, dtype, tol, act):
    x, k, out_shape, geo = conv_args(case, dtype)
    rng = np.random.default_rng(1)
    dout = rng.standard_normal(out_shape).astype(dtype)
    bias = None if act == "linear" else rng.standard_normal(out_shape[3]).astype(dtype)
    r1 = run_conv(KC, x, k, out_shape, geo, dout, bias=bias, act=act)
    r2 = run_conv(TC, x, k, out_shape, geo, dout, bias=bias, act=act)
    for a, b in zip(r1[:3], r2[:3]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max())
    if bias is not None:
        # a sum over every pixel of terms that cancel (softmax): compare to
        # the size of the terms, not of the (small) result
        terms = math.sqrt(dout.size / out_shape[3]) * np.abs(dout).max()
        np.testing.assert_allclose(r1[3], r2[3], rtol=tol, atol=tol * terms)
    if act == "linear":
        ref = conv_reference(x, k, *geo, *out_shape[1:3])
        np.testing.assert_allclose(r1[0], ref, rtol=tol, atol=tol * np.abs(ref).max())


def test_conv_backward_without_dx_and_thread_count_bitwise():
    x, k, out_shape, geo = conv_args((13, 9, 9, 3, 3, 3, 8, (1, 1), "same"), np.float32)
    dout = np.random.default_rng(2).standard_normal(out_shape).astype(np.float32)
    results = []
    for threads in (1, 2):
        keras.set_num_threads(threads)
        results.append(run_conv(KC, x, k, out_shape, geo, dout))
    _, dk_only, none, _ = run_conv(KC, x, k, out_shape, geo, dout, with_dx=False)
    assert none is None
    for a, b in zip(results[0], results[1]):
        assert np.array_equal(a, b)
    assert np.array_equal(dk_only, results[1][1])


def numeric_grad(f, arr, eps=1e-6):
    g = np.zeros_like(arr)
    it = np.nditer(arr, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = arr[i]
        arr[i] = old + eps
        up = f()
        arr[i] = old - eps
        down = f()
        arr[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


@pytest.mark.parametrize("case", CONV_CASES[:4])
def test_conv_gradients_finite_differences(case):
    x, k, out_shape, geo = conv_args(case, np.float64, seed=3)
    rng = np.random.default_rng(4)
    r = rng.standard_normal(out_shape)          # L = sum(r * tanh(conv(x, k) + b))
    b = rng.standard_normal(out_shape[3])

    def loss():
        return float((run_conv(KC, x, k, out_shape, geo, bias=b, act="tanh") * r).sum())
    _, dk, dx, db = run_conv(KC, x, k, out_shape, geo, r, bias=b, act="tanh")
    np.testing.assert_allclose(dk, numeric_grad(loss, k), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-6, atol=1e-7)


def run_pool(mod, kind, x, pool, strides, padding, dout=None):
    n, h, w, c = x.shape
    strides = strides or pool
    oh, pt = geometry(h, pool[0], strides[0], padding)
    ow, pl = geometry(w, pool[1], strides[1], padding)
    out = np.empty((n, oh, ow, c), x.dtype)
    geo = (*pool, *strides, pt, pl)
    if kind == "max":
        arg = np.empty(out.shape, np.int32)
        mod.maxpool2d_forward(x, out, arg, *geo)
    else:
        mod.avgpool2d_forward(x, out, *geo)
    if dout is None:
        return out
    dx = np.empty_like(x)
    if kind == "max":
        mod.maxpool2d_backward(dout, arg, dx)
    else:
        mod.avgpool2d_backward(dout, dx, *geo)
    return out, dx


def pool_reference(kind, x, pool, strides, padding):
    n, h, w, c = x.shape
    strides = strides or pool
    oh, pt = geometry(h, pool[0], strides[0], padding)
    ow, pl = geometry(w, pool[1], strides[1], padding)
    out = np.empty((n, oh, ow, c))
    for a in range(oh):
        for b in range(ow):
            h0, w0 = a * strides[0] - pt, b * strides[1] - pl
            win = x[:, max(h0, 0):min(h0 + pool[0], h), max(w0, 0):min(w0 + pool[1], w)]
            out[:, a, b] = win.max(axis=(1, 2)) if kind == "max" else win.mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_kernel_twin_reference_and_gradients(case, kind):
    n, h, w, c, pool, strides, padding = case
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, h, w, c))
    ref = pool_reference(kind, x, pool, strides, padding)
    dout = rng.standard_normal(ref.shape)
    for dtype, tol in ((np.float32, 1e-6), (np.float64, 1e-12)):
        xd, gd = x.astype(dtype), dout.astype(dtype)
        o1, dx1 = run_pool(KC, kind, xd, pool, strides, padding, gd)
        o2, dx2 = run_pool(TC, kind, xd, pool, strides, padding, gd)
        np.testing.assert_allclose(o1, ref, rtol=tol, atol=tol)
        np.testing.assert_allclose(o2, ref, rtol=tol, atol=tol)
        np.testing.assert_allclose(dx1, dx2, rtol=tol, atol=tol)
    # float64 finite differences (distinct random values: max is differentiable)
    r = dout

    def loss():
        return float((run_pool(KC, kind, x, pool, strides, padding) * r).sum())
    _, dx = run_pool(KC, kind, x, pool, strides, padding, r)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-7)


def test_maxpool_tie_sends_gradient_to_first_maximum():
    # every value of the window equal: the first one in row-major order wins
    x = np.full((1, 2, 2, 1), 3.0, np.float32)
    for mod in (KC, TC):
        out, dx = run_pool(mod, "max", x, (2, 2), None, "valid", np.ones((1, 1, 1, 1), np.float32))
        assert out[0, 0, 0, 0] == 3.0
        assert dx[0, :, :, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    x = np.array([1, 5, 5, 2], np.float32).reshape(1, 2, 2, 1)   # tie between (0,1), (1,0)
    _, dx = run_pool(KC, "max", x, (2, 2), None, "valid", np.ones((1, 1, 1, 1), np.float32))
    assert dx[0, :, :, 0].tolist() == [[0.0, 1.0], [0.0, 0.0]]


def test_same_avg_pool_divides_by_valid_inputs():
    x = np.ones((1, 3, 3, 1), np.float64)
    out = run_pool(KC, "avg", x, (2, 2), None, "same")
    assert out.shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(out, 1.0)    # padding is not counted as zeros


def test_kernel_bad_arguments_raise():
    x, k, out_shape, geo = conv_args(CONV_CASES[0], np.float32)
    ws = np.empty(1, np.float32)
    with pytest.raises(ValueError, match="workspace"):
        KC.conv2d_forward(x, k, None, np.empty(out_shape, np.float32), ws, "linear", *geo)
    big = np.empty(KC.conv2d_workspace_size(2, 5, 5, 3, 2, 3, 4, True), np.float32)
    for mod in (KC, TC):
        with pytest.raises(ValueError, match="channels"):
            mod.conv2d_forward(x, np.ascontiguousarray(k[:, :, :2]), None,
                               np.empty(out_shape, np.float32), big, "linear", *geo)
        with pytest.raises(ValueError, match="strides"):
            mod.conv2d_forward(x, k, None, np.empty(out_shape, np.float32), big, "linear",
                               0, 1, 0, 0)
        with pytest.raises(ValueError, match="activation"):
            mod.conv2d_forward(x, k, None, np.empty(out_shape, np.float32), big, "gelu", *geo)


# ------------------------------------------------------------------ layers
@pytest.mark.parametrize("h,w,k,s,padding", [(28, 28, 3, 1, "same"), (7, 9, 3, 2, "same"),
                                             (8, 8, 3, 3, "same"), (10, 7, 4, 2, "valid"),
                                             (5, 6, 2, 2, "same")])
def test_layer_output_shapes_follow_keras_formula(h, w, k, s, padding):
    conv = keras.layers.Conv2D(3, k, strides=s, padding=padding)
    pool = keras.layers.MaxPooling2D(k, strides=s, padding=padding)
    expected = (None, geometry(h, k, s, padding)[0], geometry(w, k, s, padding)[0])
    assert conv.compute_output_shape((None, h, w, 2)) == expected + (3,)
    assert pool.compute_output_shape((None, h, w, 2)) == expected + (2,)
    x = np.random.default_rng(0).random((2, h, w, 2)).astype(np.float32)
    assert conv(x).shape == (2,) + expected[1:] + (3,)
    assert pool(x).shape == (2,) + expected[1:] + (2,)


def book_model():
    return keras.Sequential([
        keras.layers.Conv2D(32, kernel_size=3, activation="relu", padding="same",
                            input_shape=(28, 28, 1)),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu", padding="same"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(100, activation="relu"),
        keras.layers.Dropout(0.4),
        keras.layers.Dense(10, activation="softmax"),
    ])


def test_book_model_summary_matches_keras():
    keras.utils.clear_session()          # layer names start again at conv2d, ...
    model = book_model()
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for name, shape, params in [("conv2d (Conv2D)", "(None, 28, 28, 32)", "320"),
                                ("max_pooling2d (MaxPooling2D)", "(None, 14, 14, 32)", "0"),
                                ("(Conv2D)", "(None, 14, 14, 64)", "18,496"),
                                ("(MaxPooling2D)", "(None, 7, 7, 64)", "0"),
                                ("(Flatten)", "(None, 3136)", "0"),
                                ("(Dense)", "(None, 100)", "313,700"),
                                ("(Dense)", "(None, 10)", "1,010")]:
        assert any(name in l and shape in l and l.rstrip("│ ").endswith(params)
                   for l in text.splitlines()), (name, shape, params)
    assert "Total params: 333,526" in text
    assert model.layers[0].weights[0].shape == (3, 3, 1, 32)
    assert model.count_params() == 333526


def test_conv_initializer_uses_conv_fans():
    layer = keras.layers.Conv2D(64, 3)
    layer.build((None, 14, 14, 32))
    limit = math.sqrt(6 / (3 * 3 * 32 + 3 * 3 * 64))      # Glorot, conv fans
    w = layer.kernel.value
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.9 * limit


def test_small_cnn_trains_and_feature_maps_match_numpy():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    # two classes a CNN separates easily: a bright vertical vs horizontal bar
    x = rng.random((96, 10, 10, 1)).astype(np.float32) * 0.3
    y = np.arange(96) % 2
    for i in range(96):
        p = rng.integers(2, 8)
        if y[i]:
            x[i, :, p, 0] += 1
        else:
            x[i, p, :, 0] += 1
    model = keras.Sequential([
        keras.Input(shape=(10, 10, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", padding="same"),
        keras.layers.AveragePooling2D(2),
        keras.layers.Conv2D(6, (3, 2), strides=(1, 2), activation="relu"),
        keras.layers.MaxPool2D(2, padding="same"),
        keras.layers.Flatten(),
        keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    loss = h.history["loss"]
    assert loss[-1] < 0.5 * loss[0]
    assert h.history["accuracy"][-1] > 0.9
    # predict of the first layer's feature maps == NumPy recomputation
    conv = model.layers[0]
    first = keras.Sequential([keras.Input(shape=(10, 10, 1)), keras.layers.Conv2D(
        4, 3, activation="relu", padding="same")])
    first.set_weights(conv.get_weights())
    maps = first.predict(x[:5], verbose=0)
    kernel, bias = conv.get_weights()
    ref = np.maximum(conv_reference(x[:5], kernel, 1, 1, 1, 1, 10, 10) + bias, 0)
    assert maps.shape == (5, 10, 10, 4)
    np.testing.assert_allclose(maps, ref, rtol=1e-5, atol=1e-5)


def test_backends_train_to_same_weights():
    rng = np.random.default_rng(1)
    x = rng.random((40, 8, 8, 2)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    weights = []
    for name in ("cython", "numpy"):
        backend.set_backend(name)
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.Input(shape=(8, 8, 2)),
                                  keras.layers.Conv2D(3, 3, strides=2, padding="same",
                                                      activation="tanh",
                                                      kernel_regularizer="l2"),
                                  keras.layers.MaxPooling2D((2, 2), strides=1),
                                  keras.layers.Dense(4, activation="relu"),   # N-D Dense
                                  keras.layers.Flatten(),
                                  keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_dense_on_nd_input_acts_on_last_axis():
    layer = keras.layers.Dense(3)
    x = np.random.default_rng(0).random((2, 4, 5)).astype(np.float32)
    out = layer(x)
    assert out.shape == (2, 4, 3) and layer.kernel.shape == (5, 3)
    np.testing.assert_allclose(out, x @ layer.kernel.value, rtol=1e-5)
    g = np.ones_like(out)
    dx = layer.backward(g)
    assert dx.shape == x.shape
    np.testing.assert_allclose(layer.grads[0], x.reshape(-1, 5).T @ g.reshape(-1, 3), rtol=1e-5)


def test_save_and_load_npz_round_trip(tmp_path):
    model = keras.Sequential([keras.Input(shape=(9, 9, 2)),
                              keras.layers.Conv2D(3, (3, 2), strides=(2, 1), padding="same",
                                                  activation="relu"),
                              keras.layers.AveragePooling2D(pool_size=2, padding="same"),
                              keras.layers.MaxPooling2D(pool_size=(2, 1), strides=1),
                              keras.layers.Flatten(), keras.layers.Dense(4)])
    path = tmp_path / "cnn.npz"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(0).random((3, 9, 9, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    c = loaded.layers[0]
    assert (c.kernel_size, c.strides, c.padding) == ((3, 2), (2, 1), "same")
    assert loaded.layers[1].padding == "same" and loaded.layers[2].strides == (1, 1)


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="ndim=4"):
        keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Conv2D(4, 3)])
    with pytest.raises(ValueError, match="larger than the input"):
        keras.Sequential([keras.Input(shape=(2, 8, 1)), keras.layers.Conv2D(4, 3)])
    with pytest.raises(ValueError, match="larger than the input"):
        keras.Sequential([keras.Input(shape=(1, 8, 1)), keras.layers.MaxPooling2D(2)])
    with pytest.raises(ValueError, match="filters"):
        keras.layers.Conv2D(0, 3)
    with pytest.raises(ValueError, match="strides"):
        keras.layers.Conv2D(4, 3, strides=0)
    with pytest.raises(ValueError, match="padding"):
        keras.layers.Conv2D(4, 3, padding="full")
    with pytest.raises(ValueError, match="channels_last"):
        keras.layers.Conv2D(4, 3, data_format="channels_first")
    with pytest.raises(ValueError, match="dilation_rate"):
        keras.layers.Conv2D(4, 3, dilation_rate=2)
    model = keras.Sequential([keras.Input(shape=(8, 8, 3)), keras.layers.Conv2D(2, 3),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"\(None, 8, 8, 1\)"):       # channels mismatch
        model.predict(np.zeros((2, 8, 8, 1)), verbose=0)
    conv = model.layers[0]
    with pytest.raises(ValueError, match="incompatible"):
        conv(np.zeros((2, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="incompatible"):
        conv(np.zeros((2, 8, 3), np.float32))
