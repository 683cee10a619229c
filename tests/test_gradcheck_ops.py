"""Finite-difference gradient checks of every differentiable op, float64.

Each analytic gradient (what the backward kernels compute) is compared with
central differences, (f(x + eps) - f(x - eps)) / (2 eps), eps = 1e-6, at
rtol 1e-6 / atol 1e-8.  Both backends are checked: the compiled kernels
(``nncore._ext``) and their NumPy twins (``nncore.ops``).

Scalar objectives: for an op y = f(x) with a vector output, L = sum(y * G)
for a fixed random G, so dL/dy = G is the upstream gradient fed to backward.
"""
import importlib
import zlib

import numpy as np
import pytest

MODULES = ("gemm", "activations", "losses", "dropout", "optimizers")
BACKENDS = {
    "cython": {m: importlib.import_module(f"nncore._ext.{m}") for m in MODULES},
    "numpy": {m: importlib.import_module(f"nncore.ops.{m}") for m in MODULES},
}
EPS = 1e-6
RTOL, ATOL = 1e-6, 1e-8
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")

backend = pytest.mark.parametrize("be", list(BACKENDS))


def numeric_grad(f, x):
    """Central differences of the scalar f() w.r.t. every entry of x (in place)."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + EPS
        fp = f()
        flat[i] = old - EPS
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * EPS)
    return g


def check(analytic, numeric, what=""):
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL, err_msg=what)


def away_from_zero(rng, shape, lo=0.1, hi=1.0):
    """Values with |v| in [lo, hi): no kinks (relu, |w|) within eps."""
    return rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)


# ----------------------------------------------------------------------------
# Dense layer: A = act(X . W + b), and the transposed storage variants
# ----------------------------------------------------------------------------

@backend
@pytest.mark.parametrize("w_transposed", [False, True], ids=["W", "WT"])
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("n,din,dout", [(1, 1, 1), (3, 5, 4), (4, 7, 3)])
def test_dense_layer_gradients(be, n, din, dout, act, w_transposed):
    K = BACKENDS[be]
    rng = np.random.default_rng(zlib.crc32(repr((n, din, dout, act, w_transposed)).encode()))
    X = rng.standard_normal((n, din))
    # W stored as (din, dout), or as (dout, din) and used through trans_b.
    W = rng.standard_normal((dout, din) if w_transposed else (din, dout)) * 0.7
    b = rng.standard_normal(dout) * 0.5
    G = rng.standard_normal((n, dout))

    def forward():
        Z = np.empty((n, dout))
        K["gemm"].gemm(X, W, Z, False, w_transposed)
        K["activations"].bias_act_forward(Z, b, act)
        return Z

    def loss():
        return float((forward() * G).sum())

    if act == "relu":   # keep every pre-activation away from the kink
        Z = np.empty((n, dout))
        K["gemm"].gemm(X, W, Z, False, w_transposed)
        for j in range(dout):
            while np.any(np.abs(Z[:, j] + b[j]) < 0.05):
                b[j] += 0.07
    A = forward()
    dZ = np.empty_like(A)
    K["activations"].act_backward(G, A, act, dZ)
    dX = np.empty_like(X)
    dW = np.empty_like(W)
    db = np.empty_like(b)
    if w_transposed:
        K["gemm"].gemm(dZ, W, dX)                        # dX = dZ . (W^T)^T
        K["gemm"].gemm(dZ, X, dW, trans_a=True)          # dW^T = dZ^T . X
    else:
        K["gemm"].gemm(dZ, W, dX, trans_b=True)          # dX = dZ . W^T
        K["gemm"].gemm(X, dZ, dW, trans_a=True)          # dW = X^T . dZ
    K["activations"].bias_grad(dZ, db)
    check(dX, numeric_grad(loss, X), "dX")
    check(dW, numeric_grad(loss, W), "dW")
    check(db, numeric_grad(loss, b), "db")

    # accumulate=True adds a second batch's gradient on top
    dW2 = dW.copy()
    db2 = db.copy()
    if w_transposed:
        K["gemm"].gemm(dZ, X, dW2, trans_a=True, accumulate=True)
    else:
        K["gemm"].gemm(X, dZ, dW2, trans_a=True, accumulate=True)
    K["activations"].bias_grad(dZ, db2, accumulate=True)
    np.testing.assert_allclose(dW2, 2 * dW, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(db2, 2 * db, rtol=1e-14, atol=1e-15)


@backend
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (4, 6)])
def test_activation_backward(be, act, shape):
    A_mod = BACKENDS[be]["activations"]
    rng = np.random.default_rng(zlib.crc32(repr((act, shape)).encode()))
    z = away_from_zero(rng, shape, 0.05, 2.0)
    G = rng.standard_normal(shape)

    def fwd():
        a = z.copy()
        A_mod.bias_act_forward(a, None, act)
        return a

    a = fwd()
    dz = np.empty_like(z)
    A_mod.act_backward(G, a, act, dz)
    check(dz, numeric_grad(lambda: float((fwd() * G).sum()), z), act)


# ----------------------------------------------------------------------------
# Losses: the gradient written into d is that of scale * (returned loss)
# ----------------------------------------------------------------------------

def _loss_case(name, rng, n, c):
    if name == "softmax_crossentropy_sparse":
        return rng.standard_normal((n, c)) * 2, rng.integers(0, c, n).astype(np.int32)
    if name == "softmax_crossentropy":
        return rng.standard_normal((n, c)) * 2, rng.uniform(0, 1, (n, c))   # soft, unnormalised
    if name == "sigmoid_binary_crossentropy":
        return rng.standard_normal((n, c)) * 2, rng.uniform(0, 1, (n, c))
    if name == "crossentropy_from_probs":
        return rng.uniform(0.2, 1.0, (n, c)), rng.uniform(0, 1, (n, c))      # renormalised inside
    if name == "crossentropy_sparse_from_probs":
        return rng.uniform(0.05, 0.95, (n, c)), rng.integers(0, c, n).astype(np.int32)
    if name == "binary_crossentropy_from_probs":
        return rng.uniform(0.05, 0.95, (n, c)), rng.uniform(0, 1, (n, c))
    return rng.standard_normal((n, c)), rng.standard_normal((n, c))           # MSE


LOSSES = ("softmax_crossentropy_sparse", "softmax_crossentropy",
          "sigmoid_binary_crossentropy", "crossentropy_from_probs",
          "crossentropy_sparse_from_probs", "binary_crossentropy_from_probs",
          "mean_squared_error")
FROM_LOGITS = LOSSES[:3]


@backend
@pytest.mark.parametrize("weighted", [False, True], ids=["unw", "sw"])
@pytest.mark.parametrize("n,c", [(1, 1), (1, 4), (3, 5), (5, 2)])
@pytest.mark.parametrize("name", LOSSES)
def test_loss_gradient(be, name, n, c, weighted):
    L = BACKENDS[be]["losses"]
    f = getattr(L, name)
    rng = np.random.default_rng(zlib.crc32(repr((name, n, c, weighted)).encode()))
    x, y = _loss_case(name, rng, n, c)
    sw = rng.uniform(0.2, 2.0, n) if weighted else None
    scale = 1.0 / n

    def value(d=None):
        if name in FROM_LOGITS:
            return f(x, y, np.empty_like(x), d, scale, sw)
        return f(x, y, d, scale, sw)

    d = np.empty_like(x)
    total = value(d)
    assert total == pytest.approx(value(None), rel=1e-15)
    check(d, numeric_grad(lambda: scale * value(None), x), name)


# ----------------------------------------------------------------------------
# Dropout (fixed mask) and weight penalties
# ----------------------------------------------------------------------------

@backend
@pytest.mark.parametrize("rate", [0.0, 0.25, 0.6])
def test_dropout_backward_with_fixed_mask(be, rate):
    D = BACKENDS[be]["dropout"]
    rng = np.random.default_rng(int(rate * 100))
    n = 40
    x = rng.standard_normal(n)
    G = rng.standard_normal(n)
    mask = np.empty(n, np.uint8)

    def loss():
        out = np.empty(n)
        D.dropout_forward(x, out, mask, rate, 11, 3)   # same seed/step: same mask
        return float((out * G).sum())

    loss()
    dx = np.empty(n)
    D.dropout_backward(G, mask, rate, dx)
    check(dx, numeric_grad(loss, x))
    if rate > 0:
        assert 0 < mask.sum() < n


@backend
@pytest.mark.parametrize("l1,l2", [(0.01, 0.0), (0.0, 0.03), (0.02, 0.5), (1.0, 1.0)])
def test_l1_l2_penalty_gradient(be, l1, l2):
    O = BACKENDS[be]["optimizers"]
    rng = np.random.default_rng(int(l1 * 1000 + l2 * 100))
    w = away_from_zero(rng, 30)
    g = np.zeros(30)
    O.l1_l2_penalty_and_grad(w, g, l1, l2)
    check(g, numeric_grad(lambda: O.l1_l2_penalty_and_grad(w, None, l1, l2), w))
