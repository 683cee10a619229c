"""The layer-kind contract (nncore/layers/layer.py): a new layer kind lives in
its own module -- here, in this test file -- and nothing else changes.

``ScaleShift`` (a per-feature ``y = x * gamma + beta``, two weights of shape
(n,)) is written the new way: its class, Keras name and converter, parameter
count, teaching description and plan entry.  Without touching any other
module it trains on both backends and in the compiled loop, saves and loads
as ``.npz`` and ``.keras``, counts in ``summary()`` and shows in ``trace``.

Also: the defects the contract removed (a Dropout subclass's step counter,
a short-protocol weighted layer placed first, registry coverage).
"""
import numpy as np
import pytest

import nncore as keras
from nncore import backend, initializers
from nncore.layers.layer import LAYER_KINDS
from nncore.layers.plan_entry import PlanEntry


class ScaleShift(keras.layers.Layer):
    """Per-feature scale and shift: ``y = x * gamma + beta``.

    gamma (ones) and beta (zeros) have one entry per feature.  Backward:
    ``dgamma = sum_batch g * x``, ``dbeta = sum_batch g``, ``dx = g * gamma``.
    """
    keras_name = "ScaleShift"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.gamma = self.beta = None

    def weight_shapes(self, input_shape):
        return [(input_shape[-1],), (input_shape[-1],)]

    def build(self, input_shape):
        n = input_shape[-1]
        self.gamma = self.add_weight("gamma", (n,), initializers.get("ones"))
        self.beta = self.add_weight("beta", (n,), initializers.get("zeros"))
        super().build(input_shape)

    def forward(self, x, training=False, logits=False):
        x = self._in_dtype(x)
        self._state.x = x
        return x * self.gamma.value + self.beta.value

    def backward(self, grad, from_logits=False, need_input_grad=True):
        x = self._state.x
        np.sum(grad * x, axis=0, out=self.grads[0])
        np.sum(grad, axis=0, out=self.grads[1])
        return grad * self.gamma.value if need_input_grad else None

    def plan_entry(self, ctx):
        return PlanEntry.run_layer(self, ctx)

    def describe(self, step):
        return ("a = x * gamma + beta",
                "dgamma = sum_batch g*x; dbeta = sum_batch g; dx = g*gamma")

    @classmethod
    def from_keras(cls, c, what):
        from nncore.saving import keras_layers as KL
        return KL.common(c, what)

    def to_keras(self):
        from nncore.saving import keras_layers as KL
        return KL.common_keras(self)


def _data(n=192, d=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] * 2 + x[:, 1] > 0).astype(np.int32) + (x[:, 2] > 1)
    return x, y


def _model(first=False, seed=3):
    keras.utils.set_random_seed(seed)
    if first:
        layers = [keras.Input(shape=(8,)), ScaleShift(), keras.layers.Dense(3, "softmax")]
    else:
        layers = [keras.Input(shape=(8,)), keras.layers.Dense(16, "relu"), ScaleShift(),
                  keras.layers.Dense(3, "softmax")]
    m = keras.Sequential(layers)
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _fit(model, fused=True, epochs=2):
    x, y = _data()
    model.use_fused = fused
    h = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, shuffle=False)
    return h.history["loss"], model.get_weights()


def test_scale_shift_is_registered_by_its_module_alone():
    assert LAYER_KINDS["ScaleShift"] is ScaleShift
    from nncore.saving import keras_layers as KL
    assert "ScaleShift" in KL.CONVERTERS
    assert KL.kind_of_layer(ScaleShift()).nn_class is ScaleShift


@pytest.mark.parametrize("first", [False, True], ids=["middle", "first"])
@pytest.mark.parametrize("backend_name", ["cython", "numpy"])
def test_trains_in_the_compiled_loop_as_on_the_per_batch_path(first, backend_name):
    backend.set_backend(backend_name)
    loop = _model(first)
    loss_loop, w_loop = _fit(loop, fused=True)
    route = loop._last_route
    assert route.route == "run_steps", route.reason
    assert route.kernel_module == ("nncore._ext.training" if backend_name == "cython"
                                   else "nncore.ops.training")
    per_batch = _model(first)
    loss_pb, w_pb = _fit(per_batch, fused=False)
    assert per_batch._last_route.route == "per-batch"
    # the same steps: the loop runs the layer's own forward/backward and
    # updates its two parameters with the optimizer's kernel
    for a, b in zip(w_loop, w_pb):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(loss_loop, loss_pb, rtol=1e-6)
    # and it learned: gamma and beta moved away from their initial values
    gamma, beta = w_loop[0:2] if first else w_loop[2:4]
    assert np.abs(gamma - 1).max() > 1e-3 and np.abs(beta).max() > 1e-3


