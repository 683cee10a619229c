"""Layers as a Keras 3 user sees them: defaults, weights, shapes and calls.

Expected values come from NumPy by hand (or Keras 3.15 where stated).
"""
import math

import numpy as np
import pytest

import nncore as keras


def _act(z, name):
    if name in (None, "linear"):
        return z
    if name == "relu":
        return np.maximum(z, 0)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise AssertionError(name)


# ----------------------------------------------------------------- Dense
def test_dense_glorot_uniform_default():
    keras.utils.set_random_seed(0)
    layer = keras.layers.Dense(300)
    layer.build((None, 200))
    w = layer.kernel.numpy()
    limit = math.sqrt(6 / (200 + 300))
    assert w.shape == (200, 300) and w.dtype == np.float32
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit
    # uniform on [-limit, limit]: mean 0, std limit/sqrt(3), flat histogram
    assert abs(w.mean()) < 0.02 * limit
    assert w.std() == pytest.approx(limit / math.sqrt(3), rel=0.02)
    counts, _ = np.histogram(w, bins=10, range=(-limit, limit))
    np.testing.assert_allclose(counts, w.size / 10, rtol=0.1)
    # zeros bias
    b = layer.bias.numpy()
    assert b.shape == (300,) and not b.any()


def test_dense_glorot_limit_small_layer_and_seed_dependence():
    keras.utils.set_random_seed(1)
    a = keras.layers.Dense(10)
    a.build((None, 784))
    keras.utils.set_random_seed(1)
    b = keras.layers.Dense(10)
    b.build((None, 784))
    keras.utils.set_random_seed(2)
    c = keras.layers.Dense(10)
    c.build((None, 784))
    assert np.abs(a.kernel.numpy()).max() <= math.sqrt(6 / 794)
    np.testing.assert_array_equal(a.kernel.numpy(), b.kernel.numpy())
    assert not np.array_equal(a.kernel.numpy(), c.kernel.numpy())


def test_dense_shapes_weights_and_variables():
    keras.utils.clear_session()
    model = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(3)])
    layer = model.layers[0]
    assert layer.kernel.shape == (5, 3) and layer.bias.shape == (3,)
    ws = layer.weights
    assert len(ws) == 2 and ws[0] is layer.kernel and ws[1] is layer.bias
    assert [w.name for w in ws] == ["kernel", "bias"]
    # Keras 3: 'sequential/dense/kernel' in a model, 'dense/kernel' on its own
    assert ws[0].path.endswith("dense/kernel") and ws[1].path.endswith("dense/bias")
    assert tuple(ws[0].shape) == (5, 3)
    k = ws[0].numpy()
    assert isinstance(k, np.ndarray) and k.dtype == np.float32
    k[...] = 7.0                      # .numpy() is a copy
    assert not np.any(layer.kernel.numpy() == 7.0)
    assert [w.shape for w in model.weights] == [(5, 3), (3,)]
    assert layer.count_params() == 18
    assert len(layer.trainable_weights) == 2 and layer.non_trainable_weights == []


def test_dense_call_on_numpy_builds_and_computes():
    layer = keras.layers.Dense(3, activation="relu")
    assert not layer.built
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    out = np.asarray(layer(x))
    assert layer.built and layer.kernel.shape == (6, 3)
    assert out.shape == (4, 3) and out.dtype == np.float32
    expected = np.maximum(x.astype(np.float64) @ layer.kernel.numpy() + layer.bias.numpy(), 0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    # accepts float64 / lists too
    np.testing.assert_allclose(np.asarray(layer(x.astype(np.float64))), out, rtol=1e-6)


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh", "softmax", None, "linear"])
def test_dense_activation_forward(act):
    layer = keras.layers.Dense(4, activation=act)
    x = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    out = np.asarray(layer(x))
    z = x.astype(np.float64) @ layer.kernel.numpy() + layer.bias.numpy()
    np.testing.assert_allclose(out, _act(z, act), rtol=1e-5, atol=1e-6)


def test_dense_use_bias_false():
    layer = keras.layers.Dense(4, use_bias=False)
    layer.build((None, 3))
    assert len(layer.weights) == 1 and len(layer.get_weights()) == 1
    assert layer.count_params() == 12
    x = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(np.asarray(layer(x)), x @ layer.kernel.numpy(), rtol=1e-6)
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2, use_bias=False)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)
    assert len(model.get_weights()) == 1


