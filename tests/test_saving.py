"""nncore.saving: the .npz model format, weights files, configs, and how the
loader treats damaged or hostile files."""
import io
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import nncore
import nncore as keras
from nncore import layers as L
from nncore import saving
from nncore.saving import format as fmt
from nncore.saving import serialization

from conftest import child_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------- helpers
def _data(n=2000):
    (x, y), _ = keras.datasets.fashion_mnist.load_sample()
    return (x[:n].astype("float32") / 255.0), y[:n].astype("int64")


def _mlp(units=32, dropout=0.25, input_shape=(28, 28)):
    return keras.Sequential([keras.Input(shape=input_shape), L.Flatten(),
                             L.Dense(units, activation="relu"), L.Dropout(dropout),
                             L.Dense(10, activation="softmax")])


def _compiled(units=32, optimizer="adam"):
    m = _mlp(units)
    m.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


def _members(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _meta(arrays):
    return json.loads(arrays["metadata"].tobytes().decode())


def _rewrite(src, dst, meta_fn=None, **replace):
    """Copy an nncore file, editing its metadata JSON and/or members."""
    arrays = _members(src)
    if meta_fn is not None:
        meta = _meta(arrays)
        meta_fn(meta)
        arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    arrays.update(replace)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)
    return dst


def _layer_cfgs(meta):
    return meta["model"]["config"]["layers"]


@pytest.fixture
def saved(tmp_path):
    """A trained, compiled model and the path it was saved to."""
    keras.utils.set_random_seed(1)
    x, y = _data(256)
    m = _compiled()
    m.fit(x, y, epochs=1, batch_size=32, verbose=0)
    path = tmp_path / "m.npz"
    m.save(path)
    return m, path, x


# --------------------------------------------------------------- round trips
def test_round_trip_predictions_weights_compile(saved):
    m, path, x = saved
    m2 = nncore.models.load_model(path)
    assert m2 is not m and m2.compiled
    assert [l.name for l in m2.layers] == [l.name for l in m.layers]
    assert m2.input_shape == m.input_shape
    for a, b in zip(m.get_weights(), m2.get_weights()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.array_equal(m.predict(x, verbose=0), m2.predict(x, verbose=0))
    # compile config
    assert type(m2.optimizer) is keras.optimizers.Adam
    assert m2.optimizer.get_config() == m.optimizer.get_config()
    assert type(m2.loss) is type(m.loss) and m2.loss.get_config() == m.loss.get_config()
    assert m2._metric_specs == ["accuracy"]
    # optimizer state and dropout streams
    assert m2.optimizer.iterations == m.optimizer.iterations == 8
    for s1, s2 in zip(m.optimizer.slots, m2.optimizer.slots):
        assert s1.keys() == s2.keys() == {"m", "v"}
        for k in s1:
            assert np.array_equal(s1[k], s2[k])
    d1, d2 = m.layers[2], m2.layers[2]
    assert (d2._stream_seed, d2.step) == (d1._stream_seed, d1.step) and d1.step == 8
    # evaluate works and agrees
    y = np.zeros(len(x), dtype=int)
    assert m.evaluate(x, y, verbose=0) == m2.evaluate(x, y, verbose=0)
    # the top-level alias and compile=False
    m3 = nncore.load_model(str(path), compile=False)
    assert not m3.compiled
    assert np.array_equal(m3.predict(x, verbose=0), m.predict(x, verbose=0))


def test_round_trip_metric_objects_and_other_optimizers(tmp_path):
    m = _mlp(8)
    opt = keras.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True)
    m.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(),
              metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc2"), "accuracy"])
    m.save(tmp_path / "s.npz")
    m2 = keras.models.load_model(tmp_path / "s.npz")
    assert m2.optimizer.get_config() == opt.get_config()
    assert not m2.optimizer.built and m2.optimizer.iterations == 0
    spec = m2._metric_specs[0]
    assert isinstance(spec, keras.metrics.SparseCategoricalAccuracy) and spec.name == "acc2"
    assert m2._metric_specs[1] == "accuracy"


