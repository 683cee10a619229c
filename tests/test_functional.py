"""keras.Input / layer calls on symbolic tensors / keras.Model(inputs, outputs)."""
import numpy as np
import pytest

import nncore as keras

L = keras.layers


def _x(n=16, shape=(28, 28)):
    return np.random.default_rng(0).random((n,) + shape).astype(np.float32)


def _book_dense():
    return keras.Sequential([keras.Input(shape=(28, 28)), L.Flatten(),
                             L.Dense(100, activation="relu"), L.Dense(10, activation="softmax")])


def test_input_is_a_symbolic_tensor():
    t = keras.Input(shape=(28, 28, 1), name="img")
    assert t.shape == (None, 28, 28, 1) and t.dtype == np.float32 and t.name == "img"
    with pytest.raises(TypeError, match="symbolic"):
        np.asarray(t)


def test_sequential_exposes_inputs_outputs_and_layer_outputs():
    m = _book_dense()
    assert [t.shape for t in m.inputs] == [(None, 28, 28)]
    assert m.layers[1].output.shape == (None, 100)
    assert m.outputs[0] is m.layers[-1].output
    assert m.layers[1].input is m.layers[0].output


def test_unbuilt_sequential_has_no_inputs_yet():
    m = keras.Sequential([L.Dense(3)])
    with pytest.raises(AttributeError, match="not built"):
        m.inputs
    with pytest.raises(AttributeError, match="never been called"):
        L.Dense(2).output


def test_intermediate_output_model_shares_weights_and_computes_the_layer():
    """Chapter 8's feature-map trick, on the dense model: a model from the
    input to layer 1's output computes exactly relu(x W + b) with the
    original model's (shared, trained) weights."""
    m = _book_dense()
    m.compile("adam", "sparse_categorical_crossentropy")
    x = _x()
    m.fit(x, np.arange(16) % 10, epochs=1, verbose=0)
    sub = keras.Model(m.inputs[0], m.layers[1].output)
    assert sub.layers[2] is m.layers[1]        # sub.layers[0]: its InputLayer, as in Keras
    d = m.layers[1]
    want = np.maximum(x.reshape(16, -1) @ d.kernel.value + d.bias.value, 0)
    # float32 sums over 784 pixels in another order than NumPy's: ~1e-6 apart
    np.testing.assert_allclose(sub.predict(x, verbose=0), want, rtol=1e-5, atol=1e-5)
    # training the big model moves what the sub-model computes (shared weights)
    before = sub.predict(x, verbose=0)
    m.fit(x, np.arange(16) % 10, epochs=1, verbose=0)
    assert not np.array_equal(before, sub.predict(x, verbose=0))


