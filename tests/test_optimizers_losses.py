"""Optimizers, losses and metrics objects with Keras 3's defaults and formulas,
checked against hand-written NumPy (defaults as printed by Keras 3.15 get_config)."""
import math

import numpy as np
import pytest

import nncore as keras

O = keras.optimizers


# ----------------------------------------------------------------- defaults
DEFAULTS = {
    "SGD": dict(learning_rate=0.01, momentum=0.0, nesterov=False),
    "Adagrad": dict(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7),
    "RMSprop": dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False),
    "Adam": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False),
}
COMMON = dict(weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None)


@pytest.mark.parametrize("cls", sorted(DEFAULTS))
def test_optimizer_defaults(cls):
    opt = getattr(O, cls)()
    cfg = opt.get_config()
    for key, value in {**DEFAULTS[cls], **COMMON}.items():
        for got in (getattr(opt, key), cfg[key]):
            if isinstance(value, float):
                assert float(got) == pytest.approx(value, rel=1e-6), key
            else:
                assert got is value or got == value, key
    assert int(opt.iterations) == 0
    # a config rebuilds an equal optimizer
    assert getattr(O, cls).from_config(cfg).get_config() == cfg


def test_optimizer_constructor_arguments():
    opt = O.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    assert (opt.learning_rate, opt.momentum, opt.nesterov) == (pytest.approx(0.1), 0.9, True)
    opt = O.Adam(0.01, beta_1=0.8, amsgrad=True)
    assert float(opt.learning_rate) == pytest.approx(0.01) and opt.beta_1 == 0.8 and opt.amsgrad
    with pytest.raises(ValueError):
        O.SGD(clipnorm=1.0, clipvalue=1.0)


def test_learning_rate_settable():
    opt = O.SGD()
    opt.learning_rate = 0.5
    assert float(opt.learning_rate) == 0.5
    assert opt.get_config()["learning_rate"] == pytest.approx(0.5)
    model = _linear_model(opt)
    x, y = _linear_data()
    opt.learning_rate = 0.0
    w0 = model.get_weights()
    model.train_on_batch(x, y)
    for u, v in zip(w0, model.get_weights()):
        np.testing.assert_array_equal(u, v)
    assert int(opt.iterations) == 1       # the step still counts


# ----------------------------------------------------------------- update rules
def _linear_data():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(8, 3)).astype(np.float32),
            rng.normal(size=(8, 2)).astype(np.float32))


def _linear_model(opt):
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2)])
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(size=(3, 2)).astype(np.float32),
                       rng.normal(size=2).astype(np.float32)])
    model.compile(optimizer=opt, loss="mse")
    return model


def _mse_grads(ws, x, y):
    W, b = ws
    z = x @ W + b
    dz = 2 * (z - y) / z.size
    return [x.T @ dz, dz.sum(axis=0)]


def _np_optimizer(kind, kw):
    """NumPy reference of Keras 3's update rules (keras/src/optimizers/*.py)."""
    state = {}

    def step(i, w, g, t):
        s = state.setdefault(i, {})
        if kind == "sgd":
            lr, mu, nest = kw.get("learning_rate", 0.01), kw.get("momentum", 0.0), kw.get("nesterov", False)
            if mu == 0:
                return w - lr * g
            m = s["m"] = mu * s.get("m", 0) - lr * g
            return w + (mu * m - lr * g if nest else m)
        if kind == "adagrad":
            lr = kw.get("learning_rate", 0.001)
            a = s["a"] = s.get("a", 0.1) + g * g
            return w - lr * g / np.sqrt(a + 1e-7)
        if kind == "rmsprop":
            lr, rho, mu = kw.get("learning_rate", 0.001), kw.get("rho", 0.9), kw.get("momentum", 0.0)
            v = s["v"] = rho * s.get("v", 0) + (1 - rho) * g * g
            if kw.get("centered"):
                gb = s["gb"] = rho * s.get("gb", 0) + (1 - rho) * g
                den = v - gb * gb + 1e-7
            else:
                den = v + 1e-7
            inc = lr * g / np.sqrt(den)
            if mu:
                mom = s["mom"] = mu * s.get("mom", 0) + inc
                return w - mom
            return w - inc
        if kind == "adam":
            lr, b1, b2 = kw.get("learning_rate", 0.001), kw.get("beta_1", 0.9), kw.get("beta_2", 0.999)
            alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            m = s["m"] = s.get("m", 0) + (g - s.get("m", 0)) * (1 - b1)
            v = s["v"] = s.get("v", 0) + (g * g - s.get("v", 0)) * (1 - b2)
            if kw.get("amsgrad"):
                v = s["vh"] = np.maximum(s.get("vh", 0), v)
            return w - alpha * m / (np.sqrt(v) + 1e-7)
        raise AssertionError(kind)
    return step