def test_uncompiled_model_round_trip(tmp_path):
    m = _mlp(8)
    m.save(tmp_path / "u.npz")
    m2 = keras.models.load_model(tmp_path / "u.npz")
    assert not m2.compiled
    for a, b in zip(m.get_weights(), m2.get_weights()):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("use_fused", [True, False])
def test_resumed_training_is_exact(tmp_path, use_fused):
    x, y = _data(2000 if use_fused else 600)

    def build():
        m = _compiled(units=64)
        m.use_fused = use_fused
        return m

    keras.utils.set_random_seed(0)
    m = build()
    m.fit(x, y, epochs=2, batch_size=64, verbose=0)
    m.save(tmp_path / "ckpt.npz")
    del m
    resumed = keras.models.load_model(tmp_path / "ckpt.npz")
    resumed.use_fused = use_fused
    resumed.fit(x, y, epochs=2, batch_size=64, verbose=0)

    keras.utils.set_random_seed(0)
    ref = build()
    ref.fit(x, y, epochs=4, batch_size=64, verbose=0)

    assert resumed.optimizer.iterations == ref.optimizer.iterations
    assert resumed.layers[2].step == ref.layers[2].step
    for a, b in zip(ref.get_weights(), resumed.get_weights()):
        assert np.array_equal(a, b)


def test_loading_does_not_consume_global_random_state(saved):
    _, path, _ = saved
    keras.utils.set_random_seed(5)
    expected = nncore.random.generator().integers(0, 2 ** 32, 4)
    keras.utils.set_random_seed(5)
    keras.models.load_model(path)
    assert np.array_equal(nncore.random.generator().integers(0, 2 ** 32, 4), expected)


# --------------------------------------------------------------- weights files
def test_save_and_load_weights(tmp_path):
    a, b = _mlp(16), _mlp(16)
    a.save_weights(tmp_path / "a.weights.npz")
    assert not any(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights())
                   if u.ndim == 2)
    b.load_weights(tmp_path / "a.weights.npz")
    for u, v in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(u, v)
    # a whole-model file also provides weights
    c = _mlp(16)
    a.save(tmp_path / "a.npz")
    c.load_weights(tmp_path / "a.npz")
    assert np.array_equal(c.layers[1].kernel.value, a.layers[1].kernel.value)


def test_load_weights_shape_mismatch_names_layer_and_shapes(tmp_path):
    a, b = _mlp(16), _mlp(24)
    a.save_weights(tmp_path / "a.weights.npz")
    before = b.get_weights()
    with pytest.raises(ValueError) as e:
        b.load_weights(tmp_path / "a.weights.npz")
    msg = str(e.value)
    assert b.layers[1].name in msg and "(784, 24)" in msg and "(784, 16)" in msg
    # nothing was assigned
    for u, v in zip(before, b.get_weights()):
        assert np.array_equal(u, v)


def test_load_weights_other_architecture(tmp_path):
    a = _mlp(16)
    a.save_weights(tmp_path / "a.weights.npz")
    deeper = keras.Sequential([keras.Input(shape=(28, 28)), L.Flatten(),
                               L.Dense(16, activation="relu"), L.Dense(16),
                               L.Dense(10, activation="softmax")])
    with pytest.raises(ValueError, match="different architecture"):
        deeper.load_weights(tmp_path / "a.weights.npz")
    # same number of layers, a layer without bias: number of arrays differs
    nobias = keras.Sequential([keras.Input(shape=(28, 28)), L.Flatten(),
                               L.Dense(16, use_bias=False), L.Dense(10)])
    with pytest.raises(ValueError, match=nobias.layers[1].name):
        nobias.load_weights(tmp_path / "a.weights.npz")


