"""The compiled training loop must train exactly like the per-batch path.

Both call the same kernels in the same order, so weights, losses and
metrics must be *bitwise* equal -- for every optimizer, loss path, dropout,
regularization and sample weights -- and equal for 1 and 2 threads.
"""
import numpy as np
import pytest

import nncore as keras


def _data(n=700, d=30, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, (classes, d))
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.normal(0, 1.0, (n, d))
    return x.astype(np.float32), y.astype(np.uint8)


def _train(use_fused, optimizer, loss="sparse_categorical_crossentropy", out_act="softmax",
           dropout=0.0, reg=None, sample_weight=None, y_transform=None, epochs=2,
           hidden_act="relu", batch_size=32, validation=False):
    x, y = _data()
    if y_transform:
        y = y_transform(y)
    keras.utils.set_random_seed(1)
    layers = [keras.Input(shape=(x.shape[1],)),
              keras.layers.Dense(16, activation=hidden_act, kernel_regularizer=reg)]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    units = 1 if loss == "binary_crossentropy" else 5
    layers.append(keras.layers.Dense(units, activation=out_act))
    model = keras.Sequential(layers)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    model.use_fused = use_fused
    h = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0,
                  sample_weight=sample_weight,
                  validation_split=0.2 if validation else 0.0)
    calls = [model._last_route.route == "run_steps"]
    return model, h, calls


OPTIMIZERS = [
    lambda: keras.optimizers.SGD(0.05),
    lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    lambda: keras.optimizers.Adagrad(0.05),
    lambda: keras.optimizers.RMSprop(),
    lambda: keras.optimizers.RMSprop(momentum=0.5, centered=True),
    lambda: keras.optimizers.Adam(),
    lambda: keras.optimizers.Adam(amsgrad=True),
]


def _assert_same(a, b):
    (ma, ha, ca), (mb, hb, cb) = a, b
    assert ca == [False] and cb == [True], "expected the per-batch run and then a fused run"
    for wa, wb in zip(ma.get_weights(), mb.get_weights()):
        assert np.array_equal(wa, wb)
    assert ha.history == hb.history


@pytest.mark.parametrize("make_opt", OPTIMIZERS, ids=["sgd", "sgd_nesterov", "adagrad",
                                                      "rmsprop", "rmsprop_centered_mom",
                                                      "adam", "adam_amsgrad"])
def test_fused_equals_per_batch_each_optimizer(make_opt):
    _assert_same(_train(False, make_opt()), _train(True, make_opt()))


@pytest.mark.parametrize("case", [
    dict(dropout=0.3),
    dict(reg=keras.regularizers.L2(0.01)),
    dict(reg=keras.regularizers.L1L2(l1=0.001, l2=0.01), dropout=0.5, hidden_act="tanh"),
    dict(hidden_act="sigmoid", batch_size=7),          # odd last batch
    dict(out_act=None, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
    dict(out_act="relu"),                                # probabilities path (clipped)
    dict(loss="categorical_crossentropy", y_transform=lambda y: keras.utils.to_categorical(y, 5)),
    dict(loss="binary_crossentropy", out_act="sigmoid", y_transform=lambda y: (y % 2).astype(np.float32)),
    dict(loss="mse", out_act="softmax", y_transform=lambda y: keras.utils.to_categorical(y, 5)),
    dict(sample_weight=np.linspace(0.5, 2.0, 700)),
    dict(validation=True),
], ids=["dropout", "l2", "l1l2_dropout_tanh", "sigmoid_bs7", "from_logits", "probs_path",
        "categorical", "binary", "mse", "sample_weight", "validation_split"])
def test_fused_equals_per_batch_variants(case):
    _assert_same(_train(False, "adam", **case), _train(True, "adam", **case))


def test_fused_same_for_one_and_two_threads():
    runs = []
    for n in (1, 2):
        keras.set_num_threads(n)
        runs.append(_train(True, "rmsprop", dropout=0.2)[0].get_weights())
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


def test_fused_not_used_when_batch_hooks_needed():
    class Counter(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1

    x, y = _data()
    model = keras.Sequential([keras.Input(shape=(30,)), keras.layers.Dense(5, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    cb = Counter()
    model.fit(x, y, epochs=2, batch_size=100, verbose=0, callbacks=[cb])
    assert cb.batches == 2 * 7


def test_fused_reaches_same_accuracy_on_fashion_mnist(fmnist):
    """W3 on real data: fused and per-batch reach the same validation accuracy."""
    (x, y), _ = fmnist
    x, y = x[:6000] / 255.0, y[:6000]
    accs = []
    for use in (False, True):
        keras.utils.set_random_seed(3)
        m = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(100, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
        m.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
        m.use_fused = use
        h = m.fit(x, y, epochs=2, validation_split=0.2, verbose=0)
        accs.append(h.history["val_accuracy"][-1])
    assert accs[0] == accs[1]
    assert accs[1] > 0.75
