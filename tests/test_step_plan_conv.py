"""Convolutional models on the step plan (Conv2D, pooling, Flatten).

* the book's CNN has a plan (``explain`` is None) and ``fit`` runs it;
* the compiled loop trains bitwise like the per-batch path: both run the
  same per-image kernels (src_cython/k_conv.pxd) and sum each conv weight
  gradient over the same fixed groups of images, in the same order --
  for padding, strides, pooling kinds, no bias, regularizers, a frozen
  first layer, Dropout after a conv, every optimizer, and convolutions on
  the Winograd path (3x3, stride 1, >= 8 channels);
* 1 and 2 threads give the same bits (run_steps called directly, so the
  thread count is the one asked, not the chooser's pick);
* the compiled loop agrees with its NumPy twin (float64), and the twin
  with the per-batch path on the NumPy backend (bitwise);
* what the plan cannot do falls back with a reason, and a plan entry with a
  bad geometry is refused before any kernel runs.

Images are small (except the book's model, on a few dozen images) to keep
the file fast.
"""
import copy
import numpy as np
import pytest

import nncore as keras
from nncore import backend
from nncore.models import plan as P

L = keras.layers


def _images(n=40, hw=(9, 9), c=1, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.random((n,) + hw + (c,)) + 0.3 * y[:, None, None, None] / classes
    return x.astype(np.float32), y


def book_cnn():
    return [L.Input(shape=(28, 28, 1)),
            L.Conv2D(32, 3, activation="relu", padding="same"), L.MaxPooling2D(2),
            L.Conv2D(64, (3, 3), activation="relu", padding="same"), L.MaxPooling2D(2),
            L.Flatten(), L.Dense(100, activation="relu"), L.Dropout(0.4),
            L.Dense(10, activation="softmax")]


def _small(conv1=None, pool1=None, conv2=None, extra=(), c=1, hw=(9, 9), filters=4):
    conv1 = conv1 or {}
    layers = [L.Input(shape=hw + (c,)),
              L.Conv2D(filters, 3, **{"activation": "relu", "padding": "same", **conv1})]
    layers += list(extra)
    layers.append(pool1 if pool1 is not None else L.MaxPooling2D(2))
    if conv2 is not None:
        layers.append(L.Conv2D(3, 2, **conv2))
    layers += [L.Flatten(), L.Dense(5, activation="softmax")]
    return layers


reg = keras.regularizers.L1L2(l1=1e-3, l2=1e-2)

CASES = {
    "valid_maxpool": dict(layers=lambda: _small({"padding": "valid"},
                                                conv2={"activation": "tanh"})),
    "same_stride2_c3": dict(layers=lambda: _small({"strides": 2, "activation": "sigmoid"},
                                                  pool1=L.MaxPooling2D(2, padding="same"),
                                                  conv2={"padding": "same"}, c=3)),
    "avgpool_overlapping": dict(layers=lambda: _small(
        pool1=L.AveragePooling2D(3, strides=2, padding="same"), conv2={"activation": "relu"})),
    "maxpool_overlapping_valid": dict(layers=lambda: _small(
        pool1=L.MaxPooling2D(3, strides=2), conv2={"padding": "same", "strides": 2})),
    "no_bias_linear": dict(layers=lambda: _small({"use_bias": False, "activation": None},
                                                 conv2={"use_bias": False}, c=2)),
    "l1l2": dict(layers=lambda: _small({"kernel_regularizer": reg, "bias_regularizer": reg},
                                       conv2={"kernel_regularizer": "l2"}),
                 opt=lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True)),
    "frozen_first": dict(layers=lambda: _small(conv2={"activation": "relu"}), freeze=0,
                         opt=lambda: keras.optimizers.RMSprop(centered=True, momentum=0.5)),
    "frozen_convs_dense_trained": dict(layers=lambda: _small(conv2={"activation": "relu"}),
                                       freeze=[0, 2]),
    "dropout_after_conv": dict(layers=lambda: _small(extra=[L.Dropout(0.3)],
                                                     conv2={"activation": "relu"}),
                               opt=lambda: keras.optimizers.Adagrad(0.05)),
    "adam_amsgrad_odd_batch": dict(layers=lambda: _small(conv2={"activation": "relu"}, c=2),
                                   opt=lambda: keras.optimizers.Adam(amsgrad=True), bs=7),
    "sgd_plain_one_conv": dict(layers=lambda: [L.Input(shape=(8, 8, 2)),
                                               L.Conv2D(3, 3, activation="tanh"),
                                               L.Flatten(), L.Dense(5)],
                               opt=lambda: keras.optimizers.SGD(0.1),
                               loss=keras.losses.SparseCategoricalCrossentropy(
                                   from_logits=True)),
}