def test_filename_suffixes(tmp_path):
    m = _mlp(4)
    # .keras / .weights.h5 are Keras formats (tests/test_keras_files.py);
    # legacy .h5 is read but not written
    with pytest.raises(ValueError, match=r"\.keras"):
        m.save(tmp_path / "m.h5")
    with pytest.raises(ValueError, match="save_weights"):
        m.save(tmp_path / "m.weights.npz")
    with pytest.raises(ValueError, match=r"\.weights\.npz"):
        m.save_weights(tmp_path / "m.npz")
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        m.save_weights(tmp_path / "m.keras")
    with pytest.raises(ValueError, match=r"\.npz"):
        m.save(tmp_path / "m.txt")
    with pytest.raises(FileNotFoundError):
        keras.models.load_model(tmp_path / "m.keras")
    assert os.listdir(tmp_path) == []
    m.save(tmp_path / "m.npz")
    with pytest.raises(FileExistsError):
        m.save(tmp_path / "m.npz", overwrite=False)
    m.save_weights(tmp_path / "m.weights.npz")
    with pytest.raises(ValueError, match="load_weights"):
        keras.models.load_model(tmp_path / "m.weights.npz")


def test_missing_keras_file_is_missing_even_without_h5py(tmp_path, monkeypatch):
    """A .keras path that does not exist is a FileNotFoundError, not a request
    to install h5py (which would not help)."""
    monkeypatch.setitem(sys.modules, "h5py", None)        # as if not installed
    for name in ("gone.keras", "gone.h5"):
        with pytest.raises(FileNotFoundError, match=name):
            keras.models.load_model(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="gone.weights.h5"):
        _mlp(4).load_weights(tmp_path / "gone.weights.h5")
    with pytest.raises(ImportError, match="pip install h5py"):
        _mlp(4).save(tmp_path / "m.keras")                 # writing does need it


# --------------------------------------------------------------- bad files
def test_unknown_format_version(saved, tmp_path):
    _, path, _ = saved
    bad = _rewrite(path, tmp_path / "v99.npz", format_version=np.array(99, dtype=np.int64))
    with pytest.raises(ValueError, match="format version 99"):
        keras.models.load_model(bad)


def test_unknown_layer_class(saved, tmp_path):
    _, path, _ = saved

    def edit(meta):
        _layer_cfgs(meta)[1]["class_name"] = "os.system"
    bad = _rewrite(path, tmp_path / "cls.npz", edit)
    with pytest.raises(ValueError, match="unknown layer class 'os.system'"):
        keras.models.load_model(bad)