def test_functional_model_fits_like_the_same_sequential():
    rng = np.random.default_rng(1)
    x = rng.random((200, 20)).astype(np.float32)
    y = rng.integers(0, 3, 200)
    results = []
    for kind in ("functional", "sequential"):
        keras.utils.set_random_seed(5)
        if kind == "functional":
            # layers made first, then called: the random draws (initial
            # weights, dropout streams) happen in the Sequential's order
            d1, drop, d2 = (L.Dense(16, activation="relu"), L.Dropout(0.2),
                            L.Dense(3, activation="softmax"))
            inp = keras.Input(shape=(20,))
            out = d2(drop(d1(inp)))
            model = keras.Model(inputs=inp, outputs=out)
        else:
            model = keras.Sequential([keras.Input(shape=(20,)), L.Dense(16, activation="relu"),
                                      L.Dropout(0.2), L.Dense(3, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        h = model.fit(x, y, epochs=2, validation_split=0.2, verbose=0)
        results.append((model.get_weights(), h.history, model.evaluate(x, y, verbose=0)))
    (w1, h1, e1), (w2, h2, e2) = results
    for a, b in zip(w1, w2):
        assert np.array_equal(a, b)
    assert h1 == h2 and e1 == e2


def test_functional_model_save_and_load(tmp_path):
    inp = keras.Input(shape=(6,))
    out = L.Dense(2, activation="softmax")(L.Dense(4, activation="tanh")(inp))
    model = keras.Model(inp, out)
    x = _x(5, (6,))
    model.save(tmp_path / "f.npz")
    again = keras.models.load_model(tmp_path / "f.npz")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_functional_layers_and_summary_start_with_the_input_layer(tmp_path):
    """Keras 3 lists a functional model's InputLayer in ``layers`` (index 0,
    ``get_layer``) and in ``summary()`` (0 parameters), unlike a Sequential's;
    the model still trains on the step plan and round-trips through .npz and
    .keras files."""
    inp = keras.Input(shape=(6,), name="features")
    hidden = L.Dense(4, activation="tanh", name="hidden")
    out = L.Dense(2, activation="softmax", name="out")(hidden(inp))
    model = keras.Model(inp, out)
    assert [type(l).__name__ for l in model.layers] == ["InputLayer", "Dense", "Dense"]
    assert model.layers[0] is inp.layer and model.layers[1] is hidden
    assert model.get_layer(index=0) is inp.layer
    assert model.get_layer("features") is inp.layer
    assert model.get_layer(index=-1).name == "out"
    lines = []
    model.summary(print_fn=lines.append, line_length=80)
    rows = [l for l in lines[0].splitlines() if l.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == \
        ["features (InputLayer)", "hidden (Dense)", "out (Dense)"]
    assert rows[0].split("│")[2].strip() == "(None, 6)"
    assert rows[0].split("│")[3].strip() == "0"
    assert "Total params: 38 " in lines[0]           # 6*4+4 + 4*2+2: the input adds none
    # a Sequential with keras.Input leaves it out, as in Keras
    assert [type(l).__name__ for l in _book_dense().layers] == ["Flatten", "Dense", "Dense"]
    model.compile("adam", "sparse_categorical_crossentropy")
    from nncore.models.plan import explain
    assert explain(model) is None              # the InputLayer keeps it on the step plan
    x = _x(8, (6,))
    model.fit(x, np.arange(8) % 2, epochs=1, verbose=0)
    for name in ("f.npz", "f.keras"):
        model.save(tmp_path / name)
        again = keras.models.load_model(tmp_path / name)
        np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    for name in ("f.weights.npz", "f.weights.h5"):
        model.save_weights(tmp_path / name)
        twin_in = keras.Input(shape=(6,))
        twin = keras.Model(twin_in, L.Dense(2, activation="softmax")(
            L.Dense(4, activation="tanh")(twin_in)))
        twin.load_weights(tmp_path / name)
        np.testing.assert_array_equal(twin.predict(x, verbose=0), model.predict(x, verbose=0))


def test_unsupported_graphs_are_refused_with_the_reason():
    a, b = keras.Input(shape=(4,)), keras.Input(shape=(4,))
    d = L.Dense(3)
    out = d(a)
    with pytest.raises(ValueError, match="multi-input"):
        keras.Model([a, b], out)
    with pytest.raises(ValueError, match="multi-output"):
        keras.Model(a, [out, L.Dense(2)(a)])
    with pytest.raises(ValueError, match="not computed from the input"):
        keras.Model(b, out)
    with pytest.raises(TypeError, match="symbolic"):
        keras.Model(np.zeros((2, 4)), out)
    with pytest.raises(ValueError, match="keras.Input"):
        keras.Model(out, L.Dense(1)(out))
    same = L.Dense(4)
    with pytest.raises(ValueError, match="applied twice"):
        keras.Model(a, same(same(a)))
    with pytest.raises(ValueError, match="built for inputs"):
        d(keras.Input(shape=(7,)))


def test_chapter8_feature_maps_equal_a_numpy_convolution():
    """8-3: keras.Model(model.inputs[0], model.layers[i].output).predict(x)
    gives the feature maps: relu(conv(x, W) + b) with 'same' padding, computed
    here with plain NumPy loops."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential()
    model.add(L.Conv2D(32, kernel_size=3, activation="relu", padding="same",
                       input_shape=(28, 28, 1)))
    model.add(L.MaxPooling2D(2))
    model.add(L.Conv2D(64, kernel_size=(3, 3), activation="relu", padding="same"))
    model.add(L.MaxPooling2D(2))
    model.add(L.Flatten())
    model.add(L.Dense(10, activation="softmax"))
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32)

    def conv_same_relu(a, w, b):
        kh, kw = w.shape[:2]
        p = np.pad(a.astype(np.float64), ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
        out = np.zeros(a.shape[:3] + (w.shape[3],))
        for i in range(kh):
            for j in range(kw):
                out += np.einsum("nhwc,cf->nhwf", p[:, i:i + a.shape[1], j:j + a.shape[2]],
                                 w[i, j].astype(np.float64))
        return np.maximum(out + b, 0)

    maps0 = keras.Model(model.inputs[0], model.layers[0].output).predict(x, verbose=0)
    assert maps0.shape == (2, 28, 28, 32)
    w0, b0 = model.layers[0].get_weights()
    want0 = conv_same_relu(x, w0, b0)
    np.testing.assert_allclose(maps0, want0, rtol=1e-4, atol=1e-5)

    maps2 = keras.Model(model.inputs[0], model.layers[2].output).predict(x, verbose=0)
    assert maps2.shape == (2, 14, 14, 64)
    pooled = want0.reshape(2, 14, 2, 14, 2, 32).max(axis=(2, 4))
    w2, b2 = model.layers[2].get_weights()
    np.testing.assert_allclose(maps2, conv_same_relu(pooled, w2, b2), rtol=1e-4, atol=1e-4)