CASES = [
    ("sgd", {}), ("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("adagrad", {}), ("adagrad", {"learning_rate": 0.05}),
    ("rmsprop", {}), ("rmsprop", {"centered": True}), ("rmsprop", {"momentum": 0.5}),
    ("adam", {}), ("adam", {"learning_rate": 0.01, "amsgrad": True}),
]


@pytest.mark.parametrize("kind,kw", CASES, ids=[f"{k}-{'-'.join(map(str, v.values()))}" for k, v in CASES])
def test_update_rules_match_numpy(kind, kw):
    cls = {"sgd": O.SGD, "adagrad": O.Adagrad, "rmsprop": O.RMSprop, "adam": O.Adam}[kind]
    x, y = _linear_data()
    model = _linear_model(cls(**kw))
    ws = [w.astype(np.float64) for w in model.get_weights()]
    ref = _np_optimizer(kind, kw)
    for t in range(1, 5):
        grads = _mse_grads(ws, x.astype(np.float64), y)
        ws = [ref(i, w, g, t) for i, (w, g) in enumerate(zip(ws, grads))]
        model.train_on_batch(x, y)
        assert int(model.optimizer.iterations) == t
    for got, want in zip(model.get_weights(), ws):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_adam_first_step_is_lr_times_sign():
    x, y = _linear_data()
    model = _linear_model(O.Adam(learning_rate=0.01))
    w0 = [w.astype(np.float64) for w in model.get_weights()]
    grads = _mse_grads(w0, x.astype(np.float64), y)
    model.train_on_batch(x, y)
    for before, after, g in zip(w0, model.get_weights(), grads):
        np.testing.assert_allclose(before - after, 0.01 * np.sign(g), rtol=1e-4, atol=1e-7)


def test_apply_gradients_and_iterations():
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    opt = O.SGD(learning_rate=0.1)
    k0 = layer.kernel.numpy()
    g = np.ones((3, 2), np.float32)
    opt.apply_gradients([(g, layer.kernel)])
    assert int(opt.iterations) == 1
    np.testing.assert_allclose(layer.kernel.numpy(), k0 - 0.1, rtol=1e-6)
    opt.apply_gradients(zip([g], [layer.kernel]))
    assert int(opt.iterations) == 2
    np.testing.assert_allclose(layer.kernel.numpy(), k0 - 0.2, rtol=1e-6)


def test_iterations_count_steps_in_fit():
    x, y = _linear_data()
    model = _linear_model("adam")
    model.fit(np.tile(x, (5, 1)), np.tile(y, (5, 1)), batch_size=8, epochs=3, verbose=0)
    assert int(model.optimizer.iterations) == 15


def test_clipvalue_limits_step():
    x, y = _linear_data()
    model = _linear_model(O.SGD(learning_rate=1.0, clipvalue=0.01))
    w0 = model.get_weights()
    model.train_on_batch(x, y)
    for a, b in zip(w0, model.get_weights()):
        assert np.abs(a - b).max() <= 0.01 + 1e-6


# ----------------------------------------------------------------- losses
def _np_sparse_ce(y, p):
    p = np.asarray(p, np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    return -np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1 - 1e-7))


def _log_softmax(z):
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


Y = np.array([0, 2, 1, 2])
P = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.25, 0.5, 0.25], [0.3, 0.3, 0.4]])
Z = np.array([[2.0, -1.0, 0.5], [0.0, 1.0, 3.0], [-2.0, 4.0, 1.0], [1.0, 1.0, 1.0]])