class Scale(L.Layer):
    """A custom layer: multiplies by a constant."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = float(factor)

    def forward(self, x, training=False):
        return x * self.factor

    def backward(self, grad):
        return grad * self.factor

    def get_config(self):
        c = super().get_config()
        c["factor"] = self.factor
        return c


def test_custom_objects_and_register(tmp_path):
    m = keras.Sequential([keras.Input(shape=(4,)), L.Dense(3), Scale(3.0)])
    x = np.random.default_rng(0).random((5, 4)).astype("float32")
    m.save(tmp_path / "c.npz")
    with pytest.raises(ValueError, match="custom_objects"):
        keras.models.load_model(tmp_path / "c.npz")
    with pytest.raises(ValueError, match="subclass"):
        keras.models.load_model(tmp_path / "c.npz", custom_objects={"Scale": dict})
    m2 = keras.models.load_model(tmp_path / "c.npz", custom_objects={"Scale": Scale})
    assert isinstance(m2.layers[1], Scale) and m2.layers[1].factor == 3.0
    assert np.array_equal(m.predict(x, verbose=0), m2.predict(x, verbose=0))
    try:
        saving.register(Scale)
        m3 = keras.models.load_model(tmp_path / "c.npz")
        assert isinstance(m3.layers[1], Scale)
        m4 = keras.models.model_from_json(m.to_json())
        assert isinstance(m4.layers[1], Scale)
    finally:
        serialization._REGISTRY.pop("Scale", None)
        serialization._NAMES.pop(Scale, None)


def test_pickled_object_array_rejected(tmp_path):
    path = tmp_path / "evil.npz"
    with open(path, "wb") as f:
        np.savez(f, a=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="object"):
        keras.models.load_model(path)
    with pytest.raises(ValueError):
        _mlp(4).load_weights(path)


def test_pickled_member_in_a_valid_file_rejected(saved, tmp_path):
    _, path, _ = saved
    bad = _rewrite(path, tmp_path / "evil2.npz", w0=np.array([object()], dtype=object))
    with pytest.raises(ValueError):
        keras.models.load_model(bad)


def test_non_zip_and_truncated_files(saved, tmp_path):
    _, path, _ = saved
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip archive\n" * 100)
    with pytest.raises(ValueError, match="not a valid nncore"):
        keras.models.load_model(junk)
    data = path.read_bytes()
    half = tmp_path / "half.npz"
    half.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError):
        keras.models.load_model(half)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(ValueError):
        keras.models.load_model(empty)
    # a plain .npz that nncore did not write
    other = tmp_path / "other.npz"
    with open(other, "wb") as f:
        np.savez(f, a=np.zeros(3))
    with pytest.raises(ValueError, match="not one written by nncore"):
        keras.models.load_model(other)
    with pytest.raises(FileNotFoundError):
        keras.models.load_model(tmp_path / "missing.npz")


def test_corrupted_bytes_rejected(saved, tmp_path):
    """Flipped bytes are either refused with a ValueError or -- when they fell
    inside a weight's values, which no check can tell from real ones -- load
    as the same architecture with the same weight shapes; nothing else."""
    model, path, _ = saved
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(3)
    refused = 0
    shapes = [w.shape for w in model.get_weights()]
    for trial in range(20):
        bad = bytearray(data)
        for pos in rng.integers(0, len(bad), 8):
            bad[pos] ^= 0xFF
        p = tmp_path / f"c{trial}.npz"
        p.write_bytes(bytes(bad))
        try:
            loaded = keras.models.load_model(p)
        except ValueError:
            refused += 1        # the only acceptable failure
            continue
        assert loaded.get_config() == model.get_config()
        assert [w.shape for w in loaded.get_weights()] == shapes
    assert refused > 0, "no corruption was detected in 20 tries"


def test_lying_npy_header_rejected(saved, tmp_path):
    """A member whose header claims 10**12 floats must not be allocated."""
    _, path, _ = saved
    arrays = _members(path)
    bad = tmp_path / "lie.npz"
    with zipfile.ZipFile(bad, "w") as z:
        for k, v in arrays.items():
            buf = io.BytesIO()
            if k == "w0":
                np.lib.format.write_array_header_1_0(
                    buf, {"descr": "<f4", "fortran_order": False, "shape": (10 ** 12,)})
                buf.write(b"\0" * 64)
            else:
                np.lib.format.write_array(buf, v, allow_pickle=False)
            z.writestr(k + ".npy", buf.getvalue())
    with pytest.raises(ValueError, match="declares shape"):
        keras.models.load_model(bad)


def test_hostile_configs_rejected(saved, tmp_path):
    _, path, _ = saved
    edits = {
        "huge_units": lambda m: _layer_cfgs(m)[1]["config"].update(units=2 ** 40),
        "units_beyond_file": lambda m: _layer_cfgs(m)[1]["config"].update(units=100_000),
        "huge_input": lambda m: m["model"]["config"].update(input_shape=[2 ** 30, 2 ** 30]),
        "bad_units_type": lambda m: _layer_cfgs(m)[1]["config"].update(units="32"),
        "bool_units": lambda m: _layer_cfgs(m)[1]["config"].update(units=True),
        "negative_shape": lambda m: m["model"]["config"].update(input_shape=[-1, 28]),
        "layers_not_list": lambda m: m["model"]["config"].update(layers="abc"),
        "layer_not_object": lambda m: _layer_cfgs(m).__setitem__(0, 5),
        "bad_dtype": lambda m: _layer_cfgs(m)[1]["config"].update(dtype="object"),
        "unknown_kwarg": lambda m: _layer_cfgs(m)[1]["config"].update(evil=1),
        "bad_init": lambda m: _layer_cfgs(m)[1]["config"].update(
            kernel_initializer={"class_name": "builtins.eval", "config": {}}),
        "bad_rate": lambda m: _layer_cfgs(m)[2]["config"].update(rate=[1]),
        "model_class": lambda m: m["model"].update(class_name="Functional"),
        "metadata_list": lambda m: m.update(model=[]),
        "bad_seed": lambda m: m["layer_state"][0].update(stream_seed=-5),
        "bad_step": lambda m: m["layer_state"][0].update(step="x"),
        "seed_wrong_layer": lambda m: m["layer_state"][0].update(layer=1),
        "bad_iterations": lambda m: m["optimizer_state"].update(iterations=-1),
        "bad_slot_names": lambda m: m["optimizer_state"]["variables"][0].update(
            slots={"m": "o0_0"}),
        "slot_wrong_weight": lambda m: m["optimizer_state"]["variables"][0].update(
            weight=[7, 0]),
        "unknown_optimizer": lambda m: m["compile"]["optimizer"].update(class_name="Evil"),
        "unknown_loss": lambda m: m["compile"].update(loss={"class_name": "Evil"}),
        "missing_member": lambda m: m["weights"][1]["arrays"][0].update(key="w99"),
        "kind": lambda m: m.update(kind="something"),
    }
    for name, edit in edits.items():
        bad = _rewrite(path, tmp_path / f"{name}.npz", edit)
        with pytest.raises(ValueError):
            keras.models.load_model(bad)
            pytest.fail(name)
    # arrays of the wrong dtype / shape
    for name, repl in {"int_weights": {"w0": np.zeros((784, 32), np.int64)},
                       "wrong_shape": {"w0": np.zeros((784, 31), np.float32)},
                       "float64": {"w0": np.zeros((784, 32), np.float64)},
                       "slot_shape": {"o0_0": np.zeros(3, np.float32)},
                       "metadata_dtype": {"metadata": np.zeros(3, np.float32)},
                       "version_dtype": {"format_version": np.array(1.0)}}.items():
        bad = _rewrite(path, tmp_path / f"{name}.npz", **repl)
        with pytest.raises(ValueError):
            keras.models.load_model(bad)
    # metadata that is not JSON
    bad = _rewrite(path, tmp_path / "notjson.npz",
                   metadata=np.frombuffer(b"{not json", np.uint8))
    with pytest.raises(ValueError, match="JSON"):
        keras.models.load_model(bad)
    deep = ("[" * 100000) + ("]" * 100000)
    bad = _rewrite(path, tmp_path / "deep.npz", metadata=np.frombuffer(deep.encode(), np.uint8))
    with pytest.raises(ValueError):
        keras.models.load_model(bad)


def test_model_from_json_rejects_huge_models():
    cfg = json.loads(_mlp(4).to_json())
    cfg["config"]["layers"][1]["config"]["units"] = 2 ** 31
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="parameters"):
        keras.models.model_from_json(json.dumps(cfg))
    assert time.perf_counter() - t0 < 1
    with pytest.raises(ValueError):
        keras.models.model_from_json("[1, 2")
    with pytest.raises(ValueError):
        keras.models.model_from_json('{"class_name": "Sequential", "config": {"layers": '
                                     '[{"class_name": "Dense", "config": {"units": NaN}}]}}')


# --------------------------------------------------------------- atomic writes
def test_atomic_write_keeps_previous_file(saved, tmp_path, monkeypatch):
    m, path, x = saved
    before = path.read_bytes()
    expected = m.predict(x, verbose=0)
    m.layers[1].kernel.value[...] += 1.0          # the next save would differ

    def broken(fileobj, arrays):
        fileobj.write(b"PK\x03\x04 partial data" * 1000)
        raise RuntimeError("disk full (simulated)")
    monkeypatch.setattr(fmt, "_write_arrays", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        m.save(path)
    with pytest.raises(RuntimeError, match="simulated"):
        m.save_weights(tmp_path / "w.weights.npz")
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]     # no temp files left
    assert path.read_bytes() == before
    monkeypatch.undo()
    m2 = keras.models.load_model(path)
    assert np.array_equal(m2.predict(x, verbose=0), expected)


_SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    import nncore as keras
    path = sys.argv[1]
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input(shape=(784,)),
                          keras.layers.Dense(512, activation="relu"),
                          keras.layers.Dropout(0.2),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.train_on_batch(np.zeros((4, 784), np.float32), np.zeros(4, int))
    i = 0
    while True:
        m.layers[0].bias.value[0] = i          # each save differs
        m.save(path)
        if i == 0:
            print("ready", flush=True)
        i += 1
""")


