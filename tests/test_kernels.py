"""The compiled kernels (``nncore._ext.<m>``) against their NumPy twins
(``nncore.ops.<m>``), plus the properties only the compiled side has:
thread-count independence, argument validation before any kernel runs,
dropout's counter RNG, and the flush-to-zero discipline.

Tolerances (kernel vs twin):
  * float32: rtol 1e-5; float64: rtol 1e-12.
  * GEMM: additionally atol = c * K * max|a| * max|b| (c = 1e-6 / 1e-14):
    the kernel sums in a different order than the BLAS behind np.matmul.
  * Where a result is a difference of nearly equal quantities (softmax's and
    the losses' gradients, p - y), the absolute tolerance is rtol * max|ref|
    (a norm-wise bound): the twins compute in float64 and round once, the
    kernels round some intermediates to the array dtype.
Finite-difference gradient checks are in ``test_gradcheck_ops.py``.
"""
import importlib
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nncore._ext import config

from conftest import child_env

MODULES = ("gemm", "activations", "losses", "dropout", "optimizers", "metrics")
KERNEL = {m: importlib.import_module(f"nncore._ext.{m}") for m in MODULES}
TWIN = {m: importlib.import_module(f"nncore.ops.{m}") for m in MODULES}

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")
PAR = 65536  # PAR_MIN_ELEMS in src_cython/k_common.pxd

dt_ids = pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])


def rng_for(*key):
    """A generator seeded from the test's parameters (stable across runs)."""
    h = 0
    for k in key:
        for ch in repr(k):
            h = (h * 131 + ord(ch)) % (2 ** 32)
    return np.random.default_rng(h)


def close(actual, expected, dt, normwise=False, rtol=None, what=""):
    rtol = RTOL[dt] if rtol is None else rtol
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    atol = float(np.finfo(dt).tiny)   # kernels flush denormal results to 0
    if normwise and expected.size:
        atol = rtol * float(np.max(np.abs(expected)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def close_update(actual, expected, dt, *terms, what=""):
    """Element-wise closeness for r = t0 + t1 + ... : the bound is
    rtol * (|r| + sum |t_k|) per element.  The kernels are compiled with
    -march=native, so the compiler may fuse a*b + c into one FMA (one rounding
    instead of two); where the terms cancel, that changes r by up to an ulp of
    the *terms*, not of r."""
    rtol = RTOL[dt]
    bound = np.abs(expected).astype(np.float64)
    for t in terms:
        bound = bound + np.abs(t)
    bound = rtol * bound + float(np.finfo(dt).tiny)
    err = np.abs(actual.astype(np.float64) - expected)
    bad = err > bound
    if bad.any():
        i = int(np.argmax(bad))
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} elements differ; "
                             f"first at {i}: {actual.flat[i]!r} vs {expected.flat[i]!r} "
                             f"(bound {bound.flat[i]:.3g})")


@pytest.fixture
def threads():
    """Set the kernels' thread count inside a test; restored afterwards."""
    old = config.get_num_threads()
    yield config.set_num_threads
    config.set_num_threads(old)


# ----------------------------------------------------------------------------
# 0. Both sides define every kernel
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("mod", MODULES)
def test_kernel_module_has_every_twin_function(mod):
    twin = TWIN[mod]
    missing = [f for f in twin.__all__ if not callable(getattr(KERNEL[mod], f, None))]
    assert not missing, f"nncore._ext.{mod} lacks {missing}"


# ----------------------------------------------------------------------------
# 1. Kernel vs twin
# ----------------------------------------------------------------------------

# N covers every right-edge strip mix: one vector, half a vector, a vector and
# a half, two vectors (float32 AVX-512: 16 / 8 / 24 / 32 columns; float64 half that)
GEMM_SHAPES = [(1, 1, 1), (33, 17, 5), (7, 300, 129), (32, 100, 784),
               (32, 784, 100), (784, 32, 100), (32, 10, 100), (97, 257, 513),
               (5, 0, 3), (1, 64, 1), (2, 3, 1000), (9, 40, 20), (17, 70, 52),
               (8, 33, 30), (300, 5, 57), (130, 300, 24)]


def gemm_operands(rng, dt, M, K, N, ta, tb):
    a = rng.standard_normal((K, M) if ta else (M, K)).astype(dt)
    b = rng.standard_normal((N, K) if tb else (K, N)).astype(dt)
    return a, b


def gemm_atol(dt, K, a, b):
    c = 1e-6 if dt == np.float32 else 1e-14
    ma = float(np.abs(a).max()) if a.size else 0.0
    mb = float(np.abs(b).max()) if b.size else 0.0
    return c * max(K, 1) * ma * mb