def test_sparse_categorical_crossentropy_class_and_function():
    want = _np_sparse_ce(Y, P)
    assert float(keras.losses.SparseCategoricalCrossentropy()(Y, P)) == pytest.approx(want.mean(), rel=1e-6)
    per = np.asarray(keras.losses.sparse_categorical_crossentropy(Y, P))
    assert per.shape == (4,)
    np.testing.assert_allclose(per, want, rtol=1e-6)
    # float32 inputs and column labels work the same
    assert float(keras.losses.SparseCategoricalCrossentropy()(Y[:, None], P.astype(np.float32))) == \
        pytest.approx(want.mean(), rel=1e-5)


def test_sparse_crossentropy_clips_and_normalizes_probabilities():
    # Keras 3.15: sparse_categorical_crossentropy([0, 1], [[.9, .1], [1, 0]]) == [0.10536, 16.1181]
    per = np.asarray(keras.losses.sparse_categorical_crossentropy(
        np.array([0, 1]), np.array([[0.9, 0.1], [1.0, 0.0]])))
    np.testing.assert_allclose(per, [-math.log(0.9), -math.log(1e-7)], rtol=1e-5)
    assert np.all(np.isfinite(per))
    # rows that do not sum to one are normalized first: [2, 2] -> [0.5, 0.5]
    assert float(keras.losses.SparseCategoricalCrossentropy()(np.array([0]), np.array([[2.0, 2.0]]))) == \
        pytest.approx(math.log(2), rel=1e-5)


def test_sparse_crossentropy_from_logits():
    want = -_log_softmax(Z)[np.arange(4), Y]
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert loss.from_logits is True
    assert float(loss(Y, Z)) == pytest.approx(want.mean(), rel=1e-6)
    np.testing.assert_allclose(
        np.asarray(keras.losses.sparse_categorical_crossentropy(Y, Z, from_logits=True)), want, rtol=1e-6)
    # huge logits stay finite (no clipping on the logits path)
    big = np.array([[1000.0, 0.0], [0.0, 1000.0]])
    np.testing.assert_allclose(
        np.asarray(keras.losses.sparse_categorical_crossentropy(np.array([0, 0]), big, from_logits=True)),
        [0.0, 1000.0], rtol=1e-6, atol=1e-6)


def test_categorical_crossentropy():
    onehot = np.eye(3)[Y]
    want = _np_sparse_ce(Y, P)
    assert float(keras.losses.CategoricalCrossentropy()(onehot, P)) == pytest.approx(want.mean(), rel=1e-6)
    np.testing.assert_allclose(np.asarray(keras.losses.categorical_crossentropy(onehot, P)), want, rtol=1e-6)
    want_logits = -(onehot * _log_softmax(Z)).sum(axis=1)
    assert float(keras.losses.CategoricalCrossentropy(from_logits=True)(onehot, Z)) == \
        pytest.approx(want_logits.mean(), rel=1e-6)
    # soft labels
    soft = np.array([[0.5, 0.5, 0.0]])
    p = np.array([[0.5, 0.25, 0.25]])
    assert float(keras.losses.CategoricalCrossentropy()(soft, p)) == \
        pytest.approx(-(0.5 * math.log(0.5) + 0.5 * math.log(0.25)), rel=1e-6)


def test_categorical_crossentropy_label_smoothing():
    onehot = np.eye(3)[Y]
    smooth = onehot * 0.9 + 0.1 / 3
    want = -(smooth * np.log(P)).sum(axis=1).mean()
    assert float(keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(onehot, P)) == \
        pytest.approx(want, rel=1e-6)


def test_binary_crossentropy():
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    p = np.array([[0.9], [0.2], [0.4], [0.6]])
    per = -(y * np.log(p) + (1 - y) * np.log(1 - p))[:, 0]
    assert float(keras.losses.BinaryCrossentropy()(y, p)) == pytest.approx(per.mean(), rel=1e-6)
    np.testing.assert_allclose(np.asarray(keras.losses.binary_crossentropy(y, p)), per, rtol=1e-6)
    z = np.array([[2.0], [-1.0], [0.5], [3.0]])
    s = 1 / (1 + np.exp(-z))
    per_z = -(y * np.log(s) + (1 - y) * np.log(1 - s))[:, 0]
    assert float(keras.losses.BinaryCrossentropy(from_logits=True)(y, z)) == pytest.approx(per_z.mean(), rel=1e-6)
    # multi-label rows: mean over the last axis
    y2 = np.array([[1.0, 0.0]])
    p2 = np.array([[0.8, 0.3]])
    assert float(keras.losses.binary_crossentropy(y2, p2)[0]) == \
        pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2, rel=1e-6)
    # clipping: p = 1 for a 0 label is finite (-log(1e-7) in float64)
    assert float(keras.losses.binary_crossentropy(np.array([[0.0]]), np.array([[1.0]]))[0]) == \
        pytest.approx(-math.log(1e-7), rel=1e-4)


