"""The Keras 3 model API as a textbook user meets it (``import nncore as keras``).

Every expectation here was checked against real Keras 3.15 (TensorFlow backend);
the values a test compares with are computed by hand with NumPy, never taken
from nncore itself.  Layer and optimizer details are in test_layers.py and
test_optimizers_losses.py.
"""
import math
import re

import numpy as np
import pytest

import nncore as keras


# ----------------------------------------------------------------- helpers
def make_data(n=200, d=8, k=3, seed=0):
    """Separable-ish synthetic classification data: x float32, integer labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d, k))
    y = (x @ w + 0.3 * rng.normal(size=(n, k))).argmax(axis=1)
    return x, y


def mlp(d=8, k=3, hidden=16, out_act="softmax", seed=0, dropout=None):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input(shape=(d,)), keras.layers.Dense(hidden, activation="relu")]
    if dropout is not None:
        layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(k, activation=out_act))
    return keras.Sequential(layers)


def np_forward(model, x):
    """Inference forward pass of a Dense/Dropout/Flatten/Activation stack in float64."""
    a = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            ws = layer.get_weights()
            a = a @ ws[0].astype(np.float64)
            if len(ws) > 1:
                a = a + ws[1]
            a = _act(a, layer.get_config()["activation"])
        elif isinstance(layer, keras.layers.Activation):
            a = _act(a, layer.get_config()["activation"])
    return a


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
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise AssertionError(name)


def sparse_ce(p, y):
    p = p / p.sum(axis=1, keepdims=True)
    return -np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1 - 1e-7))


def weights_equal(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


# ----------------------------------------------------------------- namespace
NAMES = [
    "Sequential", "Input", "layers.Dense", "layers.Flatten", "layers.Dropout",
    "layers.Activation", "layers.Input", "layers.InputLayer", "optimizers.SGD",
    "optimizers.Adagrad", "optimizers.RMSprop", "optimizers.Adam",
    "losses.SparseCategoricalCrossentropy", "losses.CategoricalCrossentropy",
    "losses.BinaryCrossentropy", "losses.MeanSquaredError",
    "losses.sparse_categorical_crossentropy", "losses.categorical_crossentropy",
    "losses.binary_crossentropy", "losses.mean_squared_error",
    "metrics.SparseCategoricalAccuracy", "metrics.CategoricalAccuracy",
    "metrics.BinaryAccuracy", "metrics.Mean", "callbacks.EarlyStopping",
    "callbacks.History", "models.Sequential", "models.load_model",
    "datasets.fashion_mnist.load_data", "utils.set_random_seed",
    "utils.to_categorical", "utils.clear_session", "backend.set_backend",
]


@pytest.mark.parametrize("dotted", NAMES)
def test_namespace(dotted):
    obj = keras
    for part in dotted.split("."):
        assert hasattr(obj, part), f"keras.{dotted} is missing"
        obj = getattr(obj, part)
    assert callable(obj)


def test_namespace_aliases():
    assert keras.models.Sequential is keras.Sequential
    assert keras.layers.Input is keras.Input
    import nncore.backend
    assert keras.backend is nncore.backend


# ----------------------------------------------------------------- Sequential
def test_automatic_names_are_unique_per_process():
    keras.utils.clear_session()
    layers = [keras.layers.Dense(4), keras.layers.Dense(3), keras.layers.Flatten(),
              keras.layers.Dropout(0.1), keras.layers.Activation("relu"), keras.layers.Dense(2)]
    assert [l.name for l in layers] == ["dense", "dense_1", "flatten", "dropout",
                                        "activation", "dense_2"]
    assert keras.Sequential().name == "sequential"
    assert keras.Sequential().name == "sequential_1"
    keras.utils.clear_session()
    assert keras.layers.Dense(1).name == "dense"
    assert keras.layers.Dense(1, name="mine").name == "mine"


def test_duplicate_layer_names_rejected():
    with pytest.raises(ValueError, match="unique"):
        keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2, name="a"),
                          keras.layers.Dense(2, name="a")])
    model = keras.Sequential([keras.layers.Dense(2, name="b")])
    with pytest.raises(ValueError):
        model.add(keras.layers.Dense(3, name="b"))


def test_constructor_add_pop_layers():
    keras.utils.clear_session()
    a = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    b = keras.Sequential()
    b.add(keras.Input(shape=(3,)))
    b.add(keras.layers.Dense(4))
    b.add(keras.layers.Dense(2))
    # the Input is not a layer of the model (Keras 3)
    assert [type(l).__name__ for l in a.layers] == ["Dense", "Dense"]
    assert [type(l).__name__ for l in b.layers] == ["Dense", "Dense"]
    assert a.count_params() == b.count_params() == 3 * 4 + 4 + 4 * 2 + 2
    last = b.layers[-1]
    popped = b.pop()
    assert popped is last
    assert len(b.layers) == 1 and b.count_params() == 16
    assert b.predict(np.ones((2, 3), np.float32), verbose=0).shape == (2, 4)
    # .layers is a copy: mutating it does not change the model
    b.layers.append(keras.layers.Dense(9))
    assert len(b.layers) == 1


def test_get_layer_by_name_and_index_and_error_text():
    keras.utils.clear_session()
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(4),
                              keras.layers.Dense(2)])
    assert model.get_layer("dense") is model.layers[0]
    assert model.get_layer("dense_1") is model.layers[1]
    assert model.get_layer(index=1) is model.layers[1]
    with pytest.raises(ValueError) as err:
        model.get_layer("nope")
    # Keras 3's exact message
    assert str(err.value) == "No such layer: nope. Existing layers are: ['dense', 'dense_1']."


def test_input_shape_on_first_layer_builds_immediately():
    model = keras.Sequential([keras.layers.Dense(4, input_shape=(3,)), keras.layers.Dense(2)])
    assert model.built
    assert model.count_params() == 26
    assert [w.shape for w in model.weights] == [(3, 4), (4,), (4, 2), (2,)]
    assert tuple(model.output_shape) == (None, 2)


def test_input_first_builds_and_flattens():
    model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(100, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    assert model.built
    assert tuple(model.layers[0].output_shape) == (None, 784)
    assert model.layers[1].kernel.shape == (784, 100)
    assert tuple(model.output_shape) == (None, 10)


def test_build_on_first_call_without_input_shape():
    model = keras.Sequential([keras.layers.Dense(4), keras.layers.Dense(2)])
    assert not model.built
    assert model.weights == []
    out = model.predict(np.ones((5, 3)), verbose=0)
    assert out.shape == (5, 2)
    assert model.built
    assert model.layers[0].kernel.shape == (3, 4)
    assert model.count_params() == 26


def test_count_params_book_model():
    model = keras.Sequential([keras.Input(shape=(784,)),
                              keras.layers.Dense(100, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    assert model.count_params() == 79_510
    assert [l.count_params() for l in model.layers] == [78_500, 1_010]


def test_summary_text(capsys):
    keras.utils.clear_session()
    model = keras.Sequential([keras.Input(shape=(784,)),
                              keras.layers.Dense(100, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.summary()
    out = capsys.readouterr().out
    assert re.search(r'Model: "sequential(_\d+)?"', out)
    for text in ("Layer (type)", "Output Shape", "Param #", "dense (Dense)",
                 "dense_1 (Dense)", "(None, 100)", "(None, 10)", "78,500", "1,010",
                 "Total params: 79,510 (310.59 KB)",
                 "Trainable params: 79,510 (310.59 KB)",
                 "Non-trainable params: 0 (0.00 B)"):
        assert text in out, text
    assert "Optimizer params" not in out

    # after training with Adam Keras adds the optimizer's state (m and v for
    # every weight + iterations + learning_rate) -- printed by Keras 3.15:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.random((40, 784), dtype=np.float32), rng.integers(0, 10, 40), verbose=0)
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 238,532 (931.77 KB)" in out
    assert "Trainable params: 79,510 (310.59 KB)" in out
    assert "Non-trainable params: 0 (0.00 B)" in out
    assert "Optimizer params: 159,022 (621.18 KB)" in out


def test_summary_counts_frozen_layer_as_non_trainable(capsys):
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, trainable=False),
                              keras.layers.Dense(2)])
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 23 (92.00 B)" in out
    assert "Trainable params: 8 (32.00 B)" in out
    assert "Non-trainable params: 15 (60.00 B)" in out


def test_summary_print_fn():
    lines = []
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2)])
    model.summary(print_fn=lines.append)
    assert any("Total params: 10" in l for l in "\n".join(lines).splitlines())


# ----------------------------------------------------------------- compile
def test_compile_default_optimizer_is_rmsprop():
    model = mlp()
    model.compile(loss="sparse_categorical_crossentropy")
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    assert model.optimizer.learning_rate == pytest.approx(0.001)


@pytest.mark.parametrize("name,cls", [("sgd", "SGD"), ("adagrad", "Adagrad"),
                                      ("rmsprop", "RMSprop"), ("adam", "Adam")])
def test_compile_string_optimizer_equals_object(name, cls):
    x, y = make_data(64)
    results = []
    for opt in (name, getattr(keras.optimizers, cls)()):
        model = mlp(seed=3)
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
        assert type(model.optimizer).__name__ == cls
        model.fit(x, y, epochs=2, shuffle=False, verbose=0)
        results.append(model.get_weights())
    assert weights_equal(*results)


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy",
                                  keras.losses.sparse_categorical_crossentropy,
                                  keras.losses.SparseCategoricalCrossentropy()])
def test_compile_loss_string_function_object_agree(loss):
    x, y = make_data(64)
    ref = mlp(seed=4)
    ref.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    ref.fit(x, y, shuffle=False, verbose=0)
    model = mlp(seed=4)
    model.compile(optimizer="sgd", loss=loss)
    model.fit(x, y, shuffle=False, verbose=0)
    assert weights_equal(ref.get_weights(), model.get_weights())


def test_unknown_names_raise():
    model = mlp()
    with pytest.raises(ValueError):
        model.compile(optimizer="adamw_typo", loss="mse")
    with pytest.raises(ValueError):
        model.compile(optimizer="adam", loss="not_a_loss")


def test_fit_before_compile_raises():
    x, y = make_data(10)
    with pytest.raises(RuntimeError, match="compile"):
        mlp().fit(x, y, verbose=0)


# ----------------------------------------------------------------- 'accuracy'
def test_accuracy_resolves_to_sparse_for_integer_labels():
    x, y = make_data(100)
    model = mlp()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, acc = model.evaluate(x, y, verbose=0)
    p = np_forward(model, x)
    assert acc == pytest.approx(np.mean(p.argmax(1) == y), abs=1e-6)
    assert loss == pytest.approx(sparse_ce(p, y).mean(), rel=1e-5)


def test_accuracy_resolves_to_categorical_for_one_hot():
    x, y = make_data(100)
    onehot = keras.utils.to_categorical(y, 3)
    model = mlp()
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    loss, acc = model.evaluate(x, onehot, verbose=0)
    p = np_forward(model, x)
    assert acc == pytest.approx(np.mean(p.argmax(1) == y), abs=1e-6)
    assert loss == pytest.approx(sparse_ce(p, y).mean(), rel=1e-5)
    # Keras resolves by shapes, so mse + one-hot targets also gets categorical accuracy
    model.compile(loss="mse", metrics=["accuracy"])
    loss, acc = model.evaluate(x, onehot, verbose=0)
    assert acc == pytest.approx(np.mean(p.argmax(1) == y), abs=1e-6)
    assert loss == pytest.approx(np.mean((p - onehot) ** 2), rel=1e-5)


def test_accuracy_resolves_to_binary_for_one_output():
    x, y = make_data(100, k=2)
    model = mlp(k=1, out_act="sigmoid")
    model.compile(loss="binary_crossentropy", metrics=["accuracy"])
    loss, acc = model.evaluate(x, y, verbose=0)
    p = np_forward(model, x)[:, 0]
    assert acc == pytest.approx(np.mean((p > 0.5) == y), abs=1e-6)
    pc = np.clip(p, 1e-7, 1 - 1e-7)
    assert loss == pytest.approx(np.mean(-(y * np.log(pc) + (1 - y) * np.log(1 - pc))), rel=1e-5)


# ----------------------------------------------------------------- fit
def test_fit_history_keys_epochs_params():
    x, y = make_data(100)
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss"]
    assert history.epoch == [0, 1, 2]
    assert all(len(v) == 3 for v in history.history.values())
    assert all(isinstance(v, float) for v in history.history["loss"])
    assert history.params == {"verbose": 0, "epochs": 3, "steps": 4}   # ceil(100 / 32)
    assert model.history is history
    # training on separable data reduces the loss
    assert history.history["loss"][-1] < history.history["loss"][0]

    history = model.fit(x, y, epochs=2, validation_split=0.2, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert history.epoch == [0, 1]
    assert history.params["steps"] == 3          # ceil(80 / 32)


@pytest.mark.parametrize("n,bs", [(100, None), (64, None), (65, None), (10, 3), (7, 10)])
def test_steps_keep_last_partial_batch(n, bs):
    x, y = make_data(n)
    model = mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=2, batch_size=bs, verbose=0)
    steps = math.ceil(n / (bs or 32))
    assert history.params["steps"] == steps
    assert int(model.optimizer.iterations) == 2 * steps


def test_fit_shuffle_false_equals_sequential_train_on_batch():
    x, y = make_data(50)
    a, b = mlp(seed=5), mlp(seed=5)
    for m in (a, b):
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    a.fit(x, y, batch_size=16, shuffle=False, verbose=0)
    for start in range(0, 50, 16):                 # 16, 16, 16, 2 (last partial batch kept)
        b.train_on_batch(x[start:start + 16], y[start:start + 16])
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def test_fit_loss_is_sample_weighted_running_mean_of_batches():
    # with lr=0 the weights never change: the epoch loss must be the mean
    # per-sample loss over the epoch (batch losses weighted by batch size)
    x, y = make_data(50)
    model = mlp()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, verbose=0)
    p = np_forward(model, x)
    assert history.history["loss"][0] == pytest.approx(sparse_ce(p, y).mean(), rel=1e-5)
    assert history.history["accuracy"][0] == pytest.approx(np.mean(p.argmax(1) == y), abs=1e-6)


def test_shuffle_false_is_deterministic_and_shuffle_true_uses_seed():
    x, y = make_data(96)
    runs = {}
    for shuffle in (False, True):
        for seed in (1, 2):
            model = mlp(seed=0)
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
            keras.utils.set_random_seed(seed)
            model.fit(x, y, epochs=2, batch_size=16, shuffle=shuffle, verbose=0)
            runs[shuffle, seed] = model.get_weights()
    assert weights_equal(runs[False, 1], runs[False, 2])
    assert not weights_equal(runs[True, 1], runs[True, 2])
    assert not weights_equal(runs[False, 1], runs[True, 1])


def test_validation_split_takes_last_fraction_before_shuffling():
    x, y = make_data(100)
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, validation_split=0.2, shuffle=True, verbose=0)
    assert history.params["steps"] == 3      # 80 training samples
    loss, acc = model.evaluate(x[80:], y[80:], verbose=0)
    assert history.history["val_loss"][-1] == pytest.approx(loss, rel=1e-5)
    assert history.history["val_accuracy"][-1] == pytest.approx(acc, abs=1e-6)
    # and not the first 20 rows
    assert history.history["val_loss"][-1] != pytest.approx(
        model.evaluate(x[:20], y[:20], verbose=0)[0], rel=1e-5)


def test_validation_split_odd_size_uses_floor():
    x, y = make_data(33)
    model = mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, validation_split=0.25, batch_size=4, verbose=0)
    split_at = math.floor(33 * 0.75)          # 24 train, 9 validation
    assert history.params["steps"] == math.ceil(split_at / 4)
    assert history.history["val_loss"][0] == pytest.approx(
        model.evaluate(x[split_at:], y[split_at:], verbose=0), rel=1e-5)


def test_validation_data_overrides_split():
    x, y = make_data(100)
    xv, yv = make_data(30, seed=9)
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, validation_data=(xv, yv), validation_split=0.5, verbose=0)
    assert history.params["steps"] == 4      # all 100 samples train
    loss, acc = model.evaluate(xv, yv, verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(loss, rel=1e-5)
    assert history.history["val_accuracy"][0] == pytest.approx(acc, abs=1e-6)


def test_initial_epoch():
    x, y = make_data(40)
    model = mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=3, initial_epoch=1, verbose=0)
    assert history.epoch == [1, 2]
    assert len(history.history["loss"]) == 2
    assert int(model.optimizer.iterations) == 2 * 2    # 2 epochs of ceil(40/32) steps


def test_fit_continues_training_and_iterations_accumulate():
    x, y = make_data(64)
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, verbose=0)
    model.fit(x, y, verbose=0)
    assert int(model.optimizer.iterations) == 4


# ----------------------------------------------------------------- evaluate / predict
def test_evaluate_return_types():
    x, y = make_data(70)
    model = mlp()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    res = model.evaluate(x, y, verbose=0)
    assert isinstance(res, list) and len(res) == 2
    assert all(isinstance(v, float) for v in res)
    d = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(d) == {"loss", "accuracy"}
    assert d["loss"] == pytest.approx(res[0]) and d["accuracy"] == pytest.approx(res[1])
    model.compile(loss="sparse_categorical_crossentropy")
    loss = model.evaluate(x, y, verbose=0)
    assert isinstance(loss, float)
    assert model.evaluate(x, y, verbose=0, return_dict=True) == {"loss": pytest.approx(loss)}


@pytest.mark.parametrize("bs", [1, 7, 32, 1000])
def test_evaluate_loss_is_mean_per_sample_loss(bs):
    x, y = make_data(70)
    model = mlp()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, acc = model.evaluate(x, y, batch_size=bs, verbose=0)
    p = model.predict(x, verbose=0).astype(np.float64)
    assert loss == pytest.approx(sparse_ce(p, y).mean(), rel=1e-5)
    assert acc == pytest.approx(np.mean(p.argmax(1) == y), abs=1e-6)


def test_predict_shape_dtype_and_batch_size_independence():
    x, _ = make_data(101)
    model = mlp()
    ref = model.predict(x, verbose=0)
    assert ref.shape == (101, 3) and ref.dtype == np.float32
    np.testing.assert_allclose(ref, np_forward(model, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ref.sum(axis=1), 1, rtol=1e-5)
    for bs in (1, 7, 32, 10000):
        np.testing.assert_allclose(model.predict(x, batch_size=bs, verbose=0), ref,
                                   rtol=1e-6, atol=1e-7)
    # a model called on a batch gives the same numbers
    np.testing.assert_allclose(np.asarray(model(x)), ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.predict_on_batch(x[:5]), ref[:5], rtol=1e-6, atol=1e-7)


def test_on_batch_methods_are_per_batch():
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(2, activation="softmax")])
    model.set_weights([np.array([[5., 0.], [0., 5.]], np.float32), np.zeros(2, np.float32)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x = np.eye(2, dtype=np.float32)
    good, bad = np.array([0, 1]), np.array([1, 0])
    # values checked against Keras 3.15: the loss and accuracy of that batch only
    p = np_forward(model, x)
    l_good, l_bad = sparse_ce(p, good).mean(), sparse_ce(p, bad).mean()
    r1 = model.train_on_batch(x, good)
    r2 = model.train_on_batch(x, bad)
    assert r1 == [pytest.approx(l_good, rel=1e-5), pytest.approx(1.0)]
    assert r2 == [pytest.approx(l_bad, rel=1e-5), pytest.approx(0.0)]
    assert model.test_on_batch(x, good) == [pytest.approx(l_good, rel=1e-5), pytest.approx(1.0)]
    assert model.test_on_batch(x, bad) == [pytest.approx(l_bad, rel=1e-5), pytest.approx(0.0)]
    assert model.train_on_batch(x, good, return_dict=True) == {
        "loss": pytest.approx(l_good, rel=1e-5), "accuracy": pytest.approx(1.0)}
    assert int(model.optimizer.iterations) == 3
    out = model.predict_on_batch(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, p, rtol=1e-6)


def test_train_on_batch_returns_loss_before_the_update_and_updates():
    x, y = make_data(20)
    model = mlp()
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    before = model.test_on_batch(x, y)
    w0 = model.get_weights()
    loss = model.train_on_batch(x, y)
    assert isinstance(loss, float)
    assert loss == pytest.approx(before, rel=1e-6)
    assert not weights_equal(w0, model.get_weights())
    assert model.test_on_batch(x, y) < before
    assert int(model.optimizer.iterations) == 1


# ----------------------------------------------------------------- verbosity
def test_verbose_0_prints_nothing(capsys):
    x, y = make_data(40)
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, validation_split=0.2, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_2_prints_one_line_per_epoch(capsys):
    x, y = make_data(40)
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=2)
    out = capsys.readouterr().out
    assert "\r" not in out and "\b" not in out
    lines = [l for l in out.splitlines() if l.strip()]
    # Keras 3: 'Epoch 1/3' then '5/5 - 0s - 3ms/step - accuracy: 0.4000 - loss: 1.0950'
    assert [l for l in lines if l.startswith("Epoch")] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    body = [l for l in lines if not l.startswith("Epoch")]
    assert len(body) == 3
    for line, loss in zip(body, history.history["loss"]):
        assert line.startswith("5/5 - ")
        assert f"loss: {loss:.4f}" in line
        assert "accuracy: " in line


def test_verbose_1_epoch_lines(capsys):
    x, y = make_data(40)
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "2/2" in out and "loss: " in out
    model.fit(x, y, epochs=1)                # verbose='auto' means 1
    out = capsys.readouterr().out
    assert "Epoch 1/1" not in out            # Keras prints no epoch line for one epoch
    assert "loss: " in out


# ----------------------------------------------------------------- input types
@pytest.mark.parametrize("xdtype", [np.uint8, np.float64, np.int64, np.float32])
@pytest.mark.parametrize("ydtype", [np.uint8, np.int32, np.int64])
def test_input_and_label_dtypes(xdtype, ydtype):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=(48, 8)).astype(xdtype)
    y = rng.integers(0, 3, size=48).astype(ydtype)
    model = mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, shuffle=False, verbose=0)
    ref = mlp()
    ref.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ref.fit(x.astype(np.float32), y.astype(np.int64), epochs=1, shuffle=False, verbose=0)
    assert weights_equal(model.get_weights(), ref.get_weights())
    assert all(w.dtype == np.float32 for w in model.get_weights())
    p = model.predict(x, verbose=0)
    assert p.dtype == np.float32
    assert model.evaluate(x, y, verbose=0) == pytest.approx(ref.evaluate(x, y, verbose=0))


def test_one_hot_labels_train_like_integer_labels():
    x, y = make_data(64)
    a, b = mlp(seed=2), mlp(seed=2)
    a.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    b.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    ha = a.fit(x, y, epochs=2, shuffle=False, verbose=0)
    hb = b.fit(x, keras.utils.to_categorical(y, 3), epochs=2, shuffle=False, verbose=0)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ha.history["accuracy"], hb.history["accuracy"])
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-5)


def test_labels_as_column_vector():
    x, y = make_data(40)
    model = mlp()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert model.evaluate(x, y[:, None], verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))


def test_bad_inputs_give_clear_errors():
    x, y = make_data(20)
    model = mlp()
    model.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError):
        model.fit(x, y[:10], verbose=0)            # different lengths
    with pytest.raises(ValueError):
        model.fit(x[:, :5], y, verbose=0)          # wrong feature count
    with pytest.raises(ValueError):
        model.fit(x, y + 3, verbose=0)             # label out of range


# ----------------------------------------------------------------- weighting
def test_sample_weight_loss_is_sum_w_l_over_n():
    x, y = make_data(50)
    w = np.random.default_rng(3).random(50)
    model = mlp()
    model.compile(loss="sparse_categorical_crossentropy")
    l = sparse_ce(np_forward(model, x), y)
    expected = (w * l).sum() / 50          # Keras: divided by N, not by sum(w)
    for bs in (7, 50):
        assert model.evaluate(x, y, sample_weight=w, batch_size=bs, verbose=0) == \
            pytest.approx(expected, rel=1e-5)
    assert model.test_on_batch(x, y, sample_weight=w) == pytest.approx(expected, rel=1e-5)


def test_class_weight_loss():
    x, y = make_data(50)
    cw = {0: 2.0, 1: 0.5, 2: 1.0}
    model = mlp()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    l = sparse_ce(np_forward(model, x), y)
    expected = (np.array([cw[int(c)] for c in y]) * l).sum() / 50
    assert model.train_on_batch(x, y, class_weight=cw) == pytest.approx(expected, rel=1e-5)
    h = model.fit(x, y, class_weight=cw, batch_size=50, shuffle=False, verbose=0)
    assert h.history["loss"][0] == pytest.approx(expected, rel=1e-5)


def test_sample_weight_changes_training():
    x, y = make_data(64)
    runs = []
    for sw in (None, np.where(y == 0, 5.0, 0.1)):
        model = mlp(seed=1)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(x, y, sample_weight=sw, shuffle=False, verbose=0)
        runs.append(model.get_weights())
    assert not weights_equal(*runs)


def test_metrics_are_not_sample_weighted():
    x, y = make_data(60)
    w = np.random.default_rng(4).random(60)
    model = mlp()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    correct = np_forward(model, x).argmax(1) == y
    assert correct.mean() != pytest.approx((w * correct).sum() / w.sum(), abs=1e-3)
    _, acc = model.evaluate(x, y, sample_weight=w, verbose=0)
    assert acc == pytest.approx(correct.mean(), abs=1e-6)


def test_weighted_metrics_logged_separately():
    x, y = make_data(60)
    w = np.random.default_rng(4).random(60)
    model = mlp()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  weighted_metrics=["accuracy"])
    correct = np_forward(model, x).argmax(1) == y
    logs = model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "accuracy", "weighted_accuracy"}
    assert logs["accuracy"] == pytest.approx(correct.mean(), abs=1e-6)
    assert logs["weighted_accuracy"] == pytest.approx((w * correct).sum() / w.sum(), abs=1e-6)


# ----------------------------------------------------------------- trainable
def test_frozen_layer_not_updated_by_fit():
    x, y = make_data(64)
    model = mlp()
    model.layers[0].trainable = False
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    frozen = model.layers[0].get_weights()
    free = model.layers[1].get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    assert weights_equal(frozen, model.layers[0].get_weights())
    assert not weights_equal(free, model.layers[1].get_weights())
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2


def test_frozen_model_not_updated():
    x, y = make_data(32)
    model = mlp()
    model.trainable = False
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    w0 = model.get_weights()
    model.fit(x, y, verbose=0)
    assert weights_equal(w0, model.get_weights())
    assert model.trainable_weights == []


# ----------------------------------------------------------------- dropout in fit
def test_dropout_active_in_fit_only():
    x, y = make_data(64)
    plain, dropped = mlp(seed=7), mlp(seed=7, dropout=0.5)
    dropped.set_weights(plain.get_weights())
    for m in (plain, dropped):
        m.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    # inference (predict / evaluate / call) ignores dropout
    np.testing.assert_array_equal(plain.predict(x, verbose=0), dropped.predict(x, verbose=0))
    assert plain.evaluate(x, y, verbose=0) == pytest.approx(dropped.evaluate(x, y, verbose=0))
    np.testing.assert_array_equal(np.asarray(dropped(x)), plain.predict(x, verbose=0))
    # training runs it: with lr=0 the only difference is the dropout masks
    h_plain = plain.fit(x, y, verbose=0)
    h_drop = dropped.fit(x, y, verbose=0)
    assert h_plain.history["loss"][0] == pytest.approx(plain.evaluate(x, y, verbose=0)[0], rel=1e-5)
    assert h_drop.history["loss"][0] != pytest.approx(h_plain.history["loss"][0], rel=1e-3)


# ----------------------------------------------------------------- reproducibility
def _seeded_run(seed, x, y):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.3), keras.layers.Dense(3, activation="softmax")])
    init = model.get_weights()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return init, model.get_weights(), history.history


def test_set_random_seed_reproduces_init_and_training():
    x, y = make_data(96)
    a = _seeded_run(42, x, y)
    b = _seeded_run(42, x, y)
    c = _seeded_run(43, x, y)
    assert weights_equal(a[0], b[0])
    assert weights_equal(a[1], b[1])
    assert a[2] == b[2]
    assert not weights_equal(a[0], c[0])
    assert not weights_equal(a[1], c[1])


def test_set_random_seed_reproduces_across_thread_counts():
    x, y = make_data(96)
    keras.set_num_threads(1)
    a = _seeded_run(5, x, y)
    keras.set_num_threads(2)
    b = _seeded_run(5, x, y)
    for u, v in zip(a[1], b[1]):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- real data
def test_book_model_on_fashion_mnist_slice(fmnist):
    (x_train, y_train), (x_test, y_test) = fmnist
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and x_test.shape == (10000, 28, 28)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(100, activation="relu"),
                              keras.layers.Dropout(0.3),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train[:6000] / 255.0, y_train[:6000], epochs=3,
                        validation_split=0.2, verbose=0)
    assert history.history["val_accuracy"][-1] > 0.70
    loss, acc = model.evaluate(x_test[:2000] / 255.0, y_test[:2000], verbose=0)
    assert acc > 0.70 and loss < 1.0
    p = model.predict(x_test[:2000] / 255.0, verbose=0)
    assert p.shape == (2000, 10)
    assert acc == pytest.approx(np.mean(p.argmax(1) == y_test[:2000]), abs=1e-6)
