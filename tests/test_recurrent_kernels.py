"""The compiled time loops of SimpleRNN, LSTM and GRU (src_cython/recurrent.pyx)
against their NumPy twin (nncore/ops/recurrent.py), and the recurrent layers
in the compiled training loop.

* twin == kernel for every cell and option (mask, shared / per-gate dropout,
  no bias, initial state, every activation, last output or sequences):
  float64 to 1e-12, float32 to round-off;
* float64 finite differences through the layers on the compiled backend;
* one thread or two: bitwise the same numbers;
* a whole fit on backend 'cython' equals one on 'numpy'; the compiled loop
  (plan entries of Embedding and the RNNs) equals the per-batch path, masks
  from Embedding(mask_zero=True) and dropout included;
* bad buffers are refused by the kernel's Python face before any C runs.
"""
import numpy as np
import pytest

import nncore as keras
from nncore import backend
from nncore.ops import recurrent as R

C = pytest.importorskip("nncore._ext.recurrent")

CELLS = [("simple_rnn", True), ("lstm", True), ("gru", True), ("gru", False)]
CELL_IDS = ["simple", "lstm", "gru_after", "gru_before"]
# (mask, input-dropout masks, recurrent-dropout masks, bias, sequences, activation)
OPTIONS = [
    dict(),
    dict(mask=True, seq=True),
    dict(dp="shared"),
    dict(bias=False, seq=True, act="relu"),
    dict(mask=True, dp="gate", rdp="gate", seq=True),
    dict(dp="shared", rdp="shared", act="linear", ract="tanh"),
    dict(mask=True, dp="gate", act="sigmoid"),
]


def _case(cell, reset_after, dtype, mask=False, dp=None, rdp=None, bias=True, seq=False,
          act="tanh", ract="sigmoid", B=37, T=9, F=5, u=4, seed=0):
    rng = np.random.default_rng(seed)
    G = R.GATES[cell]

    def arr(*shape, scale=1.0):
        return (rng.normal(size=shape) * scale).astype(dtype)

    def drop(kind, n):
        if kind is None:
            return None
        k = 1 if kind == "shared" else G
        return ((rng.random((k, B, n)) > 0.3) / 0.7).astype(dtype)
    return dict(
        cell=R.CELL_CODES[cell], ra=reset_after, act=R.ACT_CODES[act], ract=R.ACT_CODES[ract],
        x=arr(B, T, F), W=arr(F, G * u, scale=0.5), U=arr(u, G * u, scale=0.5),
        b_in=arr(G * u) if bias else None,
        b_rec=arr(G * u) if bias and cell == "gru" and reset_after else None,
        h0=arr(B, u), c0=arr(B, u) if cell == "lstm" else None,
        mask=(rng.random((B, T)) > 0.3).astype(np.uint8) if mask else None,
        dp=drop(dp, F), rdp=drop(rdp, u), dO=arr(B, T if seq else 1, u), u=u, G=G)