# wide enough for the compiled loop to use a team of two threads
TEAM_CASES = {
    "wide_two_convs": dict(layers=lambda: _small(conv2={"padding": "same", "activation": "relu"},
                                                 c=3, hw=(16, 16), filters=16)),
    "wide_frozen_first_avgpool": dict(layers=lambda: _small(
        pool1=L.AveragePooling2D(2), conv2={"activation": "tanh"}, c=3, hw=(16, 16),
        filters=16), freeze=0, opt=lambda: keras.optimizers.SGD(0.05, momentum=0.9)),
    "wide_dropout_no_bias": dict(layers=lambda: _small(
        {"use_bias": False}, extra=[L.Dropout(0.25)], conv2={"kernel_regularizer": "l2"},
        c=3, hw=(16, 16), filters=16), opt=lambda: keras.optimizers.Adam(amsgrad=True)),
    # 3x3 stride-1 convolutions with >= 8 channels in and out take the
    # Winograd path (k_conv.pxd) on both paths: its kernel transforms follow
    # every update, its partials are summed in the Winograd domain
    "wide_winograd_dx": dict(layers=lambda: [
        L.Input(shape=(16, 16, 3)), L.Conv2D(16, 3, padding="same", activation="relu"),
        L.Conv2D(8, 3, padding="same", activation="relu"),
        L.Conv2D(8, 3, activation="tanh", use_bias=False), L.MaxPooling2D(2),
        L.Flatten(), L.Dense(5, activation="softmax")]),
}
CASES.update(TEAM_CASES)
CASES["winograd_lowest_trained_l2"] = dict(layers=lambda: [
    L.Input(shape=(8, 8, 2)), L.Conv2D(8, 3, padding="same", activation="relu"),
    L.Conv2D(8, 3, padding="same", activation="sigmoid", kernel_regularizer="l2",
             bias_regularizer="l1"),
    L.AveragePooling2D(2), L.Flatten(), L.Dense(5, activation="softmax")], freeze=0,
    opt=lambda: keras.optimizers.RMSprop(momentum=0.3))


def _model(case):
    model = keras.Sequential(case["layers"]())
    for i in np.atleast_1d(case.get("freeze", [])):
        model.layers[i].trainable = False
    opt = case.get("opt", lambda: keras.optimizers.Adam())()
    model.compile(optimizer=opt, loss=case.get("loss", "sparse_categorical_crossentropy"),
                  metrics=["accuracy"])
    return model


def _fit(case, be="cython", use_fused=True, threads=2, float64=False, epochs=2):
    backend.set_backend(be)
    keras.set_num_threads(threads)
    if float64:
        keras.config.set_floatx("float64")
    keras.utils.set_random_seed(4)
    model = _model(case)
    model.use_fused = use_fused
    c = model.layers[0].input_shape[-1]
    hw = tuple(model.layers[0].input_shape[1:3])
    x, y = _images(c=c, hw=hw)
    if float64:
        x = x.astype(np.float64)
    h = model.fit(x, y, epochs=epochs, batch_size=case.get("bs", 8), verbose=0)
    route = model._last_route
    backend.set_backend("cython")
    keras.config.set_floatx("float32")
    return model, h.history, route


def _assert_bitwise(ref, got):
    (m0, h0, _), (m1, h1, _) = ref, got
    for a, b in zip(m0.get_weights(), m1.get_weights()):
        assert np.array_equal(a, b)
    for a, b in zip(m0.optimizer.variables, m1.optimizer.variables):
        assert np.array_equal(a, b)
    assert h0 == h1


def test_book_cnn_has_a_plan_and_fit_runs_it_bitwise_like_the_per_batch_path():
    results = []
    for use_fused in (True, False):
        keras.set_num_threads(2)
        keras.utils.set_random_seed(3)
        model = keras.Sequential(book_cnn())
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        assert P.explain(model) is None
        model.use_fused = use_fused
        x, y = _images(n=48, hw=(28, 28), classes=10)
        h = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        assert model._last_route.route == ("run_steps" if use_fused else "per-batch")
        results.append((model, h.history, model._last_route))
    _assert_bitwise(results[1], results[0])


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_plan_equals_per_batch_path_bitwise(name):
    ref = _fit(CASES[name], use_fused=False)
    got = _fit(CASES[name], use_fused=True)
    assert ref[2].route == "per-batch" and got[2].route == "run_steps", got[2]
    _assert_bitwise(ref, got)


@pytest.mark.parametrize("name", ["same_stride2_c3", "frozen_first", "dropout_after_conv",
                                  "winograd_lowest_trained_l2"])
def test_numpy_twin_equals_per_batch_path_bitwise(name):
    ref = _fit(CASES[name], be="numpy", use_fused=False, epochs=1)
    got = _fit(CASES[name], be="numpy", use_fused=True, epochs=1)
    assert got[2].route == "run_steps" and got[2].backend == "numpy"
    _assert_bitwise(ref, got)