def test_regularized_parameters_of_a_new_kind_follow_the_param_list():
    """A regularizer on a run_layer entry's parameter: the loop's penalty and
    its gradient come from the Param, the same as the per-batch path's."""
    class RegScaleShift(ScaleShift):
        keras_name = "RegScaleShift"

        def regularization(self, add_grads):
            reg = keras.regularizers.l2(0.01)
            g = self.grads[0].reshape(-1) if add_grads else None
            return backend.kernels().l1_l2_penalty_and_grad(
                self.gamma.value.reshape(-1), g, reg.l1, reg.l2)

        def plan_entry(self, ctx):
            return PlanEntry.run_layer(self, ctx, [keras.regularizers.l2(0.01), None])

    def build():
        keras.utils.set_random_seed(4)
        m = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(6, "tanh"),
                              RegScaleShift(), keras.layers.Dense(3, "softmax")])
        m.compile("sgd", "sparse_categorical_crossentropy")
        return m
    a, b = build(), build()
    la, wa = _fit(a, fused=True)
    lb, wb = _fit(b, fused=False)
    assert a._last_route.route == "run_steps"
    for u, v in zip(wa, wb):
        np.testing.assert_allclose(u, v, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(la, lb, rtol=1e-6)


def test_a_failing_layer_in_the_loop_raises_and_keeps_its_weights():
    class Broken(ScaleShift):
        keras_name = None

        def backward(self, grad, from_logits=False, need_input_grad=True):
            raise RuntimeError("broken backward")
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input(shape=(8,)), Broken(), keras.layers.Dense(3, "softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    before = m.get_weights()
    x, y = _data()
    with pytest.raises(RuntimeError, match="broken backward"):
        m.fit(x, y, epochs=1, batch_size=32, verbose=0)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("suffix", [".npz", ".keras"])
def test_saves_and_loads(tmp_path, suffix):
    if suffix == ".keras":
        pytest.importorskip("h5py", reason="Keras files need h5py")
    m = _model()
    _fit(m, epochs=1)
    x, _ = _data(32, seed=5)
    path = tmp_path / f"m{suffix}"
    m.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[1], ScaleShift)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))


def test_counts_its_parameters_in_summary_and_in_the_loader_cap():
    m = _model()
    assert m.layers[1].count_params() == 32
    assert m.count_params() == 8 * 16 + 16 + 32 + 16 * 3 + 3
    from nncore.saving.serialization import _count_params
    assert _count_params(m.layers, (8,)) == m.count_params()
    lines = []
    m.summary(print_fn=lines.append)
    assert any("ScaleShift" in ln and "32" in ln for ln in "\n".join(lines).splitlines())


def test_shows_in_trace():
    m = _model()
    x, y = _data(16)
    rec = keras.utils.trace(m, x, y)
    lt = rec.layers[1]
    assert lt.forward_formula == "a = x * gamma + beta"
    assert lt.backward_formula.startswith("dgamma = sum_batch g*x")


# --------------------------------------------------------------- defects fixed
def test_dropout_subclass_draws_new_masks_on_each_fit():
    """The loop hands its step counter back to every entry that has one, not
    to layers found by class name: a Dropout subclass counts too."""
    class MyDropout(keras.layers.Dropout):
        pass
    keras.utils.set_random_seed(2)
    drop = MyDropout(0.5)
    m = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(16, "relu"), drop,
                          keras.layers.Dense(3, "softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    x, y = _data()
    m.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert m._last_route.route == "run_steps"
    assert drop.step == len(x) // 32


def test_short_protocol_weighted_layer_first():
    """A layer written to the short protocol (backward(self, grad)) placed
    first gets need_input_grad=False from the model; it may ignore it."""
    class Scale(keras.layers.Layer):
        """y = x * w (per feature), written to the short protocol."""
        def build(self, input_shape):
            self.w = self.add_weight("w", (input_shape[-1],), initializers.get("ones"))
            super().build(input_shape)

        def forward(self, x, training=False):
            self._state.x = x
            return x * self.w.value

        def backward(self, grad):
            self.grads[0][...] = (grad * self._state.x).sum(axis=0)
            return grad * self.w.value
    keras.utils.set_random_seed(0)
    layer = Scale()
    m = keras.Sequential([keras.Input(shape=(8,)), layer, keras.layers.Dense(3, "softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    x, y = _data()
    m.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.abs(layer.w.value - 1).max() > 0


def test_every_builtin_kind_is_registered_with_its_contract():
    for name in ("Dense", "Dropout", "Flatten", "Activation", "InputLayer", "Conv2D",
                 "MaxPooling2D", "AveragePooling2D"):
        cls = LAYER_KINDS[name]
        assert cls.__name__ == name and cls.__dict__.get("__doc__")
    # the parameter counts come from each kind, before anything is built
    conv = keras.layers.Conv2D(32, 3)
    assert conv.weight_shapes((None, 28, 28, 1)) == [(3, 3, 1, 32), (32,)]
    assert keras.layers.MaxPooling2D().weight_shapes((None, 28, 28, 32)) == []