def _run(K, a, onehot=None, given=False):
    """Forward then backward through backend module K; every buffer filled
    (``onehot``: the (B*T + 1,) int32 buffer of the one-hot shortcut, or None;
    ``given``: x is passed as None, ``onehot`` holding its positions)."""
    x, u, G, cell = a["x"], a["u"], a["G"], a["cell"]
    x_in = None if given else x
    B, T, F = x.shape
    dt = x.dtype
    lstm = cell == R.CELL_CODES["lstm"]
    # buffers start at a sentinel (not zeros): an output the kernel leaves
    # unwritten shows as a difference from the twin
    def buf(*shape):
        return np.full(shape, 7.0, dt)
    f = dict(XW=buf(B, T, G * u), outputs=buf(B, T, u), Hp=buf(B, T, u),
             Cp=buf(B, T, u) if lstm else None, hT=buf(B, u),
             cT=buf(B, u) if lstm else None, Gt=buf(B, T, G * u), Ex=buf(B, T, u))
    xd = np.zeros((B * T, F), dt) if a["dp"] is not None else None
    K.recurrent_forward(cell, a["act"], a["ract"], a["ra"], x_in, a["W"], a["U"], a["b_in"],
                        a["b_rec"], a["h0"], a["c0"], a["mask"], a["dp"], a["rdp"], xd=xd,
                        onehot=onehot, **f)
    g = dict(dXW=np.zeros((B, T, G * u), dt), dx=np.zeros((B, T, F), dt),
             dW=np.zeros_like(a["W"]), dU=np.zeros_like(a["U"]),
             db_in=np.zeros(G * u, dt) if a["b_in"] is not None else None,
             db_rec=np.zeros(G * u, dt) if a["b_rec"] is not None else None,
             dh_norms=np.zeros(T))
    K.recurrent_backward(cell, a["act"], a["ract"], a["ra"], x_in, a["W"], a["U"], a["mask"],
                         a["dp"], a["rdp"], f["Hp"], f["Cp"], f["Gt"], f["Ex"], a["dO"],
                         xd=xd, onehot=onehot, **g)
    return {k: v for k, v in {**f, **g}.items() if v is not None}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_kernel_equals_twin_for_every_option(cell, reset_after, dtype):
    for i, opt in enumerate(OPTIONS):
        a = _case(cell, reset_after, dtype, seed=i, **opt)
        twin, kern = _run(R, a), _run(C, a)
        assert twin.keys() == kern.keys()
        if dtype == np.float32:
            # round-off: the kernel is as close to the exact (float64) result
            # as the float32 twin is, give or take a small factor
            exact = _run(R, {k: v.astype(np.float64) if isinstance(v, np.ndarray)
                             and v.dtype == np.float32 else v for k, v in a.items()})
        for name in twin:
            scale = 1 + np.max(np.abs(twin[name]))
            err = np.max(np.abs(twin[name] - kern[name])) / scale
            if dtype == np.float64:
                # the same sums in another order (a linear-activation case
                # amplifies round-off over the steps to a few 1e-12)
                assert err <= 2e-11, f"{cell} {opt} {name}: {err:.3g}"
            else:
                own = np.max(np.abs(twin[name] - exact[name])) / scale
                got = np.max(np.abs(kern[name] - exact[name])) / scale
                assert got <= 4 * own + 2e-6, f"{cell} {opt} {name}: {got:.3g} vs {own:.3g}"
        # the options did something: the masks and dropout change the result
        if opt.get("mask") or opt.get("dp"):
            plain = _run(C, dict(a, mask=None, dp=None, rdp=None))
            assert not np.allclose(plain["outputs"], kern["outputs"])


@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_one_thread_or_two_give_the_same_bits(cell, reset_after):
    a = _case(cell, reset_after, np.float32, mask=True, dp="gate", rdp="gate", seq=True,
              B=53, T=12, F=40)           # 4 blocks of rows, the last one ragged
    _same_bits_on_one_thread_or_two(a)


def _same_bits_on_one_thread_or_two(a):
    before = keras.get_num_threads()
    try:
        keras.set_num_threads(1)
        one = _run(C, a)
        keras.set_num_threads(2)
        two = _run(C, a)
    finally:
        keras.set_num_threads(before)
    for name in one:
        assert np.array_equal(one[name], two[name]), name


# The book's cells have 8 units: float32 calls without recurrent dropout run
# the register kernels of nn_rnn8.h (one vector per row), which also project
# inputs of up to 64 features and form dx for 8, 16, 24 or 32 features
# themselves.  F = 5 / 16 / 80 takes each of those ways in and out.
RNN8_OPTIONS = [opt for opt in OPTIONS if not opt.get("rdp")]


def _close_as_twin(a, kern, what):
    """kern (float32) is as close to the exact float64 result as the float32
    twin is, give or take the factor of the general test above."""
    twin = _run(R, a)
    exact = _run(R, {k: v.astype(np.float64) if isinstance(v, np.ndarray)
                     and v.dtype == np.float32 else v for k, v in a.items()})
    assert twin.keys() == kern.keys()
    for name in twin:
        scale = 1 + np.max(np.abs(twin[name]))
        own = np.max(np.abs(twin[name] - exact[name])) / scale
        got = np.max(np.abs(kern[name] - exact[name])) / scale
        assert got <= 4 * own + 2e-6, f"{what} {name}: {got:.3g} vs {own:.3g}"