def test_sigkill_during_saves_never_leaves_a_broken_file(tmp_path):
    script = tmp_path / "saver.py"
    script.write_text(_SAVER)
    path = tmp_path / "loop.npz"
    env = child_env()
    rng = random.Random(1234)
    seen = set()
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            assert line.strip() == "ready", proc.stderr.read()
            time.sleep(rng.uniform(0.02, 0.4))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            proc.stdout.close()
            proc.stderr.close()
        m = keras.models.load_model(path)        # the old or the new file, never broken
        assert m.optimizer.iterations == 1
        seen.add(float(m.layers[0].bias.value[0]))
    assert len(seen) >= 2 or max(seen) > 0


# --------------------------------------------------------------- configs
def test_layer_optimizer_loss_configs_round_trip():
    objs = [L.Dense(5, activation="tanh", use_bias=False, kernel_initializer="he_normal",
                    kernel_regularizer=keras.regularizers.L2(0.01), name="d"),
            L.Dropout(0.3, seed=7), L.Flatten(), L.Activation("softmax"),
            L.InputLayer(shape=(3, 4))]
    for layer in objs:
        again = type(layer).from_config(layer.get_config())
        assert again.get_config() == layer.get_config()
    for opt in [keras.optimizers.Adam(0.01, amsgrad=True, clipnorm=1.0),
                keras.optimizers.SGD(0.1, momentum=0.5), keras.optimizers.RMSprop(centered=True),
                keras.optimizers.Adagrad(initial_accumulator_value=0.2)]:
        again = type(opt).from_config(opt.get_config())
        assert again.get_config() == opt.get_config()
    for loss in [keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                 keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                 keras.losses.BinaryCrossentropy(), keras.losses.MeanSquaredError()]:
        again = type(loss).from_config(loss.get_config())
        assert again.get_config() == loss.get_config()


