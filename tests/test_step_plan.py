"""One step plan, one epoch driver, two backends (issue 11).

* ``fit`` on the NumPy backend runs the NumPy twin of the fused loop
  (``nncore/ops/training.py``), not the per-batch path, and the twin equals
  the per-batch path bitwise (the same NumPy kernels in the same order);
* the compiled loop and the twin agree to float rounding for every optimizer,
  loss, dropout, L1/L2, validation, sample/class weights, odd batch sizes and
  1/2/3 threads;
* a model the plan cannot describe falls back to the per-batch path with a
  reason, instead of failing;
* ``steps_per_epoch`` means the same on both backends (Keras 3's answer).
"""
import warnings

import numpy as np
import pytest

import nncore as keras
from nncore import backend
from nncore.models import plan as P

L = keras.layers


def _data(n=203, d=12, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, (classes, d))
    y = rng.integers(0, classes, n)
    x = (centers[y] + rng.normal(0, 1.0, (n, d))).astype(np.float32)
    return x, y


def _model(case, d=12, classes=4):
    reg = keras.regularizers.L1L2(l1=1e-3, l2=1e-2) if case.get("reg") else None
    layers = [L.Input(shape=(d,)), L.Dense(16, activation=case.get("act", "relu"),
                                             kernel_regularizer=reg, bias_regularizer=reg)]
    if case.get("dropout"):
        layers.append(L.Dropout(case["dropout"]))
    if case.get("two_hidden"):
        layers.append(L.Dense(8, activation="tanh"))
    loss = case.get("loss", "sparse_categorical_crossentropy")
    units = 1 if loss == "binary_crossentropy" else classes
    out = "sigmoid" if loss == "binary_crossentropy" else case.get("out", "softmax")
    if case.get("separate_activation"):
        layers += [L.Dense(units), L.Activation(out)]
    else:
        layers.append(L.Dense(units, activation=out))
    return keras.Sequential(layers), loss


def _fit(case, be, use_fused=True, threads=1, float64=False):
    backend.set_backend(be)
    keras.set_num_threads(threads)
    if float64:
        keras.config.set_floatx("float64")
    keras.utils.set_random_seed(11)
    x, y = _data()
    model, loss = _model(case)
    if loss == "binary_crossentropy":
        y = (y % 2).astype(np.float32)
    elif loss in ("categorical_crossentropy", "mean_squared_error"):
        y = np.eye(4, dtype=np.float32)[y]
    opt = case.get("opt", lambda: keras.optimizers.Adam())()
    model.compile(optimizer=opt, loss=loss, metrics=["accuracy"],
                  weighted_metrics=["accuracy"] if case.get("sw") or case.get("cw") else None)
    model.use_fused = use_fused
    kwargs = {}
    if case.get("sw"):
        kwargs["sample_weight"] = np.linspace(0.5, 2.0, len(y))
    if case.get("cw"):
        kwargs["class_weight"] = {0: 1.0, 1: 2.0, 2: 0.5, 3: 1.5}
    if case.get("val"):
        kwargs["validation_split"] = 0.25
    h = model.fit(x, y, epochs=2, batch_size=case.get("bs", 32), verbose=0, **kwargs)
    stepper = model._last_route
    backend.set_backend("cython")
    keras.config.set_floatx("float32")
    return model, h.history, stepper


CASES = {
    "adam_dropout": {"dropout": 0.3},
    "sgd_momentum": {"opt": lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True)},
    "sgd_plain_bs7": {"opt": lambda: keras.optimizers.SGD(0.05), "bs": 7},
    "adagrad_reg": {"opt": lambda: keras.optimizers.Adagrad(0.05), "reg": True},
    "rmsprop_centered": {"opt": lambda: keras.optimizers.RMSprop(momentum=0.5, centered=True),
                         "two_hidden": True},
    "amsgrad_sw_val": {"opt": lambda: keras.optimizers.Adam(amsgrad=True), "sw": True,
                       "val": True},
    "class_weight": {"cw": True, "act": "sigmoid"},
    "onehot": {"loss": "categorical_crossentropy", "separate_activation": True},
    "binary": {"loss": "binary_crossentropy", "sw": True},
    "mse": {"loss": "mean_squared_error", "out": "softmax", "bs": 50},
}