@pytest.mark.parametrize("F", [5, 16, 80])
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_8_unit_kernels_equal_twin(cell, reset_after, F):
    assert C.rnn8_applies(8, np.float32, False)
    assert not C.rnn8_applies(8, np.float32, True) and not C.rnn8_applies(4, np.float32, False)
    for i, opt in enumerate(RNN8_OPTIONS):
        a = _case(cell, reset_after, np.float32, seed=10 + i, u=8, F=F, B=21, **opt)
        _close_as_twin(a, _run(C, a), f"{cell} F={F} {opt}")


@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_8_unit_kernels_equal_general_loops(cell, reset_after):
    a = _case(cell, reset_after, np.float32, mask=True, dp="shared", seq=True, u=8, F=16,
              B=23, seed=3)
    fast = _run(C, a)
    old = C.use_rnn8(False)
    try:
        general = _run(C, a)
    finally:
        C.use_rnn8(old)
    for name in fast:
        scale = 1 + np.max(np.abs(general[name]))
        assert np.max(np.abs(fast[name] - general[name])) / scale < 1e-5, name


@pytest.mark.parametrize("F", [16, 40])
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_8_unit_kernels_one_thread_or_two_give_the_same_bits(cell, reset_after, F):
    a = _case(cell, reset_after, np.float32, mask=True, dp="shared", seq=True, u=8,
              B=53, T=12, F=F)        # 4 blocks of rows, the last one ragged
    _same_bits_on_one_thread_or_two(a)


# One-hot inputs (the book's to_categorical words): the kernels look rows of
# W up instead of multiplying, and add dXW's rows into dW's.  F = 80 keeps
# the 8-unit kernels off their in-kernel projection (F <= 64), which the
# shortcut replaces only where the GEMM would run.
ONEHOT_OPTIONS = [dict(), dict(mask=True, seq=True), dict(bias=False, seq=True, rdp="gate")]


def _onehot_case(cell, reset_after, dtype, u, seed=0, **opt):
    a = _case(cell, reset_after, dtype, u=u, F=80, seed=seed, **opt)
    B, T, F = a["x"].shape
    rng = np.random.default_rng(seed + 100)
    x = np.eye(F, dtype=dtype)[rng.integers(0, F, size=(B, T))]
    x[rng.random((B, T)) < 0.1] = 0          # all-zero rows: "no word" steps
    return dict(a, x=x)


def _without_shortcut(a):
    old = C.use_onehot(False)
    try:
        return _run(C, a, np.zeros(a["x"].shape[0] * a["x"].shape[1] + 1, np.int32))
    finally:
        C.use_onehot(old)


@pytest.mark.parametrize("u", [4, 8])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_one_hot_inputs_take_the_shortcut_with_the_same_numbers(cell, reset_after, dtype, u):
    for i, opt in enumerate(ONEHOT_OPTIONS):
        a = _onehot_case(cell, reset_after, dtype, u, seed=i, **opt)
        oh = np.zeros(a["x"].shape[0] * a["x"].shape[1] + 1, np.int32)
        kern = _run(C, a, oh)
        assert oh[-1] == 1, "the shortcut was not taken"
        # the kept positions are those of the 1s (-1: a zero row)
        flat = a["x"].reshape(-1, a["x"].shape[2])
        want = np.where(flat.any(axis=1), flat.argmax(axis=1), -1)
        assert np.array_equal(oh[:-1], want)
        if dtype == np.float64:
            twin = _run(R, a)
            for name in twin:
                scale = 1 + np.max(np.abs(twin[name]))
                assert np.max(np.abs(twin[name] - kern[name])) / scale <= 2e-11, name
        else:
            _close_as_twin(a, kern, f"{cell} one-hot {opt}")
        # a row of W for a 1 is exactly what the product gives: everything but
        # dW (the same sum in another order) is bitwise the multiplying run's
        full = _without_shortcut(a)
        for name in kern:
            if name == "dW":
                assert np.allclose(kern[name], full[name], rtol=1e-5, atol=1e-6)
            else:
                assert np.array_equal(kern[name], full[name]), name