def test_dense_get_set_weights_round_trip():
    layer = keras.layers.Dense(3)
    layer.build((None, 2))
    new = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2, 3], np.float32)]
    layer.set_weights(new)
    got = layer.get_weights()
    for g, n in zip(got, new):
        np.testing.assert_array_equal(g, n)
    got[0][...] = 0                   # a copy, not a view
    np.testing.assert_array_equal(layer.get_weights()[0], new[0])
    np.testing.assert_allclose(np.asarray(layer(np.array([[1, 1]], np.float32))),
                               [[3 + 1, 5 + 2, 7 + 3]])
    with pytest.raises(ValueError):
        layer.set_weights([new[0]])                       # wrong count
    with pytest.raises(ValueError):
        layer.set_weights([new[0].T, new[1]])             # wrong shape


def test_model_get_set_weights_round_trip():
    keras.utils.set_random_seed(0)
    a = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5, activation="relu"),
                          keras.layers.Dense(2)])
    keras.utils.set_random_seed(1)
    b = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5, activation="relu"),
                          keras.layers.Dense(2)])
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    assert not np.allclose(a.predict(x, verbose=0), b.predict(x, verbose=0))
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
    assert [w.shape for w in a.get_weights()] == [(4, 5), (5,), (5, 2), (2,)]
    with pytest.raises(ValueError):
        b.set_weights(a.get_weights()[:3])


def test_dense_invalid_units():
    for bad in (0, -1, 2.5, "10"):
        with pytest.raises((ValueError, TypeError)):
            keras.layers.Dense(bad)


def test_dense_config_round_trip():
    layer = keras.layers.Dense(7, activation="tanh", use_bias=False, name="d7")
    cfg = layer.get_config()
    assert cfg["units"] == 7 and cfg["activation"] == "tanh" and cfg["use_bias"] is False
    assert cfg["name"] == "d7"
    clone = keras.layers.Dense.from_config(cfg)
    assert clone.get_config() == cfg


def test_trainable_flag_on_layer():
    layer = keras.layers.Dense(3, trainable=False)
    layer.build((None, 2))
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2