@pytest.mark.parametrize("name", list(CASES))
def test_numpy_backend_runs_the_twin_and_equals_the_per_batch_path(name):
    case = CASES[name]
    ref_model, ref_hist, ref_stepper = _fit(case, "numpy", use_fused=False)
    model, hist, stepper = _fit(case, "numpy")
    # the twin ran (not the per-batch path) ...
    assert ref_stepper.route == "per-batch"
    assert (stepper.route, stepper.backend) == ("run_steps", "numpy")
    assert stepper.kernel_module == "nncore.ops.training"
    # ... and computes exactly what the per-batch path computes
    for a, b in zip(ref_model.get_weights(), model.get_weights()):
        assert np.array_equal(a, b)
    for a, b in zip(ref_model.optimizer.variables, model.optimizer.variables):
        assert np.array_equal(a, b)
    assert ref_hist == hist


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("name", list(CASES))
def test_compiled_loop_equals_numpy_twin(name, threads):
    """float64, so that the GEMMs' different summation orders stay far
    below the tolerance even after many steps."""
    case = CASES[name]
    twin, twin_hist, ts = _fit(case, "numpy", float64=True)
    comp, comp_hist, cs = _fit(case, "cython", threads=threads, float64=True)
    assert ts.backend == "numpy" and cs.backend == "cython" and cs.route == "run_steps"
    for a, b in zip(twin.get_weights(), comp.get_weights()):
        assert a.dtype == np.float64
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-9)
    assert twin_hist.keys() == comp_hist.keys()
    for k in twin_hist:
        np.testing.assert_allclose(comp_hist[k], twin_hist[k], rtol=1e-6, atol=1e-9)


def test_compiled_loop_equals_twin_in_float32_for_one_epoch():
    case = CASES["adam_dropout"]
    twin, th, _ = _fit(case, "numpy")
    comp, ch, _ = _fit(case, "cython")
    for a, b in zip(twin.get_weights(), comp.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_run_steps_twin_and_kernel_one_chunk_directly():
    """The two run_steps called with the same plan entries and data: the
    same number of steps taken, the same sums, the same weights (float64)."""
    from nncore._ext import training as compiled
    from nncore.ops import training as twin
    keras.config.set_floatx("float64")
    x, y = _data()
    results = []
    for impl in (twin, compiled):
        keras.utils.set_random_seed(5)
        model, loss = _model({"dropout": 0.25})
        model.compile("rmsprop", loss, metrics=["accuracy"])
        model.optimizer.build(model.trainable_weights)
        plan = P.make_plan(model)
        fused = impl.FusedPlan(plan.entries, plan.optimizer, plan.loss_kind, plan.metrics,
                               32, plan.n_features, plan.n_outputs, True, True, False)
        sums = np.zeros(4)
        order = np.arange(len(y), dtype=np.intp)[::-1].copy()
        done = impl.run_steps(fused, x.astype(np.float64), y.astype(np.int32), None, None,
                              order, 1, 3, 32, 0, sums, 0)
        results.append((done, sums, model.get_weights(), fused.dropout_steps()))
    (d1, s1, w1, k1), (d2, s2, w2, k2) = results
    assert d1 == d2 == 3 and k1 == k2
    np.testing.assert_allclose(s2, s1, rtol=1e-12)
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


def test_plan_falls_back_with_a_reason_for_nine_metrics():
    x, y = _data()
    model, loss = _model({})
    model.compile("adam", loss, metrics=["accuracy"] * 9)
    assert "9 metrics" in P.explain(model)
    h = model.fit(x, y, epochs=1, verbose=0)
    assert model._last_route.route == "per-batch"
    assert "9 metrics" in model._last_route.reason
    assert len(h.history) == 1 + 1            # loss and the (one-named) accuracy
    # the same model with one metric uses the plan
    model.compile("adam", loss, metrics=["accuracy"])
    assert P.explain(model) is None
    model.fit(x, y, epochs=1, verbose=0)
    assert model._last_route.route == "run_steps"


@pytest.mark.parametrize("case", ["clipnorm", "weight_decay", "custom_layer", "mixed_dtype"])
def test_unsupported_models_fall_back_and_train(case):
    x, y = _data()

    class Twice(L.Layer):
        def forward(self, x, training=False):
            return x * 2

        def backward(self, grad):
            return grad * 2

    opt = keras.optimizers.Adam()
    layers = [L.Input(shape=(12,)), L.Dense(8, activation="relu"), L.Dense(4, activation="softmax")]
    if case == "clipnorm":
        opt = keras.optimizers.Adam(clipnorm=1.0)
    elif case == "weight_decay":
        opt = keras.optimizers.Adam(weight_decay=0.01)
    elif case == "custom_layer":
        layers.insert(2, Twice())
    else:
        layers[1] = L.Dense(8, activation="relu", dtype="float64")
    model = keras.Sequential(layers)
    model.compile(opt, "sparse_categorical_crossentropy")
    reason = P.explain(model)
    assert reason
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=1, verbose=0)
    assert model._last_route.route == "per-batch" and model._last_route.reason == reason
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("be", ["cython", "numpy"])
@pytest.mark.parametrize("use_fused", [True, False])
def test_steps_per_epoch_beyond_the_data_runs_what_there_is(be, use_fused):
    """Keras 3: 64 samples in batches of 32 are 2 batches; steps_per_epoch=10
    runs those 2 steps an epoch and warns that the input ran out."""
    backend.set_backend(be)
    x, y = _data(n=64)
    model, loss = _model({})
    model.compile("sgd", loss)
    model.use_fused = use_fused
    with pytest.warns(UserWarning, match="ran out of data"):
        model.fit(x, y, batch_size=32, steps_per_epoch=10, epochs=3, verbose=0)
    assert model.optimizer.iterations == 2 * 3