@pytest.mark.parametrize("spoil", ["two ones", "a two", "dense"])
def test_inputs_that_are_not_one_hot_are_multiplied(spoil):
    a = _onehot_case("lstm", True, np.float32, 8)
    x = a["x"].copy()
    if spoil == "two ones":
        x[30, 4, 7] = 1.0 if x[30, 4, 7] == 0 else 0.0
        x[30, 4, 9] = 1.0 if x[30, 4, 9] == 0 else 0.0
    elif spoil == "a two":
        x[36, 8] *= 2.0
        x[36, 8, 3] = 2.0
    else:
        x = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    a = dict(a, x=x)
    oh = np.zeros(x.shape[0] * x.shape[1] + 1, np.int32)
    got = _run(C, a, oh)
    assert oh[-1] == 0
    full = _without_shortcut(a)
    for name in got:
        assert np.array_equal(got[name], full[name]), name


@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_one_hot_shortcut_one_thread_or_two_give_the_same_bits(cell, reset_after):
    a = _onehot_case(cell, reset_after, np.float32, 8, mask=True, seq=True)
    a = dict(a, x=np.concatenate([a["x"]] * 2))     # 666 rows: several scan chunks
    for k in ("h0", "c0", "dO", "mask"):
        if a[k] is not None:
            a[k] = np.concatenate([a[k]] * 2)
    before = keras.get_num_threads()
    oh = np.zeros(a["x"].shape[0] * a["x"].shape[1] + 1, np.int32)
    try:
        keras.set_num_threads(1)
        one = _run(C, a, oh)
        assert oh[-1] == 1
        keras.set_num_threads(2)
        two = _run(C, a, oh)
    finally:
        keras.set_num_threads(before)
    for name in one:
        assert np.array_equal(one[name], two[name]), name


def test_backward_refuses_positions_that_are_not_rows_of_W():
    a = _onehot_case("simple_rnn", True, np.float32, 8)
    B, T, F = a["x"].shape
    oh = np.zeros(B * T + 1, np.int32)
    _run(C, a, oh)
    oh[5] = F                     # as if the buffer had been overwritten
    with pytest.raises(ValueError, match=r"onehot\[5\] = 80"):
        _run_backward_only(a, oh)


def _positions(x):
    """The kernels' form of one-hot rows' positions: flat, -1 for a zero row,
    last entry 1."""
    flat = x.reshape(-1, x.shape[2])
    return np.append(np.where(flat.any(axis=1), flat.argmax(axis=1), -1), 1).astype(np.int32)


@pytest.mark.parametrize("u", [4, 8])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_given_positions_compute_what_the_one_hot_rows_do(cell, reset_after, dtype, u):
    """x None with the positions of its 1s (what a fit on the book's one-hot
    input hands the layer): bitwise the results of the rows themselves, in
    the kernel (whose scan finds the same positions) and in the twin."""
    for i, opt in enumerate(ONEHOT_OPTIONS):
        a = _onehot_case(cell, reset_after, dtype, u, seed=i, **opt)
        for K in (C, R):
            rows = _run(K, a, np.zeros(a["x"].shape[0] * a["x"].shape[1] + 1, np.int32))
            given = _run(K, a, _positions(a["x"]), given=True)
            for name in rows:
                assert np.array_equal(rows[name], given[name]), (K.__name__, opt, name)


@pytest.mark.parametrize("K", [C, R], ids=["kernel", "twin"])
def test_given_positions_are_checked_before_use(K):
    a = _onehot_case("lstm", True, np.float32, 8)
    B, T, F = a["x"].shape
    for bad, message in ((None, "holds no positions"),
                         (np.zeros(B * T + 1, np.int32), "holds no positions"),
                         (_positions(a["x"]), None)):
        if message is None:
            continue
        with pytest.raises(ValueError, match=message):
            _run(K, a, bad, given=True)
    for i, v in ((17, F), (3, -2)):
        oh = _positions(a["x"])
        oh[i] = v
        with pytest.raises(ValueError, match=rf"onehot\[{i}\] = {v} is not a position"):
            _run(K, a, oh, given=True)
    dp = dict(a, dp=np.ones((1, B, F), np.float32))
    with pytest.raises(ValueError, match="input dropout needs the input's values"):
        _run(K, dp, _positions(a["x"]), given=True)


