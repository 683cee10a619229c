"""Error messages that teach: what a learner porting a Keras notebook types,
and what nncore answers."""
import numpy as np
import pytest

import nncore as keras


@pytest.fixture
def image_model():
    m = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


X = np.random.default_rng(0).random((6, 28, 28)).astype("float32")
Y = np.arange(6) % 10


def test_predict_one_image_hints_at_the_batch_axis(image_model):
    with pytest.raises(ValueError, match=r"x\[None\].*x_test\[:1\]"):
        image_model.predict(X[0])
    assert image_model.predict(X[0][None], verbose=0).shape == (1, 10)
    assert image_model.predict(X[:1], verbose=0).shape == (1, 10)


def test_predict_one_flat_vector_hints_at_the_batch_axis():
    m = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(10)])
    with pytest.raises(ValueError, match=r"got shape \(784,\).*x\[None\]"):
        m.predict(np.zeros(784))


def test_a_real_shape_mistake_gets_no_single_sample_hint(image_model):
    with pytest.raises(ValueError) as info:
        image_model.predict(X[:, :27])
    assert "x[None]" not in str(info.value)


@pytest.mark.parametrize("cls", [keras.optimizers.Adam, keras.optimizers.SGD,
                                 keras.optimizers.RMSprop, keras.optimizers.Adagrad])
def test_lr_is_refused_with_the_right_spelling(cls):
    with pytest.raises(TypeError, match=rf"{cls.__name__}\(learning_rate=0.01\)"):
        cls(lr=0.01)
    assert cls(learning_rate=0.01).lr == 0.01          # the attribute alias still reads


def test_misspelt_optimizer_argument_gets_a_suggestion():
    with pytest.raises(TypeError, match="did you mean `momentum`"):
        keras.optimizers.SGD(momentun=0.9)


@pytest.mark.parametrize("name", ["BatchNormalization", "Bidirectional", "Conv1D", "Masking"])
def test_unsupported_layers_say_not_in_nncore_yet(name):
    with pytest.raises(AttributeError, match=rf"keras.layers.{name} is not in nncore yet.*Dense"):
        getattr(keras.layers, name)


def test_unsupported_callback_says_not_in_nncore_yet():
    with pytest.raises(AttributeError, match="BackupAndRestore is not in nncore yet.*EarlyStopping"):
        keras.callbacks.BackupAndRestore


def test_misspelt_layer_gets_a_suggestion_and_hasattr_still_works():
    with pytest.raises(AttributeError, match="Did you mean 'Dense'"):
        keras.layers.Dence
    assert not hasattr(keras.layers, "Bidirectional")  # still an AttributeError


@pytest.mark.parametrize("name", ["nadam", "Nadam", "adamw", "ftrl"])
def test_unsupported_optimizer_names_say_not_in_nncore_yet(image_model, name):
    with pytest.raises(ValueError, match="not in nncore yet.*adam"):
        image_model.compile(optimizer=name, loss="sparse_categorical_crossentropy")
    with pytest.raises(AttributeError, match="not in nncore yet"):
        keras.optimizers.Nadam


def test_generators_are_refused_with_what_to_do_instead(image_model):
    def batches():
        for i in range(3):
            yield X[2 * i:2 * i + 2], Y[2 * i:2 * i + 2]

    for data in (batches(), iter([X])):
        with pytest.raises(TypeError, match="not generators.*np.concatenate") as info:
            image_model.fit(data, epochs=1, verbose=0)
        assert "strings/objects" not in str(info.value)

    class PyDataset:                      # keras.utils.PyDataset-like object
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return X[:2], Y[:2]

    with pytest.raises(TypeError, match="PyDataset"):
        image_model.fit(PyDataset(), epochs=1, verbose=0)


def test_lists_of_numbers_are_still_accepted():
    m = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    assert m.predict([[1.0, 2.0], [3.0, 4.0]], verbose=0).shape == (2, 1)


def test_show_config_says_cpu_only(capsys):
    c = keras.show_config()
    out = capsys.readouterr().out
    assert "CPU only" in out and "no GPU" in out
    assert c["device"].startswith("CPU only")


@pytest.mark.parametrize("make", [lambda: keras.layers.Dense(3),
                                  lambda: keras.layers.Conv2D(2, 3),
                                  lambda: keras.layers.MaxPooling2D(2),
                                  lambda: keras.layers.AveragePooling2D(2)],
                         ids=["Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D"])
def test_forward_on_an_unbuilt_layer_says_how_to_build_it(make):
    # a learner following the walkthrough calls layer.forward(x) by hand
    layer, x = make(), np.zeros((2, 4, 4, 1), np.float32)
    with pytest.raises(RuntimeError, match=rf"'{layer.name}'.*not built.*layer\(x\)"):
        layer.forward(x)
    layer(x)                                # calling it builds it ...
    assert layer.forward(x).shape[0] == 2   # ... and then forward works