@pytest.mark.parametrize("be", ["cython", "numpy"])
def test_steps_per_epoch_carries_on_through_the_data(be):
    """Fewer steps than batches: the next epoch continues where the last one
    stopped (Keras 3), so 3 epochs of 2 steps over 6 batches see every
    sample once -- the same weights as one epoch of 6 steps."""
    backend.set_backend(be)
    x, y = _data(n=192)
    weights = []
    for epochs, spe in ((3, 2), (1, None)):
        keras.utils.set_random_seed(2)
        model, loss = _model({})
        model.compile("sgd", loss)
        model.fit(x, y, batch_size=32, steps_per_epoch=spe, epochs=epochs, verbose=0)
        assert model.optimizer.iterations == 6
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        assert np.array_equal(a, b)


def test_recompile_in_a_callback_takes_effect_next_epoch():
    """A callback that recompiles with another optimizer: from the next epoch
    the new optimizer trains (on the plan path as on the per-batch path)."""
    x, y = _data()
    results = []
    for use_fused in (True, False):
        keras.utils.set_random_seed(4)
        model, loss = _model({})
        model.compile(keras.optimizers.SGD(0.0), loss)   # learning rate 0: no change

        class Switch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 0:
                    self.model.compile(keras.optimizers.SGD(0.1), loss)

        model.use_fused = use_fused
        w0 = [w.copy() for w in model.get_weights()]
        h = model.fit(x, y, epochs=2, verbose=0, callbacks=[Switch()])
        changed = [not np.array_equal(a, b) for a, b in zip(w0, model.get_weights())]
        assert any(changed), "the new optimizer never trained"
        assert model.optimizer.learning_rate == 0.1 and model.optimizer.iterations == 7
        results.append((model.get_weights(), h.history["loss"]))
    for a, b in zip(results[0][0], results[1][0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_batch_callbacks_run_the_same_loop_one_step_per_chunk():
    x, y = _data()
    seen = []

    class Every(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((batch, self.model.optimizer.iterations))

    model, loss = _model({})
    model.compile("adam", loss)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[Every()])
    assert model._last_route.route == "run_steps"
    assert seen == [(b, b + 1) for b in range(7)]


def test_model_base_class_refuses_clearly():
    with pytest.raises(TypeError, match="Sequential"):
        keras.Model()

    class Mine(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(TypeError, match="subclassing"):
        Mine()


def test_models_do_not_import_teaching_tools():
    import pathlib
    import nncore.models as models_pkg
    for path in pathlib.Path(models_pkg.__file__).parent.glob("*.py"):
        assert "teaching" not in path.read_text(), path.name


def test_layer_protocol_is_uniform():
    """Every built-in layer takes the protocol's keywords (the model passes
    them to every layer without asking what it is)."""
    import inspect
    for cls in (L.Dense, L.Dropout, L.Flatten, L.Activation, L.InputLayer):
        f = inspect.signature(cls.forward).parameters
        b = inspect.signature(cls.backward).parameters
        assert {"training", "logits"} <= set(f), cls
        assert {"from_logits", "need_input_grad"} <= set(b), cls


def test_old_style_custom_layer_refuses_logits_it_cannot_honour():
    class Old(L.Layer):
        def forward(self, x, training=False):
            return x

        def backward(self, grad):
            return grad

    layer = Old()
    x = np.ones((2, 3), np.float32)
    assert layer.forward(x, training=False, logits=False) is x
    with pytest.raises(TypeError, match="logits=True"):
        layer.forward(x, logits=True)
