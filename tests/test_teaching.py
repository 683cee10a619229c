"""The teaching tools: gradient_check and trace (nncore.utils.teaching)."""
import numpy as np
import pytest

import nncore as keras
from nncore import backend, config
from nncore import random as nn_random
from nncore.utils import gradient_check, trace

L = keras.layers


def _data(n=6, d=5, c=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    labels = rng.integers(0, c, size=n)
    labels[:c] = np.arange(c)
    onehot = np.eye(c, dtype=np.float32)[labels]
    return x, labels, onehot


def _model(layers, loss, optimizer="sgd", seed=0, d=5):
    """layers: a list, or a function returning one (called after seeding, so
    Dropout seeds are reproducible too)."""
    keras.utils.set_random_seed(seed)
    layers = layers() if callable(layers) else layers
    m = keras.Sequential([keras.Input(shape=(d,))] + layers)
    m.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return m


# (description, layers, loss, target kind, expected loss path)
CASES = [
    ("relu + softmax/sparse CE", lambda: [L.Dense(4, activation="relu"), L.Dense(3, activation="softmax")],
     "sparse_categorical_crossentropy", "sparse", "logits"),
    ("sigmoid + softmax/CE", lambda: [L.Dense(4, activation="sigmoid"), L.Dense(3, activation="softmax")],
     "categorical_crossentropy", "onehot", "logits"),
    ("tanh + sigmoid/BCE", lambda: [L.Dense(4, activation="tanh"), L.Dense(3, activation="sigmoid")],
     "binary_crossentropy", "onehot", "logits"),
    ("linear + tanh/MSE", lambda: [L.Dense(4), L.Dense(3, activation="tanh")],
     "mse", "onehot", "probs"),
    ("hidden softmax + linear/MSE", lambda: [L.Dense(4, activation="softmax"), L.Dense(3)],
     "mse", "onehot", "probs"),
    ("sparse CE from probabilities (sigmoid output)",
     lambda: [L.Dense(4, activation="relu"), L.Dense(3, activation="sigmoid")],
     "sparse_categorical_crossentropy", "sparse", "probs"),
    ("CE from probabilities (sigmoid output)",
     lambda: [L.Dense(4, activation="tanh"), L.Dense(3, activation="sigmoid")],
     "categorical_crossentropy", "onehot", "probs"),
    ("BCE from probabilities (softmax output)",
     lambda: [L.Dense(4, activation="relu"), L.Dense(3, activation="softmax")],
     "binary_crossentropy", "onehot", "probs"),
    ("sparse CE from_logits=True (linear output)",
     lambda: [L.Dense(4, activation="relu"), L.Dense(3)],
     keras.losses.SparseCategoricalCrossentropy(from_logits=True), "sparse", "output_logits"),
    ("BCE from_logits=True (linear output)",
     lambda: [L.Dense(4, activation="relu"), L.Dense(3)],
     keras.losses.BinaryCrossentropy(from_logits=True), "onehot", "output_logits"),
    ("Dense + Activation('softmax') layer",
     lambda: [L.Dense(4, activation="relu"), L.Dense(3), L.Activation("softmax")],
     "sparse_categorical_crossentropy", "sparse", "logits"),
    ("L2 and L1 regularizers",
     lambda: [L.Dense(4, activation="relu", kernel_regularizer=keras.regularizers.l2(0.05),
                      bias_regularizer=keras.regularizers.l1(0.02)),
              L.Dense(3, activation="softmax", kernel_regularizer="l1_l2")],
     "sparse_categorical_crossentropy", "sparse", "logits"),
    ("Dropout (fixed mask)",
     lambda: [L.Dense(6, activation="relu"), L.Dropout(0.4), L.Dense(3, activation="softmax")],
     "sparse_categorical_crossentropy", "sparse", "logits"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_gradient_check_passes(case):
    _, make, loss, kind, path = case
    x, labels, onehot = _data()
    m = _model(make, loss)
    y = labels if kind == "sparse" else onehot
    before = m.get_weights()
    rep = gradient_check(m, x, y)
    assert rep.loss_path == path
    assert rep.passed, str(rep)
    assert rep.max_rel_error < 1e-6
    assert len(rep.checks) == len(m.trainable_weights)
    # the model itself is untouched, and still float32
    for a, b in zip(before, m.get_weights()):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    text = str(rep)
    assert "PASSED" in text and "dense" in text


def test_gradient_check_dropout_inactive_and_numpy_backend():
    x, labels, _ = _data()
    m = _model([L.Dense(4, activation="relu"), L.Dropout(0.5), L.Dense(3, activation="softmax")],
               "sparse_categorical_crossentropy")
    with backend.use("numpy"):
        assert gradient_check(m, x, labels, training=False).passed
        assert gradient_check(m, x, labels, training=True).passed


def test_gradient_check_sample_weight_and_flatten():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 2, 3))
    y = np.array([0, 1, 2, 1, 0])
    keras.utils.set_random_seed(3)
    m = keras.Sequential([keras.Input(shape=(2, 3)), L.Flatten(), L.Dense(4, activation="tanh"),
                          L.Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    rep = gradient_check(m, x, y, sample_weight=np.array([1.0, 2.0, 0.5, 1.0, 3.0]))
    assert rep.passed, str(rep)


def test_gradient_check_leaves_global_state_alone():
    x, labels, _ = _data()
    m = _model([L.Dense(4, activation="relu"), L.Dropout(0.3), L.Dense(3, activation="softmax")],
               "sparse_categorical_crossentropy")
    steps = m.layers[1].step
    state = nn_random.generator().bit_generator.state
    gradient_check(m, x, labels)
    assert config.floatx() == "float32"
    assert nn_random.generator().bit_generator.state == state
    assert m.layers[1].step == steps


def test_gradient_check_sampling():
    x, labels, _ = _data(d=20)
    m = _model([L.Dense(8, activation="relu"), L.Dense(3, activation="softmax")],
               "sparse_categorical_crossentropy", d=20)
    rep = gradient_check(m, x, labels, max_checks_per_weight=5, seed=1)
    assert [c.n_checked for c in rep.checks] == [5, 5, 5, 3]
    assert rep.passed
    again = gradient_check(m, x, labels, max_checks_per_weight=5, seed=1)
    np.testing.assert_array_equal(rep.checks[0].indices, again.checks[0].indices)


def _scaled(fn, pick):
    def broken(*args, **kwargs):
        out = fn(*args, **kwargs)
        target = pick(args, kwargs)
        if target is not None:
            target *= 1.01
        return out
    return broken


@pytest.mark.parametrize("which", ["dW", "db", "act_backward"])
def test_gradient_check_catches_a_broken_kernel(monkeypatch, which):
    x, labels, _ = _data()
    m = _model([L.Dense(4, activation="tanh"), L.Dense(3, activation="softmax")],
               "sparse_categorical_crossentropy")
    backend.set_backend("numpy")
    K = backend.kernels()
    if which == "dW":     # the kernel-gradient GEMM: gemm(x, dz, dW, trans_a=True)
        monkeypatch.setattr(K, "gemm", _scaled(K.gemm, lambda a, kw: a[2] if kw.get("trans_a") else None))
        bad = "kernel"
    elif which == "db":
        monkeypatch.setattr(K, "bias_grad", _scaled(K.bias_grad, lambda a, kw: a[1]))
        bad = "bias"
    else:
        monkeypatch.setattr(K, "act_backward", _scaled(K.act_backward, lambda a, kw: a[3]))
        bad = None        # only the hidden (tanh) layer runs act_backward
    rep = gradient_check(m, x, labels)
    assert not rep.passed
    assert "FAILED" in str(rep)
    failing = [c for c in rep.checks if not c.passed]
    assert failing
    if bad is None:
        assert {c.layer_index for c in failing} == {0}
    else:
        assert all(c.weight == bad for c in failing)
    assert rep.max_rel_error > 1e-3
    monkeypatch.undo()
    assert gradient_check(m, x, labels).passed


# ---------------------------------------------------------------- trace
def _trace_model(seed=0, optimizer="adam"):
    return _model(lambda: [L.Dense(6, activation="relu", kernel_regularizer="l2"),
                           L.Dropout(0.3), L.Dense(3, activation="softmax")],
                  "sparse_categorical_crossentropy", optimizer=optimizer, seed=seed)


def test_trace_records_shapes_and_formulas():
    x, labels, _ = _data(n=7)
    m = _trace_model()
    rec = trace(m, x, labels)
    assert len(rec.layers) == 3
    d0, dr, d1 = rec.layers
    assert d0.forward_input.shape == (7, 5) and d0.forward_output.shape == (7, 6)
    assert dr.forward_output.shape == (7, 6)
    assert d1.forward_output.shape == (7, 3)         # the logits
    assert rec.loss_path == "logits" and rec.loss_grad.shape == (7, 3)
    assert d0.grads["kernel"].shape == (5, 6) and d0.grads["bias"].shape == (6,)
    assert d1.grads["kernel"].shape == (6, 3)
    assert d0.grad_input is None                      # nothing below needs dx
    assert "x.W" in d0.forward_formula and "relu" in d0.forward_formula
    assert "x^T.dz" in d1.backward_formula
    # the recorded arrays obey the formulas
    dz1 = d1.grad_output
    np.testing.assert_allclose(d1.grads["kernel"], d1.forward_input.T @ dz1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(d1.grads["bias"], dz1.sum(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(d1.grad_input, dz1 @ d1.weights["kernel"].T, rtol=1e-5, atol=1e-7)
    dz0 = d0.grad_output * (d0.forward_output > 0)
    reg = 2 * 0.01 * d0.weights["kernel"]
    np.testing.assert_allclose(d0.grads["kernel"], x.T @ dz0 + reg, rtol=1e-5, atol=1e-6)
    p = np.exp(d1.forward_output - d1.forward_output.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(rec.loss_grad, (p - np.eye(3)[labels]) / 7, rtol=1e-4, atol=1e-6)
    assert rec.regularization > 0
    text = str(rec)
    assert "FORWARD" in text and "BACKWARD" in text and "dense" in text
    assert set(d0.norms) >= {"forward_output", "grad_output", "dkernel"}


def test_trace_without_apply_changes_nothing():
    x, labels, _ = _data()
    m = _trace_model()
    m.train_on_batch(x, labels)                        # optimizer state exists
    before = m.get_weights()
    it = m.optimizer.iterations
    slots = [a.copy() for a in m.optimizer.variables]
    step = m.layers[1].step
    rec = trace(m, x, labels, apply=False)
    assert not rec.applied
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert m.optimizer.iterations == it and m.layers[1].step == step
    for a, b in zip(slots, m.optimizer.variables):
        np.testing.assert_array_equal(a, b)
    # and the next real step is the one it would have been without the trace
    twin = _trace_model()
    twin.train_on_batch(x, labels)
    m.train_on_batch(x, labels)
    twin.train_on_batch(x, labels)
    for a, b in zip(twin.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["cython", "numpy"])
def test_trace_apply_equals_train_on_batch(name):
    backend.set_backend(name)
    x, labels, _ = _data()
    a, b = _trace_model(seed=5), _trace_model(seed=5)
    for _ in range(2):
        rec = trace(a, x, labels, apply=True)
        b.train_on_batch(x, labels)
    assert rec.applied
    assert a.optimizer.iterations == b.optimizer.iterations == 2
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    for wa, wb in zip(rec.weights_after, b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert not all(np.array_equal(u, v) for u, v in zip(rec.weights_before, rec.weights_after))
    # the loss recorded is the batch loss that step saw (penalty included)
    c = _trace_model(seed=5)
    trace(c, x, labels, apply=True)
    rec2 = trace(c, x, labels, apply=False)
    assert rec2.loss == pytest.approx(rec.loss, rel=1e-6)


def test_gradient_check_skips_frozen_layers_and_builds_lazily():
    x, labels, _ = _data()
    keras.utils.set_random_seed(2)
    m = keras.Sequential([L.Dense(4, activation="sigmoid", use_bias=False),
                          L.Dense(3, activation="softmax")])   # no Input: built on first use
    m.compile("sgd", "sparse_categorical_crossentropy")
    rep = gradient_check(m, x, labels)
    assert rep.passed and [c.weight for c in rep.checks] == ["kernel", "kernel", "bias"]
    m.layers[0].trainable = False
    rep = gradient_check(m, x, labels)
    assert rep.passed and len(rep.checks) == 2
    assert rep.skipped == [f"{m.layers[0].name}/kernel"]
    assert "not trainable" in str(rep)


def test_trace_needs_a_compiled_model():
    m = keras.Sequential([keras.Input(shape=(5,)), L.Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match="compile"):
        trace(m, np.zeros((2, 5)), np.zeros(2))
    with pytest.raises(ValueError, match="loss"):
        gradient_check(m, np.zeros((2, 5)), np.zeros(2))