def _run_backward_only(a, oh):
    x, u, G = a["x"], a["u"], a["G"]
    B, T, F = x.shape
    z = np.zeros((B, T, u), x.dtype)
    C.recurrent_backward(a["cell"], a["act"], a["ract"], a["ra"], x, a["W"], a["U"], None,
                         None, None, z, None, np.zeros((B, T, G * u), x.dtype), z,
                         np.zeros((B, 1, u), x.dtype), np.zeros((B, T, G * u), x.dtype),
                         None, np.zeros_like(a["W"]), np.zeros_like(a["U"]), None, None,
                         np.zeros(T), None, onehot=oh)


def _layer(kind, **kw):
    return getattr(keras.layers, kind)(3, dtype="float64", **kw)


@pytest.mark.parametrize("kind,kw", [
    ("SimpleRNN", dict(return_sequences=True)),
    ("LSTM", dict(go_backwards=True)),
    ("GRU", dict(return_sequences=True)),
    ("GRU", dict(reset_after=False, go_backwards=True)),
    ("LSTM", dict(dropout=0.3, recurrent_dropout=0.2, seed=3)),
], ids=["simple_seq", "lstm_back", "gru_seq", "gru_before_back", "lstm_dropout"])
def test_float64_finite_differences_through_the_kernel(kind, kw):
    backend.set_backend("cython")
    rng = np.random.default_rng(5)
    layer = _layer(kind, **kw)
    x = rng.normal(size=(4, 6, 3))
    mask = np.ones((4, 6), bool)
    mask[1, :2] = False
    mask[3, 4] = False
    layer(x[:1])                                  # build
    R_out = rng.normal(size=layer.compute_output_shape((4, 6, 3))[1:])

    def loss(training_step):
        # dropout: the same masks at every evaluation (rewind the counter)
        layer.step = training_step
        return float(np.sum(layer.forward(x, training=True, mask=mask) * R_out))

    loss(0)
    layer.step = 0
    out = layer.forward(x, training=True, mask=mask)
    dx = layer.backward(np.broadcast_to(R_out, out.shape).copy())
    eps = 1e-6
    for w, g in zip(layer.weights, layer.grads):
        flat, gflat = w.value.reshape(-1), g.reshape(-1).copy()
        for j in rng.choice(flat.size, size=min(6, flat.size), replace=False):
            keep = flat[j]
            flat[j] = keep + eps
            up = loss(0)
            flat[j] = keep - eps
            down = loss(0)
            flat[j] = keep
            assert abs((up - down) / (2 * eps) - gflat[j]) < 1e-6 * (1 + abs(gflat[j])), \
                (w.name, j)
    dx = dx.copy()
    for idx in [(0, 0, 0), (1, 3, 2), (2, 5, 1), (3, 4, 0)]:
        keep = x[idx]
        x[idx] = keep + eps
        up = loss(0)
        x[idx] = keep - eps
        down = loss(0)
        x[idx] = keep
        assert abs((up - down) / (2 * eps) - dx[idx]) < 1e-6 * (1 + abs(dx[idx])), idx
    assert layer.state_gradient_norms.shape == (6,)


def _book_model(kind, mask_zero=False, dropout=0.0, second=False):
    keras.utils.set_random_seed(7)
    layers = [keras.Input(shape=(20,)), keras.layers.Embedding(40, 6, mask_zero=mask_zero)]
    if second:
        layers.append(getattr(keras.layers, kind)(4, dropout=dropout, return_sequences=True))
    layers += [getattr(keras.layers, kind)(5, dropout=dropout),
               keras.layers.Dense(1, activation="sigmoid")]
    m = keras.Sequential(layers)
    m.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-2),
              loss="binary_crossentropy", metrics=["accuracy"])
    return m


def _tokens(n=96):
    rng = np.random.default_rng(11)
    x = rng.integers(1, 40, size=(n, 20))
    for i in range(n):                        # pre-padding, as pad_sequences makes
        x[i, :rng.integers(0, 15)] = 0
    y = (x[:, -1] > 20).astype("float32")
    return x.astype("int32"), y


