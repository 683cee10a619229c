"""Same seed, same data -> the same trained weights with the compiled kernels
('cython', which fit() runs in its fused loop) and with their NumPy twins
('numpy', the per-batch Python path), for every optimizer."""
import numpy as np
import pytest

import nncore as keras
from nncore import backend

L = keras.layers

OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(learning_rate=0.05),
    "sgd_momentum_nesterov": lambda: keras.optimizers.SGD(learning_rate=0.02, momentum=0.9,
                                                          nesterov=True),
    "adagrad": lambda: keras.optimizers.Adagrad(learning_rate=0.05),
    "rmsprop": lambda: keras.optimizers.RMSprop(),
    "rmsprop_centered_momentum": lambda: keras.optimizers.RMSprop(centered=True, momentum=0.5),
    "adam": lambda: keras.optimizers.Adam(),
    "adam_amsgrad": lambda: keras.optimizers.Adam(amsgrad=True),
}


def _data(n=192, d=24, c=5):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d, c))
    y = np.argmax(x @ w + rng.normal(scale=0.5, size=(n, c)), axis=1)
    return x, y


def _train(name, opt, dropout, x, y, epochs=2):
    with backend.use(name):
        keras.utils.set_random_seed(11)
        layers = [keras.Input(shape=(x.shape[1],)),
                  L.Dense(16, activation="relu", kernel_regularizer="l2")]
        if dropout:
            layers.append(L.Dropout(0.25))
        layers += [L.Dense(12, activation="tanh"), L.Dense(5, activation="softmax")]
        model = keras.Sequential(layers)
        model.compile(optimizer=OPTIMIZERS[opt](), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        hist = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0)  # 24 steps, shuffled
        return model.get_weights(), hist.history


@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_numpy_and_cython_train_the_same_weights(opt, dropout):
    x, y = _data()
    w_np, h_np = _train("numpy", opt, dropout, x, y)
    w_cy, h_cy = _train("cython", opt, dropout, x, y)
    assert backend.get_backend() == "cython"
    assert len(w_np) == len(w_cy)
    for a, b in zip(w_np, w_cy):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # the weights moved (the test compares training, not initial values)
    init_moved = any(not np.array_equal(a, b) for a, b in zip(w_np, _initial(x, dropout)))
    assert init_moved
    np.testing.assert_allclose(h_np["loss"], h_cy["loss"], rtol=1e-4)
    np.testing.assert_allclose(h_np["accuracy"], h_cy["accuracy"], atol=1.5 / len(x))


def _initial(x, dropout):
    keras.utils.set_random_seed(11)
    layers = [keras.Input(shape=(x.shape[1],)), L.Dense(16, activation="relu")]
    if dropout:
        layers.append(L.Dropout(0.25))
    layers += [L.Dense(12, activation="tanh"), L.Dense(5, activation="softmax")]
    return keras.Sequential(layers).get_weights()


def test_dropout_masks_are_identical_in_both_backends():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 30)).astype(np.float32)
    outs = {}
    for name in ("numpy", "cython"):
        with backend.use(name):
            layer = L.Dropout(0.4, seed=123)
            outs[name] = [layer(x, training=True) for _ in range(3)]
    for a, b in zip(outs["numpy"], outs["cython"]):
        np.testing.assert_array_equal(a == 0, b == 0)
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not np.array_equal(outs["numpy"][0] == 0, outs["numpy"][1] == 0)