def test_to_json_and_model_from_json():
    m = keras.Sequential([keras.Input(shape=(6,)),
                          L.Dense(5, activation="relu", kernel_regularizer="l2"),
                          L.Dropout(0.1), L.Dense(2, activation="sigmoid")])
    text = m.to_json()
    cfg = json.loads(text)
    assert cfg["class_name"] == "Sequential"
    assert cfg["config"]["input_shape"] == [6]
    assert [l["class_name"] for l in cfg["config"]["layers"]] == ["Dense", "Dropout", "Dense"]
    m2 = keras.models.model_from_json(text)
    assert m2.to_json() == text
    assert [w.shape for w in m2.weights] == [w.shape for w in m.weights]
    assert m2.layers[0].kernel_regularizer.l2 == m.layers[0].kernel_regularizer.l2
    # Sequential.from_config on get_config()
    m3 = keras.Sequential.from_config(m.get_config())
    assert [l.name for l in m3.layers] == [l.name for l in m.layers]
    assert m3.input_shape == (None, 6)


def test_clone_model():
    keras.utils.set_random_seed(3)
    m = _mlp(12)
    c = keras.models.clone_model(m)
    assert type(c) is keras.Sequential and c.input_shape == m.input_shape
    assert [type(l) for l in c.layers] == [type(l) for l in m.layers]
    assert not {l.name for l in c.layers} & {l.name for l in m.layers}
    assert [w.shape for w in c.weights] == [w.shape for w in m.weights]
    # freshly initialised, not copied
    assert not np.array_equal(c.layers[1].kernel.value, m.layers[1].kernel.value)
    assert c.layers[1].activation == "relu" and c.layers[2].rate == 0.25
    c.layers[1].kernel.value[...] = 0
    assert np.any(m.layers[1].kernel.value != 0)