def _fit(model, fused):
    x, y = _tokens()
    model.use_fused = fused
    h = model.fit(x, y, epochs=2, batch_size=32, verbose=0, shuffle=True)
    return h.history["loss"], model.get_weights(), model._last_route


@pytest.fixture(params=[False, True], ids=["two_entries", "folded"])
def fold(request, monkeypatch):
    """The step plan with an Embedding entry below the recurrent one, or the
    Embedding folded into it (_EmbeddedRecurrentEntry).  Folded, dW and dE
    are the same sums in another order (over the table's rows): float32
    round-off, carried through RMSprop's steps, sets the tolerance."""
    from nncore.layers import _recurrent
    monkeypatch.setattr(_recurrent, "FOLD_EMBEDDING", request.param)
    return request.param


def _same_fit(w_a, w_b, loss_a, loss_b, fold):
    rtol, atol = (1e-4, 2e-6) if fold else (2e-6, 1e-7)
    for a, b in zip(w_a, w_b):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    np.testing.assert_allclose(loss_a, loss_b, rtol=rtol)


@pytest.mark.parametrize("kind,mask_zero,dropout,second", [
    ("SimpleRNN", False, 0.0, False),
    ("LSTM", True, 0.3, False),
    ("GRU", True, 0.0, True),
], ids=["simple", "lstm_mask_dropout", "two_grus_mask"])
def test_compiled_loop_equals_the_per_batch_path(kind, mask_zero, dropout, second, fold):
    backend.set_backend("cython")
    loss_loop, w_loop, route = _fit(_book_model(kind, mask_zero, dropout, second), True)
    assert route.route == "run_steps", route.reason
    loss_pb, w_pb, route_pb = _fit(_book_model(kind, mask_zero, dropout, second), False)
    assert route_pb.route == "per-batch"
    _same_fit(w_loop, w_pb, loss_loop, loss_pb, fold)
    if mask_zero:
        # the mask reached the RNN inside the loop: without it the fit differs
        _, w_nomask, _ = _fit(_book_model(kind, False, dropout, second), True)
        assert not np.allclose(w_nomask[-2], w_loop[-2])


def test_compiled_loop_equals_the_per_batch_path_going_backwards(fold):
    """A go_backwards RNN under another: its dL/dx is a reversed copy, not
    the loop's buffer written in place (Layer._input_grad_array), and must
    still reach the Embedding below."""
    def model():
        keras.utils.set_random_seed(3)
        m = keras.Sequential([keras.Input(shape=(20,)), keras.layers.Embedding(40, 6),
                              keras.layers.LSTM(4, return_sequences=True, go_backwards=True),
                              keras.layers.SimpleRNN(3),
                              keras.layers.Dense(1, activation="sigmoid")])
        m.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-2),
                  loss="binary_crossentropy")
        return m
    backend.set_backend("cython")
    loss_loop, w_loop, route = _fit(model(), True)
    assert route.route == "run_steps", route.reason
    loss_pb, w_pb, _ = _fit(model(), False)
    _same_fit(w_loop, w_pb, loss_loop, loss_pb, fold)