@pytest.mark.parametrize("name", ["valid_maxpool", "same_stride2_c3", "avgpool_overlapping",
                                  "no_bias_linear", "l1l2", "frozen_first",
                                  "dropout_after_conv", "wide_winograd_dx",
                                  "winograd_lowest_trained_l2"])
def test_compiled_loop_equals_numpy_twin_float64(name):
    twin, th, tr = _fit(CASES[name], be="numpy", float64=True)
    comp, ch, cr = _fit(CASES[name], be="cython", float64=True)
    assert tr.backend == "numpy" and cr.backend == "cython" and cr.route == "run_steps"
    for a, b in zip(twin.get_weights(), comp.get_weights()):
        assert a.dtype == np.float64
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    for k in th:
        np.testing.assert_allclose(ch[k], th[k], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", list(TEAM_CASES))
def test_one_and_two_threads_give_the_same_bits(name):
    """run_steps directly, with the thread count asked (the chooser would
    mix them), on a batch that does not split evenly into groups."""
    from nncore._ext import training as compiled
    keras.set_num_threads(2)
    out = []
    for threads in (1, 2):
        keras.utils.set_random_seed(9)
        model = _model(CASES[name])
        model.optimizer.build(model.trainable_weights)
        plan = P.make_plan(model)
        fused = plan.build(13, False)
        if threads == 2:
            assert fused.layout(13)["threads"] == 2
        x, y = _images(n=39, hw=(16, 16), c=3)
        sums = np.zeros(4)
        order = np.arange(len(y), dtype=np.intp)[::-1].copy()
        done = compiled.run_steps(fused, x.reshape(len(x), -1), y.astype(np.int32), None,
                                  None, order, 0, 3, 13, 0, sums, threads)
        assert done == 3
        out.append((sums, model.get_weights()))
    assert np.array_equal(out[0][0], out[1][0])
    for a, b in zip(out[0][1], out[1][1]):
        assert np.array_equal(a, b)


def _explain(layers):
    model = keras.Sequential(layers)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model, P.explain(model)


def test_unsupported_image_models_fall_back_with_a_reason():
    # a softmax over each pixel's channels: the loop's Activation is per row
    model, reason = _explain([L.Input(shape=(6, 6, 1)), L.Conv2D(3, 3),
                              L.Activation("softmax"), L.Flatten(), L.Dense(4)])
    assert "Activation" in reason and "4-D" in reason
    x, y = _images(n=16, hw=(6, 6), classes=4)
    model.fit(x, y, epochs=1, verbose=0)
    assert model._last_route.route == "per-batch" and model._last_route.reason == reason
    # the loss reading a convolution's output (Flatten only reshapes it)
    _, reason = _explain([L.Input(shape=(4, 4, 1)), L.Conv2D(3, 3), L.Flatten()])
    assert "output comes from layer" in reason and "Conv2D" in reason
    # a Dense on images (its kernel acts on the channels only)
    _, reason = _explain([L.Input(shape=(4, 4, 1)), L.Dense(3), L.Flatten(), L.Dense(2)])
    assert "Dense" in reason and "4-D" in reason


def test_images_of_another_shape_train_on_the_per_batch_path():
    """Same number of values per image, another height and width: the plan's
    geometry does not apply, so fit must not run it."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([L.Input(shape=(6, 6, 1)), L.Conv2D(2, 3), L.Flatten(),
                              L.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    assert P.explain(model) is None
    from nncore.models import loop
    x, y = _images(n=8, hw=(4, 9), classes=3)
    stepper = loop.make_stepper(model, x, y, None, 4)
    assert stepper.route == "per-batch" and "(4, 9, 1)" in stepper.reason


@pytest.mark.parametrize("impl_name", ["compiled", "twin"])
@pytest.mark.parametrize("bad", [dict(pt=3), dict(oh=20), dict(sh=0), dict(in_c=2),
                                 dict(n_out=10), dict(kh=None), dict(sw=1.5)])
def test_a_plan_entry_with_a_bad_geometry_is_refused(impl_name, bad):
    from nncore._ext import training as compiled
    from nncore.ops import training as twin
    impl = compiled if impl_name == "compiled" else twin
    keras.utils.set_random_seed(2)
    model = _model({"layers": lambda: _small(conv2={"activation": "relu"})})
    model.optimizer.build(model.trainable_weights)
    plan = P.make_plan(model)
    entries = [copy.copy(e) for e in plan.entries]
    for k, v in bad.items():
        setattr(entries[0], k, v)
    with pytest.raises(ValueError):
        impl.FusedPlan(entries, plan.optimizer, plan.loss_kind, plan.metrics, 8,
                       plan.n_features, plan.n_outputs, False, True, False)