@dt_ids
@pytest.mark.parametrize("accumulate", [False, True], ids=["set", "acc"])
@pytest.mark.parametrize("tb", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("ta", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("M,K,N", GEMM_SHAPES, ids=lambda s: str(s))
def test_gemm_matches_twin(M, K, N, ta, tb, accumulate, dt):
    rng = rng_for("gemm", M, K, N, ta, tb, accumulate, dt)
    a, b = gemm_operands(rng, dt, M, K, N, ta, tb)
    c0 = rng.standard_normal((M, N)).astype(dt)
    out_k = c0.copy() if accumulate else np.full((M, N), np.nan, dt)
    out_t = c0.copy()
    a0, b0 = a.copy(), b.copy()
    assert KERNEL["gemm"].gemm(a, b, out_k, ta, tb, accumulate) is None
    TWIN["gemm"].gemm(a, b, out_t, ta, tb, accumulate)
    np.testing.assert_allclose(out_k, out_t, rtol=RTOL[dt],
                               atol=gemm_atol(dt, K, a, b) + (RTOL[dt] * np.abs(c0).max()
                                                             if accumulate else 0))
    assert np.array_equal(a, a0) and np.array_equal(b, b0), "gemm modified its inputs"


@pytest.mark.parametrize("M,K,N", [(256, 1024, 1024), (512, 512, 512)])
def test_gemm_large_matches_matmul(M, K, N):
    rng = rng_for("gemm-large", M, K, N)
    a = rng.standard_normal((M, K), dtype=np.float32)
    b = rng.standard_normal((K, N), dtype=np.float32)
    out = np.empty((M, N), np.float32)
    KERNEL["gemm"].gemm(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=gemm_atol(np.float32, K, a, b))


def test_gemm_large_values_and_integers_exact():
    """Small integers: every partial sum is exact, so any summation order
    must give exactly np.matmul's result."""
    rng = rng_for("gemm-int")
    for dt in DTYPES:
        a = rng.integers(-8, 8, (37, 300)).astype(dt)
        b = rng.integers(-8, 8, (300, 41)).astype(dt)
        for ta, tb in [(0, 0), (1, 0), (0, 1), (1, 1)]:
            aa = np.ascontiguousarray(a.T) if ta else a
            bb = np.ascontiguousarray(b.T) if tb else b
            out = np.empty((37, 41), dt)
            KERNEL["gemm"].gemm(aa, bb, out, ta, tb)
            assert np.array_equal(out, a @ b)


ACT_SHAPES = [(1, 1), (33, 17), (7, 300), (32, 100), (32, 10), (3, 1), (1, 129)]


def act_input(rng, dt, shape, scale):
    return (rng.standard_normal(shape) * scale).astype(dt)


@dt_ids
@pytest.mark.parametrize("scale", [1.0, 1e3], ids=["x1", "x1e3"])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
def test_bias_act_forward_matches_twin(shape, act, with_bias, scale, dt):
    rng = rng_for("fwd", shape, act, with_bias, scale, dt)
    z = act_input(rng, dt, shape, scale)
    bias = act_input(rng, dt, shape[1], scale) if with_bias else None
    zk, zt = z.copy(), z.copy()
    assert KERNEL["activations"].bias_act_forward(zk, bias, act) is None
    TWIN["activations"].bias_act_forward(zt, bias, act)
    close(zk, zt, dt, normwise=(act == "softmax"))
    if act == "softmax":
        np.testing.assert_allclose(zk.sum(axis=1), 1, rtol=10 * RTOL[dt])


@dt_ids
@pytest.mark.parametrize("alias", [False, True], ids=["dz", "dz_is_grad"])
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("shape", ACT_SHAPES, ids=str)
def test_act_backward_matches_twin(shape, act, alias, dt):
    rng = rng_for("bwd", shape, act, alias, dt)
    out = act_input(rng, dt, shape, 2.0)
    TWIN["activations"].bias_act_forward(out, None, act)   # a genuine forward output
    grad = act_input(rng, dt, shape, 1.0)
    dz_t = np.empty_like(grad)
    TWIN["activations"].act_backward(grad, out, act, dz_t)
    out0 = out.copy()
    if alias:
        dz_k = grad.copy()
        KERNEL["activations"].act_backward(dz_k, out, act, dz_k)
    else:
        dz_k = np.full_like(grad, np.nan)
        grad0 = grad.copy()
        KERNEL["activations"].act_backward(grad, out, act, dz_k)
        assert np.array_equal(grad, grad0)
    assert np.array_equal(out, out0)
    close(dz_k, dz_t, dt, normwise=(act in ("tanh", "softmax")))  # 1 - a^2 cancels near |a| = 1


@dt_ids
@pytest.mark.parametrize("act", ["sigmoid", "tanh", "softmax"])
def test_act_backward_dz_aliasing_out(act, dt):
    """dz may also overwrite the forward output (each element reads a first)."""
    rng = rng_for("bwd-alias-out", act, dt)
    out = act_input(rng, dt, (9, 13), 2.0)
    TWIN["activations"].bias_act_forward(out, None, act)
    grad = act_input(rng, dt, (9, 13), 1.0)
    dz_t = np.empty_like(grad)
    TWIN["activations"].act_backward(grad, out, act, dz_t)
    buf = out.copy()
    KERNEL["activations"].act_backward(grad, buf, act, buf)
    close(buf, dz_t, dt, normwise=(act in ("tanh", "softmax")))


@dt_ids
@pytest.mark.parametrize("accumulate", [False, True], ids=["set", "acc"])
@pytest.mark.parametrize("shape", ACT_SHAPES + [(1000, 3), (0, 5)], ids=str)
def test_bias_grad_matches_twin(shape, accumulate, dt):
    rng = rng_for("bgrad", shape, accumulate, dt)
    dz = act_input(rng, dt, shape, 1.0)
    db0 = act_input(rng, dt, shape[1], 1.0)
    db_k = db0.copy() if accumulate else np.full(shape[1], np.nan, dt)
    db_t = db0.copy()
    KERNEL["activations"].bias_grad(dz, db_k, accumulate)
    TWIN["activations"].bias_grad(dz, db_t, accumulate)
    # Sequential vs pairwise summation over the rows: allow rtol * sum|dz|.
    atol = RTOL[dt] * (np.abs(dz).sum(axis=0).max() if dz.size else 0) + RTOL[dt] * np.abs(db0).max()
    np.testing.assert_allclose(db_k, db_t, rtol=RTOL[dt], atol=atol)


# --- losses ------------------------------------------------------------------

LOSS_SHAPES = [(1, 1), (1, 10), (33, 17), (7, 300), (32, 10), (129, 5), (2048, 10)]
LOGIT_LOSSES = ("softmax_crossentropy_sparse", "softmax_crossentropy",
                "sigmoid_binary_crossentropy")
PROB_LOSSES = ("crossentropy_from_probs", "crossentropy_sparse_from_probs",
               "binary_crossentropy_from_probs", "mean_squared_error")
SPARSE = ("softmax_crossentropy_sparse", "crossentropy_sparse_from_probs")


def loss_data(name, rng, dt, shape, scale):
    """(x, y) where y is int32 labels for the sparse losses."""
    n, c = shape
    if name in LOGIT_LOSSES:
        x = rng.standard_normal(shape) * scale
    elif name == "mean_squared_error":
        x = rng.standard_normal(shape) * scale
    elif name == "binary_crossentropy_from_probs":
        x = rng.uniform(0, 1, shape)
        x.flat[::7] = 0.0          # outside the clip range: zero gradient
        x.flat[3::11] = 1.0
        x.flat[5::13] = 1e-9
    else:  # the categorical probability losses
        e = np.exp(rng.standard_normal(shape) * 2)
        x = e / e.sum(axis=1, keepdims=True)
        if name == "crossentropy_from_probs":
            x *= rng.uniform(0.5, 2.0, (n, 1))   # not normalised: the loss renormalises
        if c > 1:
            x.flat[::9] = 0.0      # clipped (but never a whole row: 0 / 0)
    if name in SPARSE:
        y = rng.integers(0, c, n).astype(np.int32)
    elif name in ("softmax_crossentropy", "crossentropy_from_probs"):
        y = np.eye(c)[rng.integers(0, c, n)]
        y[::2] = rng.uniform(0, 1, (len(y[::2]), c))      # soft, unnormalised labels
    elif name in ("sigmoid_binary_crossentropy", "binary_crossentropy_from_probs"):
        y = rng.integers(0, 2, shape).astype(float)
        y[::3] = rng.uniform(0, 1, (len(y[::3]), c))
    else:
        y = rng.standard_normal(shape) * scale
    return x.astype(dt), (y if y.dtype == np.int32 else y.astype(dt))


def call_loss(mod, name, x, y, probs, d, scale, sw):
    f = getattr(mod, name)
    if name in LOGIT_LOSSES:
        return f(x, y, probs, d, scale, sw)
    return f(x, y, d, scale, sw)


@dt_ids
@pytest.mark.parametrize("with_d", [True, False], ids=["grad", "nograd"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unw", "sw"])
@pytest.mark.parametrize("shape", LOSS_SHAPES, ids=str)
@pytest.mark.parametrize("name,scale", [(nm, 1.0) for nm in LOGIT_LOSSES + PROB_LOSSES] +
                         [(nm, 1e3) for nm in LOGIT_LOSSES + ("mean_squared_error",)],
                         ids=lambda v: f"x{v:g}" if isinstance(v, float) else v)
def test_loss_matches_twin(name, shape, scale, weighted, with_d, dt):
    """Large values (|z| ~ 1e3) for the logits losses and MSE only."""
    rng = rng_for("loss", name, shape, scale, weighted, with_d, dt)
    x, y = loss_data(name, rng, dt, shape, scale)
    sw = rng.uniform(0, 2, shape[0]).astype(dt) if weighted else None
    s = 1.0 / shape[0]
    has_p = name in LOGIT_LOSSES
    pk = np.full(shape, np.nan, dt) if has_p else None
    pt = np.empty(shape, dt) if has_p else None
    dk = np.full(shape, np.nan, dt) if with_d else None
    dtw = np.empty(shape, dt) if with_d else None
    x0 = x.copy()
    lk = call_loss(KERNEL["losses"], name, x, y, pk, dk, s, sw)
    lt = call_loss(TWIN["losses"], name, x, y, pt, dtw, s, sw)
    assert isinstance(lk, float)
    assert np.array_equal(x, x0)
    # The loss sums n rows; a confident row's loss is a difference of two
    # large numbers (lse - z_label), so allow rtol per unit of |z| per row.
    rows_scale = shape[0] * (1 + (scale if name in LOGIT_LOSSES else 0))
    assert lk == pytest.approx(lt, rel=RTOL[dt], abs=RTOL[dt] * rows_scale)
    if has_p:
        close(pk, pt, dt, normwise=True, what="probs")
    if with_d:
        close(dk, dtw, dt, normwise=True, what="gradient")
        # elementwise as well, for elements not dominated by cancellation
        big = np.abs(dtw) > 1e-2 * np.abs(dtw).max()
        if name in ("softmax_crossentropy_sparse", "softmax_crossentropy") and dt == np.float32:
            big &= np.abs(dtw) > 1e-4  # p - y cancels when p ~ y
        close(dk[big], dtw[big], dt, rtol=(RTOL[dt] * (10 if dt == np.float32 else 100)))


@pytest.mark.parametrize("name", SPARSE)
def test_sparse_losses_one_class(name):
    """c = 1: every label is 0 and the loss is 0 (logits) / clipped (probs)."""
    for dt in DTYPES:
        x = np.full((4, 1), 0.5, dt) if "probs" in name else np.arange(4.0, dtype=dt)[:, None]
        y = np.zeros(4, np.int32)
        res = []
        for mod in (KERNEL["losses"], TWIN["losses"]):
            d = np.empty((4, 1), dt)
            p = np.empty((4, 1), dt)
            res.append((call_loss(mod, name, x, y, p, d, 0.25, None), d))
        assert res[0][0] == pytest.approx(res[1][0], abs=1e-12)
        np.testing.assert_allclose(res[0][1], res[1][1], atol=1e-7)


# --- dropout -----------------------------------------------------------------

DROP_SIZES = [1, 17, 1000, 100003]


@dt_ids
@pytest.mark.parametrize("seed,step", [(0, 0), (12345, 1), (2 ** 63 + 5, 7), (2 ** 64 - 1, 2 ** 64 - 1)])
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("n", DROP_SIZES)
def test_dropout_matches_twin_bitwise(n, rate, seed, step, dt):
    rng = rng_for("drop", n, rate, seed, step, dt)
    x = rng.standard_normal(n).astype(dt)
    ok, mk = np.full(n, np.nan, dt), np.full(n, 7, np.uint8)
    ot, mt = np.empty(n, dt), np.empty(n, np.uint8)
    KERNEL["dropout"].dropout_forward(x, ok, mk, rate, seed, step)
    TWIN["dropout"].dropout_forward(x, ot, mt, rate, seed, step)
    assert np.array_equal(mk, mt), "masks differ"
    assert set(np.unique(mk)) <= {0, 1}
    assert np.array_equal(ok, ot)
    # backward with that mask
    g = rng.standard_normal(n).astype(dt)
    dk, dtw = np.full(n, np.nan, dt), np.empty(n, dt)
    KERNEL["dropout"].dropout_backward(g, mk, rate, dk)
    TWIN["dropout"].dropout_backward(g, mt, rate, dtw)
    assert np.array_equal(dk, dtw)
    # in place (out aliasing x, dx aliasing grad) gives the same
    xi, gi = x.copy(), g.copy()
    KERNEL["dropout"].dropout_forward(xi, xi, mk, rate, seed, step)
    KERNEL["dropout"].dropout_backward(gi, mk, rate, gi)
    assert np.array_equal(xi, ot) and np.array_equal(gi, dtw)


def test_dropout_rate_zero_is_identity():
    x = rng_for("d0").standard_normal(1000)
    out, mask = np.empty_like(x), np.empty(1000, np.uint8)
    KERNEL["dropout"].dropout_forward(x, out, mask, 0.0, 3, 4)
    assert mask.all() and np.array_equal(out, x)


# --- optimizers ----------------------------------------------------------------

OPT_SIZES = [1, 17, 1000, 78400, 100003]
STEPS = 5


def opt_configs():
    """(id, function name, slot names, kwargs)."""
    return [
        ("sgd", "sgd_update", (), dict(learning_rate=0.1)),
        ("sgd_m0_slot", "sgd_update", ("momentum_slot",), dict(learning_rate=0.1, momentum=0.0)),
        ("sgd_momentum", "sgd_update", ("momentum_slot",), dict(learning_rate=0.05, momentum=0.9)),
        ("sgd_nesterov", "sgd_update", ("momentum_slot",), dict(learning_rate=0.05, momentum=0.9, nesterov=True)),
        ("adagrad", "adagrad_update", ("accumulator",), dict(learning_rate=0.01, epsilon=1e-7)),
        ("rmsprop", "rmsprop_update", ("velocity",), dict(learning_rate=0.001, rho=0.9)),
        ("rmsprop_centered", "rmsprop_update", ("velocity", "average_gradient"), dict(learning_rate=0.001, rho=0.9)),
        ("rmsprop_momentum", "rmsprop_update", ("velocity", "momentum_slot"), dict(learning_rate=0.001, rho=0.8, momentum=0.9)),
        ("rmsprop_centered_momentum", "rmsprop_update", ("velocity", "average_gradient", "momentum_slot"),
         dict(learning_rate=0.001, rho=0.9, momentum=0.5, epsilon=1e-6)),
        ("adam", "adam_update", ("m", "v"), dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)),
        ("adam_amsgrad", "adam_update", ("m", "v", "vhat"), dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7)),
    ]


ALL_SLOTS = {"sgd_update": ("momentum_slot",), "adagrad_update": ("accumulator",),
             "rmsprop_update": ("velocity", "average_gradient", "momentum_slot"),
             "adam_update": ("m", "v", "vhat")}


def run_opt(mod, fname, w, g, slots, kwargs, step):
    f = getattr(KERNEL["optimizers"] if mod == "k" else TWIN["optimizers"], fname)
    args = dict(kwargs)
    for s in ALL_SLOTS[fname]:
        args[s] = slots.get(s)
    if fname == "adam_update":
        args["step"] = step
    return f(w, g, **args)


def make_opt_state(rng, dt, n, slot_names, fname):
    w = rng.standard_normal(n).astype(dt)
    slots = {}
    for s in slot_names:
        if s in ("accumulator", "velocity", "v", "vhat"):
            slots[s] = rng.uniform(0, 0.1, n).astype(dt)     # running squares are >= 0
        else:
            slots[s] = (rng.standard_normal(n) * 0.01).astype(dt)
    if fname == "rmsprop_update" and "average_gradient" in slots:
        slots["average_gradient"] *= 0   # keeps v - mg^2 > 0
    if fname == "adam_update" and "vhat" in slots:
        slots["vhat"] = slots["v"] * rng.uniform(0.5, 1.5, n).astype(dt)
    return w, slots


@dt_ids
@pytest.mark.parametrize("n", OPT_SIZES)
@pytest.mark.parametrize("cfg", opt_configs(), ids=lambda c: c[0])
def test_optimizer_matches_twin_over_steps(cfg, n, dt):
    _, fname, slot_names, kwargs = cfg
    rng = rng_for("opt", cfg[0], n, dt)
    w, slots = make_opt_state(rng, dt, n, slot_names, fname)
    wt, st = w.copy(), {k: v.copy() for k, v in slots.items()}
    for step in range(1, STEPS + 1):
        g = (rng.standard_normal(n) * rng.choice([0.1, 1, 10])).astype(dt)
        g0 = g.copy()
        # Compare one step from the same state (so differences do not compound),
        # then carry the twin's state on.
        wk, sk = wt.copy(), {k: v.copy() for k, v in st.items()}
        w_old, s_old = wt.copy(), {k: v.copy() for k, v in st.items()}
        assert run_opt("k", fname, wk, g, sk, kwargs, step) is None
        run_opt("t", fname, wt, g, st, kwargs, step)
        assert np.array_equal(g, g0), "optimizer modified g"
        for s in slot_names:
            close_update(sk[s], st[s], dt, s_old[s], st[s] - s_old[s], what=f"{s} step {step}")
        close_update(wk, wt, dt, w_old, wt - w_old, what=f"w step {step}")


@pytest.mark.parametrize("step", [1, 2, 10, 1000, 10 ** 6])
def test_adam_alpha_matches_twin(step):
    for lr, b1, b2 in [(0.001, 0.9, 0.999), (0.1, 0.5, 0.9), (1.0, 0.0, 0.0)]:
        k = KERNEL["optimizers"].adam_alpha(lr, b1, b2, step)
        t = TWIN["optimizers"].adam_alpha(lr, b1, b2, step)
        assert k == pytest.approx(t, rel=1e-14)


@dt_ids
@pytest.mark.parametrize("with_g", [True, False], ids=["g", "nog"])
@pytest.mark.parametrize("l1,l2", [(0.01, 0.0), (0.0, 0.01), (0.01, 0.02), (0.0, 0.0), (1e-5, 3.0)])
@pytest.mark.parametrize("n", [1, 17, 1000, 78400])
def test_l1_l2_penalty_matches_twin(n, l1, l2, with_g, dt):
    rng = rng_for("l1l2", n, l1, l2, with_g, dt)
    w = rng.standard_normal(n).astype(dt)
    w[::5] = 0.0     # sign(0) = 0
    g0 = rng.standard_normal(n).astype(dt)
    gk = g0.copy() if with_g else None
    gt = g0.copy() if with_g else None
    pk = KERNEL["optimizers"].l1_l2_penalty_and_grad(w, gk, l1, l2)
    pt = TWIN["optimizers"].l1_l2_penalty_and_grad(w, gt, l1, l2)
    assert isinstance(pk, float)
    assert pk == pytest.approx(pt, rel=1e-12, abs=1e-300)   # both sum in float64
    if with_g:
        close_update(gk, gt, dt, g0, l1 + 0 * w, 2 * l2 * w.astype(np.float64), what="g")


# --- metrics -------------------------------------------------------------------

@dt_ids
@pytest.mark.parametrize("weighted", [False, True], ids=["unw", "sw"])
@pytest.mark.parametrize("ties", [False, True], ids=["noties", "ties"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 10), (33, 17), (500, 10), (64, 2)], ids=str)
def test_count_correct_matches_twin(shape, ties, weighted, dt):
    rng = rng_for("metrics", shape, ties, weighted, dt)
    n, c = shape
    probs = (rng.integers(0, 3, shape) / 2.0) if ties else rng.uniform(0, 1, shape)
    probs = probs.astype(dt)
    if ties:
        probs[0] = probs[0, 0]  # a fully tied row: argmax is the first column
    labels = rng.integers(0, c, n).astype(np.int32)
    labels[: n // 2] = np.argmax(probs[: n // 2], axis=1)  # half correct
    onehot_t = rng.integers(0, 3, shape).astype(dt) if ties else np.eye(c, dtype=dt)[labels]
    binary_t = rng.integers(0, 2, shape).astype(dt)
    sw = rng.uniform(0, 3, n).astype(dt) if weighted else None
    K, T = KERNEL["metrics"], TWIN["metrics"]
    for f, y in [("count_correct_sparse", labels), ("count_correct_onehot", onehot_t),
                 ("count_correct_binary", binary_t)]:
        k = getattr(K, f)(probs, y, sw)
        t = getattr(T, f)(probs, y, sw)
        assert isinstance(k, float)
        assert k == pytest.approx(t, rel=1e-12), f
    for thr in (0.25, 0.5, 0.75, 0.0):
        k = K.count_correct_binary(probs, binary_t, sw, threshold=thr)
        t = T.count_correct_binary(probs, binary_t, sw, threshold=thr)
        assert k == pytest.approx(t, rel=1e-12), thr


def test_count_correct_binary_threshold_not_representable_in_float32():
    """A float32 prediction equal to float32(threshold), threshold = 0.3.

    Keras compares ``y_pred > threshold`` in y_pred's dtype (float32), and the
    twin does too (NumPy 2 casts the Python float to float32): 0.3f > 0.3f is
    False.  The kernel compares in double: float32(0.3) = 0.30000001 > 0.3.
    """
    p = np.array([[0.3, 0.7, 0.5]], np.float32)
    y = np.array([[1, 1, 0]], np.float32)
    t = TWIN["metrics"].count_correct_binary(p, y, None, 0.3)
    k = KERNEL["metrics"].count_correct_binary(p, y, None, 0.3)
    assert t == pytest.approx(1 / 3)
    assert k == pytest.approx(t), "kernel compares in double, twin (and Keras) in float32"


# ----------------------------------------------------------------------------
# 3. Thread determinism: 1 thread vs 2 (and 3) threads, bitwise
# ----------------------------------------------------------------------------

def run_with_threads(threads, counts, fn):
    outs = []
    for t in counts:
        threads(t)
        outs.append(fn())
    return outs


def assert_all_bitwise_equal(outs):
    first = outs[0]
    for o in outs[1:]:
        assert len(o) == len(first)
        for a, b in zip(first, o):
            if isinstance(a, np.ndarray):
                assert np.array_equal(a, b, equal_nan=True)
            else:
                assert a == b


@pytest.mark.skipif(not config.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("M,K,N,dt", [(256, 1024, 1024, np.float32), (512, 512, 512, np.float32),
                                      (512, 512, 512, np.float64), (33, 4000, 17, np.float32)])
def test_gemm_thread_count_bitwise(threads, M, K, N, dt):
    rng = rng_for("det-gemm", M, K, N, dt)
    a = rng.standard_normal((M, K)).astype(dt)
    b = rng.standard_normal((K, N)).astype(dt)
    c0 = rng.standard_normal((M, N)).astype(dt)

    def run():
        res = []
        for ta, tb, acc in [(False, False, False), (True, False, True), (False, True, False)]:
            aa = np.ascontiguousarray(a.T) if ta else a
            bb = np.ascontiguousarray(b.T) if tb else b
            out = c0.copy()
            KERNEL["gemm"].gemm(aa, bb, out, ta, tb, acc)
            res.append(out)
        return res

    assert_all_bitwise_equal(run_with_threads(threads, (1, 2, 3), run))


@pytest.mark.skipif(not config.openmp_enabled(), reason="built without OpenMP")
@dt_ids
def test_elementwise_thread_count_bitwise(threads, dt):
    rng = rng_for("det-ew", dt)
    n, m = 600, 250           # 150,000 elements > PAR_MIN_ELEMS
    assert n * m > PAR
    z = rng.standard_normal((n, m)).astype(dt)
    bias = rng.standard_normal(m).astype(dt)
    grad = rng.standard_normal((n, m)).astype(dt)
    logits = (rng.standard_normal((n * 25, 10)) * 3).astype(dt)
    labels = rng.integers(0, 10, n * 25).astype(np.int32)
    targets = rng.uniform(0, 1, (n * 25, 10)).astype(dt)
    sw = rng.uniform(0, 2, n * 25).astype(dt)
    flat = n * m
    w0 = rng.standard_normal(flat).astype(dt)
    g = rng.standard_normal(flat).astype(dt)
    A, L, D, O = KERNEL["activations"], KERNEL["losses"], KERNEL["dropout"], KERNEL["optimizers"]

    def run():
        res = []
        for act in ACTIVATIONS:
            a = z.copy()
            A.bias_act_forward(a, bias, act)
            dz = np.empty_like(a)
            A.act_backward(grad, a, act, dz)
            res += [a, dz]
        for name in LOGIT_LOSSES + PROB_LOSSES:
            x = np.abs(logits) / 10 + 0.01 if name in PROB_LOSSES else logits
            y = labels if name in SPARSE else targets
            p, d = np.empty_like(x), np.empty_like(x)
            res += [call_loss(L, name, x, y, p, d, 1e-3, sw), d]
            if name in LOGIT_LOSSES:
                res.append(p)
        out, mask = np.empty(flat, dt), np.empty(flat, np.uint8)
        D.dropout_forward(w0, out, mask, 0.3, 99, 5)
        dx = np.empty(flat, dt)
        D.dropout_backward(g, mask, 0.3, dx)
        res += [out, mask, dx]
        for fname, slot_names, kw in [("sgd_update", ("momentum_slot",), dict(learning_rate=0.1, momentum=0.9, nesterov=True)),
                                      ("adagrad_update", ("accumulator",), dict(learning_rate=0.1)),
                                      ("rmsprop_update", ("velocity", "average_gradient", "momentum_slot"),
                                       dict(learning_rate=0.01, momentum=0.9)),
                                      ("adam_update", ("m", "v", "vhat"), dict(learning_rate=0.01, beta_1=0.9,
                                                                               beta_2=0.999, epsilon=1e-7))]:
            w = w0.copy()
            slots = {s: np.zeros(flat, dt) for s in slot_names}
            for step in (1, 2):
                run_opt("k", fname, w, g, slots, kw, step)
            res += [w] + [slots[s] for s in slot_names]
        gg = g.copy()
        res += [O.l1_l2_penalty_and_grad(w0, gg, 0.01, 0.02), gg]
        return res

    assert_all_bitwise_equal(run_with_threads(threads, (1, 2, 3), run))


# ----------------------------------------------------------------------------
# 4. Invalid arguments raise before any kernel runs
# ----------------------------------------------------------------------------

def _spec(dt):
    """name -> (function, args, kwargs, legal shape changes).

    Every array argument is a float array of dtype dt (labels: int32; the
    dropout mask: uint8).  'legal' lists (argument index, 'rows' | 'cols')
    changes that are *valid* calls (excluded from the shape-mismatch test).
    """
    r = np.random.default_rng(0)

    def f(*shape):
        return r.uniform(0.1, 0.9, shape).astype(dt)

    lab = np.array([0, 3, 1, 2, 0], np.int32)
    mask = np.ones(20, np.uint8)
    K = KERNEL
    return {
        "gemm": (K["gemm"].gemm, [f(5, 4), f(4, 6), f(5, 6)], {}, set()),
        "gemm_tt": (K["gemm"].gemm, [f(4, 5), f(6, 4), f(5, 6), True, True], {}, set()),
        "bias_act_forward": (K["activations"].bias_act_forward, [f(5, 4), f(4), "relu"], {}, {(0, "rows")}),
        "act_backward": (K["activations"].act_backward, [f(5, 4), f(5, 4), "sigmoid", f(5, 4)], {}, set()),
        "bias_grad": (K["activations"].bias_grad, [f(5, 4), f(4)], {}, {(0, "rows")}),
        "softmax_crossentropy_sparse": (K["losses"].softmax_crossentropy_sparse,
                                        [f(5, 4), lab, f(5, 4), f(5, 4), 0.2, f(5)], {}, set()),
        "softmax_crossentropy": (K["losses"].softmax_crossentropy,
                                 [f(5, 4), f(5, 4), f(5, 4), f(5, 4), 0.2, f(5)], {}, set()),
        "sigmoid_binary_crossentropy": (K["losses"].sigmoid_binary_crossentropy,
                                        [f(5, 4), f(5, 4), f(5, 4), f(5, 4), 0.2, f(5)], {}, set()),
        "crossentropy_from_probs": (K["losses"].crossentropy_from_probs,
                                    [f(5, 4), f(5, 4), f(5, 4), 0.2, f(5)], {}, set()),
        "crossentropy_sparse_from_probs": (K["losses"].crossentropy_sparse_from_probs,
                                           [f(5, 4), lab, f(5, 4), 0.2, f(5)], {}, set()),
        "binary_crossentropy_from_probs": (K["losses"].binary_crossentropy_from_probs,
                                           [f(5, 4), f(5, 4), f(5, 4), 0.2, f(5)], {}, set()),
        "mean_squared_error": (K["losses"].mean_squared_error,
                               [f(5, 4), f(5, 4), f(5, 4), 0.2, f(5)], {}, set()),
        "dropout_forward": (K["dropout"].dropout_forward, [f(20), f(20), mask.copy(), 0.5, 1, 2], {}, set()),
        "dropout_backward": (K["dropout"].dropout_backward, [f(20), mask.copy(), 0.5, f(20)], {}, set()),
        "sgd_update": (K["optimizers"].sgd_update, [f(20), f(20), f(20), 0.1, 0.9, True], {}, set()),
        "adagrad_update": (K["optimizers"].adagrad_update, [f(20), f(20), f(20), 0.1], {}, set()),
        "rmsprop_update": (K["optimizers"].rmsprop_update, [f(20), f(20), f(20), f(20), f(20), 0.1, 0.9, 0.5], {}, set()),
        "adam_update": (K["optimizers"].adam_update,
                        [f(20), f(20), f(20), f(20), f(20), 0.1, 0.9, 0.999, 1e-7, 3], {}, set()),
        "l1_l2_penalty_and_grad": (K["optimizers"].l1_l2_penalty_and_grad, [f(20), f(20), 0.1, 0.1], {}, set()),
        "count_correct_sparse": (K["metrics"].count_correct_sparse, [f(5, 4), lab, f(5)], {}, {(0, "cols")}),
        "count_correct_onehot": (K["metrics"].count_correct_onehot, [f(5, 4), f(5, 4), f(5)], {}, set()),
        "count_correct_binary": (K["metrics"].count_correct_binary, [f(5, 4), f(5, 4), f(5)], {}, set()),
    }


SPEC_NAMES = list(_spec(np.float64))


def _snapshot(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def _assert_raises_untouched(fn, args, kwargs, excs=(ValueError, TypeError)):
    before = _snapshot(args)
    with pytest.raises(excs):
        fn(*args, **kwargs)
    for a, b in zip(args, before):
        if isinstance(a, np.ndarray):
            assert np.array_equal(a, b, equal_nan=True), "an argument was written before the error"


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_valid_spec_runs(name):
    """The argument sets used below are valid (so the failures below are
    caused by the one change each makes)."""
    for dt in DTYPES:
        fn, args, kw, _ = _spec(dt)[name]
        fn(*args, **kw)


def _grown(a, how):
    if a.ndim == 1:
        return np.concatenate([a, a[:1]])
    if how == "rows":
        return np.concatenate([a, a[:1]], axis=0)
    return np.concatenate([a, a[:, :1]], axis=1)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_shape_mismatch_raises(name):
    for dt in DTYPES:
        fn, args, kw, legal = _spec(dt)[name]
        for i, a in enumerate(args):
            if not isinstance(a, np.ndarray):
                continue
            for how in (("rows", "cols") if a.ndim == 2 else ("rows",)):
                if (i, how) in legal:
                    continue
                bad = list(_spec(dt)[name][1])
                bad[i] = _grown(bad[i], how)
                _assert_raises_untouched(fn, bad, kw)


def _variants(a, dt):
    """Invalid replacements for array argument a: (label, array)."""
    out = []
    if a.ndim == 2:
        wide = np.repeat(a, 2, axis=1)
        out.append(("noncontig", wide[:, ::2]))
        out.append(("fortran", np.asfortranarray(a)))
    else:
        out.append(("strided", np.repeat(a, 2)[::2]))
    if a.dtype == np.int32:          # labels
        out += [("int64", a.astype(np.int64)), ("float", a.astype(dt))]
    elif a.dtype == np.uint8:        # dropout mask
        out += [("int64", a.astype(np.int64)), ("float", a.astype(dt))]
    else:
        other = np.float64 if dt == np.float32 else np.float32
        out += [("int64", a.astype(np.int64)), ("int32", a.astype(np.int32)),
                ("float16", a.astype(np.float16)), ("mixed", a.astype(other))]
    return out


@pytest.mark.parametrize("name", SPEC_NAMES)
@dt_ids
def test_bad_layout_or_dtype_raises(name, dt):
    fn, args, kw, _ = _spec(dt)[name]
    for i, a in enumerate(args):
        if not isinstance(a, np.ndarray):
            continue
        for label, v in _variants(a, dt):
            if label in ("noncontig", "strided", "fortran"):
                assert not v.flags.c_contiguous
            bad = list(_spec(dt)[name][1])
            bad[i] = v
            try:
                _assert_raises_untouched(fn, bad, kw)
            except BaseException as e:  # noqa: BLE001 (name the case)
                raise AssertionError(f"{name}: argument {i} as {label} did not raise: {e}") from None


@pytest.mark.parametrize("name", SPARSE)
@pytest.mark.parametrize("label", [-1, 4, 1000, -2 ** 31])
@pytest.mark.parametrize("side", ["kernel", "twin"])
def test_label_out_of_range_raises(name, label, side):
    for dt in DTYPES:
        fn, args, kw, _ = _spec(dt)[name]
        if side == "twin":
            fn = getattr(TWIN["losses"], name)
        args[1] = args[1].copy()
        args[1][2] = label
        _assert_raises_untouched(fn, args, kw, ValueError)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), float("inf")])
@pytest.mark.parametrize("side", ["kernel", "twin"])
def test_dropout_rate_out_of_range_raises(rate, side):
    mod = KERNEL["dropout"] if side == "kernel" else TWIN["dropout"]
    for dt in DTYPES:
        x, out, mask = np.ones(10, dt), np.zeros(10, dt), np.zeros(10, np.uint8)
        _assert_raises_untouched(mod.dropout_forward, [x, out, mask, rate, 1, 1], {}, ValueError)
        _assert_raises_untouched(mod.dropout_backward, [x, mask, rate, out], {}, ValueError)


@pytest.mark.parametrize("step", [0, -1])
@pytest.mark.parametrize("side", ["kernel", "twin"])
def test_adam_step_below_one_raises(step, side):
    mod = KERNEL["optimizers"] if side == "kernel" else TWIN["optimizers"]
    w, g, m, v = (np.ones(5) for _ in range(4))
    _assert_raises_untouched(mod.adam_update, [w, g, m, v, None, 0.1, 0.9, 0.999, 1e-7, step], {}, ValueError)


@pytest.mark.parametrize("act", ["gelu", "Relu", "", "soft max"])
@pytest.mark.parametrize("side", ["kernel", "twin"])
def test_unknown_activation_raises(act, side):
    mod = KERNEL["activations"] if side == "kernel" else TWIN["activations"]
    z = np.ones((3, 4))
    _assert_raises_untouched(mod.bias_act_forward, [z, np.ones(4), act], {}, ValueError)
    _assert_raises_untouched(mod.act_backward, [z, z.copy(), act, z.copy()], {}, ValueError)


def test_set_num_threads_rejects_zero():
    with pytest.raises(ValueError):
        config.set_num_threads(0)


# None for a *required* array must raise, not crash: run each call in a child
# process so a segmentation fault fails one test instead of the whole run.
NONE_CASES = {
    "softmax_crossentropy_sparse(probs=None)": "L.softmax_crossentropy_sparse(z, lab, None, None, 1.0)",
    "softmax_crossentropy(probs=None)": "L.softmax_crossentropy(z, z.copy(), None, z.copy(), 1.0)",
    "sigmoid_binary_crossentropy(probs=None)": "L.sigmoid_binary_crossentropy(z, z.copy(), None, None, 1.0)",
    "softmax_crossentropy_sparse(labels=None)": "L.softmax_crossentropy_sparse(z, None, z.copy(), None, 1.0)",
    "crossentropy_sparse_from_probs(labels=None)": "L.crossentropy_sparse_from_probs(z, None, None, 1.0)",
    "softmax_crossentropy(targets=None)": "L.softmax_crossentropy(z, None, z.copy(), None, 1.0)",
    "mean_squared_error(targets=None)": "L.mean_squared_error(z, None, None, 1.0)",
    "binary_crossentropy_from_probs(targets=None)": "L.binary_crossentropy_from_probs(z, None, None, 1.0)",
    "count_correct_sparse(labels=None)": "M.count_correct_sparse(z, None)",
    "count_correct_onehot(targets=None)": "M.count_correct_onehot(z, None)",
    "count_correct_binary(targets=None)": "M.count_correct_binary(z, None)",
    "gemm(out=None)": "G.gemm(z, z.T.copy(), None)",
    "bias_act_forward(z=None)": "A.bias_act_forward(None, None, 'relu')",
    "dropout_backward(mask=None)": "D.dropout_backward(z.ravel(), None, 0.5, z.ravel().copy())",
    "adagrad_update(accumulator=None)": "O.adagrad_update(z.ravel(), z.ravel().copy(), None, 0.1)",
}


@pytest.mark.parametrize("case", list(NONE_CASES))
def test_none_for_required_array_raises_not_crashes(case):
    code = textwrap.dedent(f"""
        import numpy as np
        from nncore._ext import losses as L, metrics as M, gemm as G, activations as A
        from nncore._ext import dropout as D, optimizers as O
        z = np.full((3, 4), 0.25); lab = np.zeros(3, np.int32)
        try:
            {NONE_CASES[case]}
        except (ValueError, TypeError):
            print("RAISED")
        else:
            print("NO ERROR")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=child_env(), timeout=60)
    assert r.returncode == 0, f"{case}: child died with return code {r.returncode} (signal {-r.returncode})\n{r.stderr[-500:]}"
    assert "RAISED" in r.stdout, f"{case}: {r.stdout} {r.stderr[-500:]}"


# ----------------------------------------------------------------------------
# 5. Dropout statistics
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.8])
def test_dropout_keep_fraction_and_mean(rate):
    n = 1_000_000
    keep = 1 - rate
    x = rng_for("dstat", rate).uniform(0.5, 1.5, n).astype(np.float32)
    out, mask = np.empty_like(x), np.empty(n, np.uint8)
    KERNEL["dropout"].dropout_forward(x, out, mask, rate, 2024, 3)
    k = int(mask.sum())
    assert abs(k - n * keep) < 5 * math.sqrt(n * keep * rate)
    # E[out] = E[x]; Var[out_i] <= E[x^2] / keep
    sd = math.sqrt(float(np.mean(x.astype(np.float64) ** 2)) / keep / n)
    assert abs(out.mean(dtype=np.float64) - x.mean(dtype=np.float64)) < 5 * sd
    # kept elements are scaled by exactly float32(1 / keep)
    np.testing.assert_array_equal(out[mask == 1], x[mask == 1] * np.float32(1 / keep))
    assert not out[mask == 0].any()


def test_dropout_masks_depend_on_seed_and_step_only():
    n, rate = 200_000, 0.5

    def mask(seed, step):
        out, m = np.empty(n), np.empty(n, np.uint8)
        KERNEL["dropout"].dropout_forward(np.ones(n), out, m, rate, seed, step)
        return m

    base = mask(7, 1)
    assert np.array_equal(base, mask(7, 1))
    # dtype does not matter: same uniforms
    out32, m32 = np.empty(n, np.float32), np.empty(n, np.uint8)
    KERNEL["dropout"].dropout_forward(np.ones(n, np.float32), out32, m32, rate, 7, 1)
    assert np.array_equal(base, m32)
    # a prefix of a longer array gets the same mask (element i depends on i only)
    out_s, m_s = np.empty(1000), np.empty(1000, np.uint8)
    KERNEL["dropout"].dropout_forward(np.ones(1000), out_s, m_s, rate, 7, 1)
    assert np.array_equal(base[:1000], m_s)
    for other in (mask(8, 1), mask(7, 2), mask(7, 0), mask(6, 2)):
        agree = float(np.mean(other == base))
        # independent masks agree on a fraction keep^2 + rate^2 = 0.5
        assert abs(agree - 0.5) < 5 * math.sqrt(0.25 / n)


# ----------------------------------------------------------------------------
# 6. Flush-to-zero is on inside kernels only
# ----------------------------------------------------------------------------

TINY32 = np.finfo(np.float32).tiny   # smallest normal float32, 1.18e-38


def _call_every_kernel_once(n):
    rng = np.random.default_rng(1)
    z = rng.standard_normal((n, 10))
    KERNEL["gemm"].gemm(z, z, np.empty((10, 10)), True)   # K = n: parallel when n is large
    a = z.copy()
    KERNEL["activations"].bias_act_forward(a, np.ones(10), "softmax")
    KERNEL["activations"].act_backward(z, a, "softmax", np.empty_like(z))
    KERNEL["activations"].bias_grad(z, np.empty(10))
    KERNEL["losses"].softmax_crossentropy_sparse(z, np.zeros(n, np.int32), np.empty_like(z),
                                                 np.empty_like(z), 1.0)
    f = z.ravel().copy()
    KERNEL["optimizers"].adam_update(f, f.copy(), np.zeros_like(f), np.zeros_like(f), None,
                                     0.1, 0.9, 0.999, 1e-7, 1)
    KERNEL["optimizers"].l1_l2_penalty_and_grad(f, f.copy(), 0.1, 0.1)
    KERNEL["dropout"].dropout_forward(f, f.copy(), np.empty(f.size, np.uint8), 0.5, 1, 1)
    KERNEL["metrics"].count_correct_sparse(z, np.zeros(n, np.int32))


@pytest.mark.parametrize("n", [10, 30_000], ids=["serial", "parallel"])
def test_fpu_mode_restored_after_kernels(threads, n):
    if config.num_procs() > 1:
        threads(2)
    assert not config.ftz_active()
    _call_every_kernel_once(n)
    assert not config.ftz_active()
    # ...and NumPy in this thread still produces denormals
    assert np.float32(TINY32) / np.float32(16) > 0


@pytest.mark.skipif(not config.has_ftz(), reason="no MXCSR on this platform")
@pytest.mark.parametrize("n", [8, 100_000], ids=["serial", "parallel"])
def test_rmsprop_velocity_flushes_denormals_to_zero(threads, n):
    """Documented behaviour: v decaying from 1e-37 with rho = 0.9 leaves the
    normal range after ~21 steps; the kernel (FTZ on) stores exactly 0, the
    twin keeps the denormal."""
    if config.num_procs() > 1:
        threads(2)
    dt = np.float32
    state = {}
    for side in ("k", "t"):
        w = np.ones(n, dt)
        v = np.full(n, 1e-37, dt)
        for step in range(30):
            run_opt(side, "rmsprop_update", w, np.zeros(n, dt), {"velocity": v},
                    dict(learning_rate=0.001, rho=0.9), step + 1)
        state[side] = (w, v)
    vk, vt = state["k"][1], state["t"][1]
    assert np.all((vt > 0) & (vt < TINY32)), "twin: NumPy keeps denormals"
    assert np.all(vk == 0), "kernel: denormal results are flushed to exactly 0"
    assert np.array_equal(state["k"][0], state["t"][0])  # g = 0: w unchanged either way
    assert not config.ftz_active()


@pytest.mark.skipif(not config.has_ftz(), reason="no MXCSR on this platform")
def test_gemm_treats_denormal_inputs_as_zero():
    """DAZ: a denormal operand counts as 0 inside the GEMM."""
    a = np.full((4, 3), TINY32 / 4, np.float32)          # denormal
    b = np.full((3, 5), 1e30, np.float32)
    out = np.empty((4, 5), np.float32)
    KERNEL["gemm"].gemm(a, b, out)
    assert np.all(out == 0)
    assert np.all((a @ b) > 0)   # NumPy / BLAS keeps them
    assert not config.ftz_active()


def test_sigmoid_float32_special_values_and_position():
    """The vectorised float32 sigmoid: NaN stays NaN, +-inf and |x| > 87.34
    give exactly 1 and 0, and an element's result does not depend on where
    it sits (the thread team splits rows and columns anywhere)."""
    act = KERNEL["activations"]
    z = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0, 88.0, -88.0, 1e-30, -1e-30, 5.0]],
                 np.float32)
    out = z.copy()
    act.bias_act_forward(out, None, "sigmoid")
    assert np.isnan(out[0, 0])
    assert out[0, 1] == 1 and out[0, 2] == 0 and out[0, 5] == 1 and out[0, 6] == 0
    assert out[0, 3] == out[0, 4] == 0.5 and out[0, 7] == out[0, 8] == 0.5
    assert abs(out[0, 9] - 1 / (1 + np.exp(-5.0))) < 1e-7
    rng = rng_for("sigmoid-position")
    x = rng.normal(0, 8, 77).astype(np.float32)
    whole = x[None, :].copy()
    act.bias_act_forward(whole, None, "sigmoid")
    for width in (1, 3, 16, 17, 40):                 # the same values, other offsets
        for start in range(0, 77, width):
            part = x[None, start:start + width].copy()
            act.bias_act_forward(part, None, "sigmoid")
            assert np.array_equal(part[0], whole[0, start:start + width])