def test_mean_squared_error():
    y = np.array([[1.0, 0.0], [0.0, 0.0]])
    p = np.array([[0.5, 0.5], [1.0, 1.0]])
    np.testing.assert_allclose(np.asarray(keras.losses.mean_squared_error(y, p)), [0.25, 1.0])
    np.testing.assert_allclose(np.asarray(keras.losses.mse(y, p)), [0.25, 1.0])
    assert float(keras.losses.MeanSquaredError()(y, p)) == pytest.approx(0.625)


def test_loss_sample_weight_and_sum_reduction():
    w = np.array([1.0, 3.0, 0.0, 0.5])
    per = _np_sparse_ce(Y, P)
    loss = keras.losses.SparseCategoricalCrossentropy()
    assert float(loss(Y, P, sample_weight=w)) == pytest.approx((w * per).sum() / 4, rel=1e-6)
    total = keras.losses.SparseCategoricalCrossentropy(reduction="sum")
    assert float(total(Y, P)) == pytest.approx(per.sum(), rel=1e-6)


def test_loss_defaults_in_config():
    for cls in (keras.losses.SparseCategoricalCrossentropy, keras.losses.CategoricalCrossentropy,
                keras.losses.BinaryCrossentropy):
        cfg = cls().get_config()
        assert cfg["from_logits"] is False
        assert cfg["reduction"] == "sum_over_batch_size"
    assert keras.losses.SparseCategoricalCrossentropy().name == "sparse_categorical_crossentropy"
    assert keras.losses.MeanSquaredError().name == "mean_squared_error"


# ----------------------------------------------------------------- metrics
def test_sparse_categorical_accuracy_metric_is_stateful():
    m = keras.metrics.SparseCategoricalAccuracy()
    assert m.name == "sparse_categorical_accuracy"
    m.update_state(Y[:2], P[:2])            # both right
    m.update_state(Y[2:], P[2:])            # right, right
    assert float(m.result()) == pytest.approx(np.mean(P.argmax(1) == Y))
    m.update_state(np.array([0, 0]), np.array([[0.1, 0.9, 0.0], [0.2, 0.7, 0.1]]))
    assert float(m.result()) == pytest.approx(4 / 6)
    m.reset_state()
    assert float(m.result()) == 0.0


def test_categorical_and_binary_accuracy_metrics():
    m = keras.metrics.CategoricalAccuracy()
    m.update_state(np.eye(3)[[0, 1, 2]], np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0, 0, 1.0]]))
    assert float(m.result()) == pytest.approx(2 / 3)
    b = keras.metrics.BinaryAccuracy()
    b.update_state(np.array([[1.0], [0.0], [1.0], [0.0]]), np.array([[0.7], [0.4], [0.2], [0.6]]))
    assert float(b.result()) == pytest.approx(0.5)
    b2 = keras.metrics.BinaryAccuracy(threshold=0.1)
    b2.update_state(np.array([[1.0], [0.0]]), np.array([[0.2], [0.05]]))
    assert float(b2.result()) == pytest.approx(1.0)


def test_mean_metric():
    m = keras.metrics.Mean()
    m.update_state([1.0, 2.0, 3.0])
    m.update_state([4.0], sample_weight=[3.0])
    assert float(m.result()) == pytest.approx((1 + 2 + 3 + 12) / 6)


def test_to_categorical():
    out = keras.utils.to_categorical(np.array([0, 2, 1, 2]))
    np.testing.assert_array_equal(out, np.eye(3)[[0, 2, 1, 2]])
    assert keras.utils.to_categorical([1], num_classes=5).shape == (1, 5)