def test_a_fit_on_either_backend_gives_the_same_weights():
    losses, weights = {}, {}
    for name in ("cython", "numpy"):
        backend.set_backend(name)
        losses[name], weights[name], _ = _fit(_book_model("LSTM", True, 0.2), True)
    backend.set_backend("cython")
    for a, b in zip(weights["cython"], weights["numpy"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(losses["cython"], losses["numpy"], rtol=1e-5)


def test_bad_buffers_are_refused_before_the_kernel():
    a = _case("lstm", True, np.float32)
    _run(C, a)
    with pytest.raises(ValueError, match="U has shape"):
        _run(C, dict(a, U=a["U"][:, :-1].copy()))
    with pytest.raises(ValueError, match="mask has shape"):
        _run(C, dict(a, mask=np.ones((3, 3), np.uint8)))
    with pytest.raises(ValueError, match="dp has shape"):
        _run(C, dict(a, dp=np.ones((2, 37, 5), np.float32)))
    with pytest.raises(ValueError, match="c0 is required"):
        _run(C, dict(a, c0=None))
    with pytest.raises(ValueError, match="d_outputs has shape"):
        _run(C, dict(a, dO=np.ones((37, 4, 4), np.float32)))
    with pytest.raises((TypeError, ValueError)):      # float64 weights, float32 data
        _run(C, dict(a, W=a["W"].astype(np.float64)))
    with pytest.raises(ValueError, match="unknown cell"):
        _run(C, dict(a, cell=7))


def test_bad_inputs_are_refused_by_the_model_before_the_kernel():
    m = keras.Sequential([keras.Input(shape=(10, 4)), keras.layers.LSTM(3),
                          keras.layers.Dense(1)])
    m.compile("rmsprop", "mse")
    x = np.ones((8, 10, 4), "float32")
    x[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.fit(x, np.ones(8), verbose=0)
    with pytest.raises(ValueError, match="incompatible"):
        m.layers[0].forward(np.ones((8, 10, 5), "float32"))


# ------------------------------------------ an Embedding folded into the RNN
def _fold_model(kind, vocab=40, mask_zero=False, go_backwards=False, frozen=False,
                regularizer=None, dtype=None):
    keras.utils.set_random_seed(9)
    emb = keras.layers.Embedding(vocab, 6, mask_zero=mask_zero,
                                 embeddings_regularizer=regularizer, dtype=dtype)
    emb.trainable = not frozen
    m = keras.Sequential([keras.Input(shape=(20,)), emb,
                          getattr(keras.layers, kind)(5, go_backwards=go_backwards, dtype=dtype),
                          keras.layers.Dense(1, activation="sigmoid", dtype=dtype)])
    m.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-2),
              loss="binary_crossentropy", metrics=["accuracy"])
    return m


@pytest.mark.parametrize("kind,opts", [
    ("SimpleRNN", {}), ("LSTM", {"mask_zero": True}), ("GRU", {"go_backwards": True}),
    ("LSTM", {"regularizer": "l2"}), ("GRU", {"frozen": True}),
    ("SimpleRNN", {"vocab": 700}),          # the table outgrows the batch: not folded
], ids=["simple", "lstm_mask", "gru_backwards", "lstm_l2", "gru_frozen_table",
        "simple_big_table"])
def test_folded_embedding_trains_as_two_entries_in_float64(kind, opts, monkeypatch):
    """float64: the folded entry's sums differ from the two entries' only in
    their order, so the fits agree to round-off; one entry holds the table
    and the layer's weights."""
    from nncore.layers import _recurrent
    from nncore.models import plan as P
    keras.config.set_floatx("float64")
    backend.set_backend("cython")
    runs, looked_up = [], []
    real = _recurrent.OneHotBatch

    class counting(real):
        def __init__(self, *args, **kwargs):
            looked_up.append(kwargs.get("table") is not None)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(_recurrent, "OneHotBatch", counting)
    for fold_it in (True, False):
        monkeypatch.setattr(_recurrent, "FOLD_EMBEDDING", fold_it)
        m = _fold_model(kind, **opts)
        loss, w, route = _fit(m, True)
        # folded, each batch's word indices went up with the table
        assert sum(looked_up) == (6 if fold_it and "vocab" not in opts else 0)
        looked_up.clear()
        assert route.route == "run_steps", route.reason
        entries = P.make_plan(m).entries
        names = [[p.name for p in e.params] for e in entries]
        runs.append((loss, w, names))
    (loss_f, w_f, names_f), (loss_t, w_t, names_t) = runs
    assert len(names_f) == len(names_t) - 1
    assert names_f[0] == names_t[0] + names_t[1]          # the table, then the RNN's
    for a, b in zip(w_f, w_t):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(loss_f, loss_t, rtol=1e-9)
    if opts.get("frozen"):
        np.testing.assert_array_equal(w_f[0], _fold_model(kind, **opts).get_weights()[0])
    # the NumPy twins (the layer's gemm and the time loop's, x given as
    # positions) compute the folded entry as the kernels do
    monkeypatch.setattr(_recurrent, "FOLD_EMBEDDING", True)
    backend.set_backend("numpy")
    try:
        loss_n, w_n, _ = _fit(_fold_model(kind, **opts), True)
    finally:
        backend.set_backend("cython")
    for a, b in zip(w_n, w_f):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(loss_n, loss_f, rtol=1e-9)