# ----------------------------------------------------------------- Activation
@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh", "softmax", "linear"])
def test_activation_layer_equals_dense_activation(act):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = rng.integers(0, 4, 64)
    keras.utils.set_random_seed(3)
    fused = keras.Sequential([keras.Input(shape=(6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(4, activation=act)])
    split = keras.Sequential([keras.Input(shape=(6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(4), keras.layers.Activation(act)])
    split.set_weights(fused.get_weights())
    np.testing.assert_allclose(split.predict(x, verbose=0), fused.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-7)
    loss = "sparse_categorical_crossentropy" if act == "softmax" else "mse"
    target = y if act == "softmax" else keras.utils.to_categorical(y, 4)
    for m in (fused, split):
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
        m.fit(x, target, epochs=2, batch_size=16, shuffle=False, verbose=0)
    for u, v in zip(split.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def test_activation_layer_call():
    x = np.array([[-1.0, 0.0, 2.0]], np.float32)
    np.testing.assert_allclose(np.asarray(keras.layers.Activation("relu")(x)), [[0, 0, 2]])
    np.testing.assert_allclose(np.asarray(keras.layers.Activation("softmax")(x)),
                               _act(x.astype(np.float64), "softmax"), rtol=1e-6)
    assert keras.layers.Activation("relu").count_params() == 0


# ----------------------------------------------------------------- Dropout
def test_dropout_identity_at_inference():
    x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    layer = keras.layers.Dropout(0.5)
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    assert layer.count_params() == 0 and layer.weights == []


def test_dropout_training_mask_and_scale():
    keras.utils.set_random_seed(0)
    x = np.ones((200, 500), np.float32)
    for rate in (0.2, 0.5):
        out = np.asarray(keras.layers.Dropout(rate)(x, training=True))
        kept = out != 0
        np.testing.assert_allclose(out[kept], 1 / (1 - rate), rtol=1e-6)
        assert (1 - kept.mean()) == pytest.approx(rate, abs=0.01)
        assert out.mean() == pytest.approx(1.0, abs=0.02)
    np.testing.assert_array_equal(np.asarray(keras.layers.Dropout(0.0)(x, training=True)), x)


def test_dropout_masks_change_between_calls():
    keras.utils.set_random_seed(0)
    layer = keras.layers.Dropout(0.5)
    x = np.ones((10, 100), np.float32)
    a = np.asarray(layer(x, training=True))
    b = np.asarray(layer(x, training=True))
    assert not np.array_equal(a, b)


def test_dropout_invalid_rate():
    for bad in (-0.1, 1.5, "0.5"):
        with pytest.raises((ValueError, TypeError)):
            keras.layers.Dropout(bad)


def test_dropout_in_model_keeps_shapes():
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(6),
                              keras.layers.Dropout(0.3), keras.layers.Dense(2)])
    assert tuple(model.layers[1].output_shape) == (None, 6)
    assert model.count_params() == 4 * 6 + 6 + 6 * 2 + 2


# ----------------------------------------------------------------- Flatten / Input
@pytest.mark.parametrize("shape", [(2, 28, 28), (3, 3, 4, 5), (4, 6)])
def test_flatten_shapes_and_values(shape):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    out = np.asarray(keras.layers.Flatten()(x))
    assert out.shape == (shape[0], int(np.prod(shape[1:])))
    np.testing.assert_array_equal(out, x.reshape(shape[0], -1))


def test_flatten_in_model():
    model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    assert tuple(model.layers[0].output_shape) == (None, 784)
    assert model.layers[0].count_params() == 0
    x = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    w, b = model.get_weights()
    np.testing.assert_allclose(model.predict(x, verbose=0), x.reshape(3, -1) @ w + b,
                               rtol=1e-5, atol=1e-6)


def test_flatten_trains_like_reshaped_input():
    rng = np.random.default_rng(0)
    x = rng.random((32, 4, 5)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    keras.utils.set_random_seed(0)
    a = keras.Sequential([keras.Input(shape=(4, 5)), keras.layers.Flatten(),
                          keras.layers.Dense(3, activation="softmax")])
    b = keras.Sequential([keras.Input(shape=(20,)), keras.layers.Dense(3, activation="softmax")])
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    a.fit(x, y, shuffle=False, verbose=0)
    b.fit(x.reshape(32, 20), y, shuffle=False, verbose=0)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)


def test_input_shape():
    inp = keras.Input(shape=(28, 28))
    assert tuple(inp.shape) == (None, 28, 28)
    assert tuple(keras.layers.Input(shape=(784,)).shape) == (None, 784)
    assert isinstance(keras.layers.InputLayer(shape=(3,)), keras.layers.InputLayer)


def test_dense_needs_flatten_message():
    model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(10)])
    with pytest.raises(ValueError, match="784"):
        model.predict(np.zeros((2, 28, 28), np.float32), verbose=0)


def test_dropout_rate_one_is_refused():
    # Deliberate difference: Keras 3 accepts rate=1.0 (all-zero output, so
    # nothing can learn); nncore treats it as the learner's mistake it
    # almost always is and asks for a rate in [0, 1).
    with pytest.raises(ValueError, match=r"rate must be a number in \[0, 1\), got 1.0"):
        keras.layers.Dropout(1.0)
