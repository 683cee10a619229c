"""Keras's files (.keras, .weights.h5, legacy .h5): TensorFlow-made fixtures
load with TensorFlow's predictions, nncore's files round-trip exactly, and
hostile files are refused before anything is built or run.

The fixtures in tests/fixtures/keras/ were written by TensorFlow 2.21
(Keras 3.15) and tf_keras 2.21 with make_keras_fixtures.py there;
TensorFlow is not needed here.  The reverse direction (TensorFlow loading
nncore's files) is checked by tests/tf_check_nncore_keras.py.
"""
import io
import json
import os
import subprocess
import sys
import textwrap
import warnings
import zipfile

import numpy as np
import pytest

h5py = pytest.importorskip("h5py", reason="h5py (the 'keras' extra) is not installed")

import nncore as keras  # noqa: E402
from nncore.saving import FormatError  # noqa: E402

L = keras.layers
HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures", "keras")
PRED = np.load(os.path.join(FIX, "predictions.npz"))


def fx(name):
    return os.path.join(FIX, name)


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------- TF-made files
@pytest.mark.parametrize("name,x,pred", [
    ("dense_adam.keras", "adam_x", "adam_pred"),
    ("dense_rmsprop.keras", "rms_x", "rms_pred"),
    ("dense_amsgrad.keras", "adam_x", "ams_pred"),
    ("dense_k3_legacy.h5", "adam_x", "adam_pred"),
    ("dense_tfkeras.h5", "k2_x", "k2_pred"),
])
def test_tf_made_models_predict_as_tensorflow(name, x, pred):
    model = keras.models.load_model(fx(name))
    close(model.predict(PRED[x], verbose=0), PRED[pred])
    assert model.compiled


def test_tf_made_compile_config_restored():
    m = keras.models.load_model(fx("dense_rmsprop.keras"))
    opt = m.optimizer
    assert type(opt).__name__ == "RMSprop"
    assert (opt.momentum, opt.centered, opt.rho) == (0.5, True, 0.9)
    assert opt.learning_rate == pytest.approx(0.01, rel=1e-6)
    assert type(m.loss).__name__ == "BinaryCrossentropy"
    assert opt.iterations == 6              # 24 samples / batch 8 * 2 epochs
    a = keras.models.load_model(fx("dense_adam.keras"))
    assert type(a.optimizer).__name__ == "Adam" and a.optimizer.iterations == 8
    assert [l.name for l in a.layers] == ["flatten", "dense", "dropout", "activation", "dense_1"]
    assert a.layers[3].activation == "tanh" and a.layers[2].rate == 0.25
    k2 = keras.models.load_model(fx("dense_tfkeras.h5"))     # Keras 2 "Custom>Adam"
    assert type(k2.optimizer).__name__ == "Adam" and k2.optimizer.iterations == 0
    assert "accuracy" in k2.evaluate(PRED["k2_x"], np.zeros(12, int), verbose=0,
                                     return_dict=True)


@pytest.mark.parametrize("name,x,y,before,after", [
    ("dense_rmsprop.keras", "rms_x", "rms_y", "rms_pred", "rms_pred_after"),
    ("dense_amsgrad.keras", "adam_x", "adam_y", "ams_pred", "ams_pred_after"),
])
def test_tf_optimizer_state_resumes_as_in_tensorflow(name, x, y, before, after):
    """One more epoch in nncore from TF's saved optimizer state equals TF's
    own continuation; a fresh optimizer does not (so the state was used)."""
    m = keras.models.load_model(fx(name))
    m.fit(PRED[x], PRED[y], epochs=1, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(m.predict(PRED[x], verbose=0), PRED[after], atol=5e-6)
    fresh = keras.models.load_model(fx(name))
    fresh.compile(optimizer=type(fresh.optimizer).from_config(fresh.optimizer.get_config()),
                  loss=fresh.loss)
    fresh.fit(PRED[x], PRED[y], epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert np.abs(fresh.predict(PRED[x], verbose=0) - PRED[after]).max() > 1e-3


def test_tf_made_weights_files():
    s = keras.Sequential([keras.Input(shape=(7,)), L.Dense(4, activation="relu"), L.Dense(3)])
    s.load_weights(fx("dense_sgd.weights.h5"))      # Keras 3 layout, by position
    close(s.predict(PRED["sgd_x"], verbose=0), PRED["sgd_pred"])
    k2 = keras.Sequential([keras.Input(shape=(6,)), L.Dense(5, activation="sigmoid"),
                           L.Dropout(0.2), L.Dense(3, activation="softmax")])
    k2.load_weights(fx("dense_tfkeras_weights.h5"))  # Keras 2 layout
    close(k2.predict(PRED["k2_x"], verbose=0), PRED["k2_pred"])
    k2.set_weights([np.zeros_like(w) for w in k2.get_weights()])
    k2.load_weights(fx("dense_tfkeras.h5"))           # weights of a whole-model file
    close(k2.predict(PRED["k2_x"], verbose=0), PRED["k2_pred"])
    a = keras.Sequential([keras.Input(shape=(3, 4)), L.Flatten(), L.Dense(6, activation="relu"),
                          L.Dropout(0.25), L.Activation("tanh"),
                          L.Dense(3, activation="softmax")])
    a.load_weights(fx("dense_adam.keras"))            # weights out of a .keras archive
    close(a.predict(PRED["adam_x"], verbose=0), PRED["adam_pred"])
    wrong = keras.Sequential([keras.Input(shape=(7,)), L.Dense(5), L.Dense(3)])
    with pytest.raises(ValueError, match="shape"):
        wrong.load_weights(fx("dense_sgd.weights.h5"))


def test_cnn_fixture_loads_or_names_every_missing_layer():
    if all(hasattr(L, n) for n in ("Conv2D", "MaxPooling2D", "AveragePooling2D")):
        m = keras.models.load_model(fx("cnn.keras"))
        close(m.predict(PRED["cnn_x"], verbose=0), PRED["cnn_pred"])
    else:
        with pytest.raises(FormatError) as e:
            keras.models.load_model(fx("cnn.keras"))
        for name in ("'conv2d'", "'max_pooling2d'", "'conv2d_1'", "'average_pooling2d'"):
            assert name in str(e.value)


# --------------------------------------------------------------- nncore's own files
def _data(n=48):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3, 4)).astype("float32"), rng.integers(0, 3, n)


def _model(opt, dropout=0.3):
    m = keras.Sequential([keras.Input(shape=(3, 4)), L.Flatten(),
                          L.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-3)),
                          L.Dropout(dropout), L.Dense(3, activation="softmax")])
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


@pytest.mark.parametrize("make_opt", [
    lambda: keras.optimizers.Adam(0.01),
    lambda: keras.optimizers.Adam(0.01, amsgrad=True),
    lambda: keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
    lambda: keras.optimizers.Adagrad(0.1),
], ids=["adam", "amsgrad", "rmsprop", "sgd", "adagrad"])
def test_keras_round_trip_resumes_bitwise(tmp_path, make_opt):
    """nncore -> .keras -> nncore: 2 + 2 epochs equal 4, bit for bit (Dropout too)."""
    x, y = _data()
    keras.utils.set_random_seed(5)
    full = _model(make_opt())
    keras.utils.set_random_seed(9)
    full.fit(x, y, epochs=4, batch_size=16, verbose=0)
    keras.utils.set_random_seed(5)
    half = _model(make_opt())
    keras.utils.set_random_seed(9)
    half.fit(x, y, epochs=2, batch_size=16, verbose=0)
    half.save(tmp_path / "m.keras")
    resumed = keras.models.load_model(tmp_path / "m.keras")
    assert resumed.optimizer.get_config() == half.optimizer.get_config()
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=16, verbose=0)
    for a, b in zip(full.get_weights(), resumed.get_weights()):
        assert np.array_equal(a, b)


def test_keras_file_layout(tmp_path):
    x, y = _data()
    m = _model(keras.optimizers.Adam())
    m.fit(x, y, epochs=1, verbose=0)
    m.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        assert {"config.json", "metadata.json", "model.weights.h5"} <= set(zf.namelist())
        cfg = json.loads(zf.read("config.json"))
        data = zf.read("model.weights.h5")
    assert cfg["class_name"] == "Sequential"
    assert [l["class_name"] for l in cfg["config"]["layers"]] == \
        ["InputLayer", "Flatten", "Dense", "Dropout", "Dense"]
    assert cfg["compile_config"]["optimizer"]["class_name"] == "Adam"
    with h5py.File(io.BytesIO(data), "r") as f:
        assert f["layers/dense/vars/0"].shape == (12, 8)
        assert f["layers/dense_1/vars/1"].shape == (3,)
        assert len(f["optimizer/vars"]) == 2 + 2 * 4       # iterations, lr, m/v x 4
        assert int(f["optimizer/vars/0"][()]) == m.optimizer.iterations


def test_weights_h5_round_trip_and_other_names(tmp_path):
    x, _ = _data(5)
    a = _model("adam")
    a.save_weights(tmp_path / "w.weights.h5")
    b = _model("adam")                     # same kinds, new auto-generated names
    assert [l.name for l in a.layers] != [l.name for l in b.layers]
    b.load_weights(tmp_path / "w.weights.h5")
    assert np.array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))


def test_uncompiled_and_compile_false(tmp_path):
    x, _ = _data(4)
    m = keras.Sequential([keras.Input(shape=(3, 4)), L.Flatten(), L.Dense(2)])
    m.save(tmp_path / "u.keras")
    u = keras.models.load_model(tmp_path / "u.keras")
    assert not u.compiled
    assert np.array_equal(u.predict(x, verbose=0), m.predict(x, verbose=0))
    c = keras.models.load_model(fx("dense_adam.keras"), compile=False)
    assert not c.compiled


def test_model_checkpoint_keras_and_weights_h5(tmp_path):
    x, y = _data()
    m = _model("adam", dropout=0.0)
    cb = [keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), save_best_only=True,
                                          monitor="loss"),
          keras.callbacks.ModelCheckpoint(str(tmp_path / "w-{epoch}.weights.h5"),
                                          save_weights_only=True)]
    m.fit(x, y, epochs=2, verbose=0, callbacks=cb)
    best = keras.models.load_model(tmp_path / "best.keras")
    assert best.optimizer.iterations == m.optimizer.iterations
    assert np.array_equal(best.predict(x, verbose=0), m.predict(x, verbose=0))
    w = _model("adam", dropout=0.0)
    w.load_weights(tmp_path / "w-2.weights.h5")
    assert np.array_equal(w.predict(x, verbose=0), m.predict(x, verbose=0))


def test_without_h5py_one_clear_error(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["h5py"] = None           # as if not installed
        import nncore as keras
        m = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
        for call in (lambda: m.save({str(tmp_path / 'a.keras')!r}),
                     lambda: m.save_weights({str(tmp_path / 'a.weights.h5')!r}),
                     lambda: keras.models.load_model({fx('dense_adam.keras')!r}),
                     lambda: m.load_weights({fx('dense_sgd.weights.h5')!r})):
            try:
                call()
            except ImportError as e:
                print("ERR", e)
        m.save({str(tmp_path / 'a.npz')!r})  # the native format needs nothing
        print("npz ok")
    """)
    from conftest import child_env
    out = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True,
                         text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stderr
    assert len([l for l in lines if l.startswith("ERR")]) == 4
    assert all("pip install h5py" in l for l in lines if l.startswith("ERR"))
    assert lines[-1] == "npz ok" and not os.path.exists(tmp_path / "a.keras")


def test_unwritable_layer_or_optimizer_refused(tmp_path):
    class Mine(L.Dense):
        pass
    m = keras.Sequential([keras.Input(shape=(2,)), Mine(1)])
    with pytest.raises(ValueError, match="no\\s+Keras equivalent"):
        m.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match=r"\.keras"):
        m.save(tmp_path / "m.h5")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------- hostile files
def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


def _with_config(tmp_path, edit, src="dense_adam.keras"):
    m = _members(fx(src))
    cfg = json.loads(m["config.json"])
    edit(cfg)
    m["config.json"] = json.dumps(cfg).encode()
    return _write_zip(tmp_path / "x.keras", m)


def _with_h5(tmp_path, edit, src="dense_adam.keras"):
    m = _members(fx(src))
    bio = io.BytesIO(m["model.weights.h5"])
    with h5py.File(bio, "r+") as f:
        edit(f)
    m["model.weights.h5"] = bio.getvalue()
    return _write_zip(tmp_path / "x.keras", m)


def _layer(cfg, i):
    return cfg["config"]["layers"][i]


def _patch_central(path, member, **fields):
    """Rewrite a member's sizes in the zip's central directory (what readers trust)."""
    data = bytearray(open(path, "rb").read())
    offsets = {"compress_size": 20, "file_size": 24}
    pos = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        assert pos >= 0, member
        name_len = int.from_bytes(data[pos + 28:pos + 30], "little")
        if data[pos + 46:pos + 46 + name_len] == member.encode():
            break
        pos += 4
    for key, value in fields.items():
        data[pos + offsets[key]:pos + offsets[key] + 4] = value.to_bytes(4, "little")
    open(path, "wb").write(bytes(data))
    return path


HOSTILE = {
    "lambda layer (TF-made)": (lambda t: fx("lambda.keras"), "Lambda layer"),
    "module outside keras": (lambda t: _with_config(t, lambda c: _layer(c, 2).update(
        module="os.path")), "module 'os.path'"),
    "registered_name elsewhere": (lambda t: _with_config(t, lambda c: _layer(c, 2).update(
        registered_name="evil>Dense")), "registered_name"),
    "__lambda__ in a nested config": (lambda t: _with_config(t, lambda c: _layer(c, 2)[
        "config"].update(activation={"class_name": "__lambda__", "config": {"code": "AAA"}})),
        "'__lambda__'"),
    "Keras 2 style function_type": (lambda t: _with_config(t, lambda c: _layer(c, 4)[
        "config"].update(function=["YQ==", None, None], function_type="lambda")),
        "Python code"),
    "__bytes__ blob (pickle-like)": (lambda t: _with_config(t, lambda c: _layer(c, 3)[
        "config"].update(seed={"class_name": "__bytes__", "config": {"value": "gAS="}})),
        "__bytes__"),
    "initializer from another module": (lambda t: _with_config(t, lambda c: _layer(c, 2)[
        "config"].update(kernel_initializer={"module": "subprocess", "class_name": "Popen",
                                             "config": {}})), "module 'subprocess'"),
    "functional model": (lambda t: _with_config(t, lambda c: c.update(class_name="Functional")),
                         "Sequential models only"),
    "unsupported kinds listed together": (lambda t: _with_config(t, lambda c: (
        _layer(c, 2).update(class_name="BatchNormalization"),
        _layer(c, 4).update(class_name="LSTM"))), r"BatchNormalization 'dense'.*LSTM"),
    "path traversal member": (lambda t: _write_zip(t / "x.keras", {
        **_members(fx("dense_adam.keras")), "../../evil.py": b"x"}), r"'\.\./\.\./evil\.py'"),
    "absolute member name": (lambda t: _write_zip(t / "x.keras", {
        "/etc/cron.d/x": b"x", **_members(fx("dense_adam.keras"))}), "absolute path"),
    "deflate bomb (declared size beyond deflate)": (lambda t: _patch_central(_write_zip(
        t / "x.keras", _members(fx("dense_adam.keras")), zipfile.ZIP_DEFLATED),
        "model.weights.h5", file_size=0xFFFFFF00), "more than deflate can produce"),
    "stored member size lie": (lambda t: _patch_central(_write_zip(
        t / "x.keras", _members(fx("dense_adam.keras"))), "config.json",
        file_size=0x7FFFFFFF), "declares"),
    "truncated archive": (lambda t: _truncate(fx("dense_adam.keras"), t / "x.keras", 0.6),
                          "truncated|not a valid|damaged"),
    "truncated legacy h5": (lambda t: _truncate(fx("dense_tfkeras.h5"), t / "x.h5", 0.5),
                            "not a readable HDF5"),
    "weight shape differs from config": (lambda t: _with_h5(t, _reshape_kernel),
                                         r"shape \(12, 7\).*needs \(12, 6\)"),
    "huge unallocated dataset": (lambda t: _with_h5(t, _huge_dataset), "stores only"),
    "external link": (lambda t: _with_h5(t, _external_link), "external HDF5 link"),
    "soft link": (lambda t: _with_h5(t, _soft_link), "soft or external"),
    "string dataset": (lambda t: _with_h5(t, _string_dataset), "dtype"),
    "NaN weights": (lambda t: _with_h5(t, _nan_weights), "NaN"),
    "config not JSON": (lambda t: _write_zip(t / "x.keras", {
        **_members(fx("dense_adam.keras")), "config.json": b"{not json"}), "not valid JSON"),
    "no weights member": (lambda t: _write_zip(t / "x.keras", {
        k: v for k, v in _members(fx("dense_adam.keras")).items()
        if k != "model.weights.h5"}), "no model.weights.h5"),
    "bzip2 member": (lambda t: _write_zip(t / "x.keras", _members(fx("dense_adam.keras")),
                                          zipfile.ZIP_BZIP2), "compression method"),
    "legacy weight_names outside the layer": (lambda t: _legacy_abs_name(t), "invalid HDF5"),
}


def _truncate(src, dst, frac):
    data = open(src, "rb").read()
    open(dst, "wb").write(data[:int(len(data) * frac)])
    return dst


def _reshape_kernel(f):
    del f["layers/dense/vars/0"]
    f["layers/dense/vars/0"] = np.zeros((12, 7), np.float32)


def _huge_dataset(f):
    del f["layers/dense/vars/0"]
    # 4e10 float32 values declared, nothing stored (HDF5 fills on read)
    f.create_dataset("layers/dense/vars/0", shape=(200_000, 50_000), dtype="f4",
                     chunks=(1000, 1000))


def _external_link(f):
    del f["layers/dense/vars/0"]
    f["layers/dense/vars/0"] = h5py.ExternalLink("/etc/passwd", "/x")


def _soft_link(f):
    del f["layers/dense/vars/0"]
    f["layers/dense/vars/0"] = h5py.SoftLink("/layers/dense_1/vars/0")


def _string_dataset(f):
    del f["layers/dense/vars/1"]
    f["layers/dense/vars/1"] = np.array([b"abcdef"] * 6)


def _nan_weights(f):
    d = f["layers/dense/vars/1"]
    d[0] = np.nan


def _legacy_abs_name(t):
    import shutil
    dst = t / "x.h5"
    shutil.copy(fx("dense_tfkeras.h5"), dst)
    with h5py.File(dst, "r+") as f:
        f["model_weights/dense"].attrs["weight_names"] = [b"/optimizer_weights/iteration:0",
                                                          b"dense/bias:0"]
    return dst


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_file_refused(tmp_path, case):
    make, match = HOSTILE[case]
    path = make(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # refused, not loaded with a warning
        with pytest.raises(ValueError, match=match):
            keras.models.load_model(path)


def test_hostile_count():
    assert len(HOSTILE) >= 15


def test_hostile_weights_file_refused_by_load_weights(tmp_path):
    path = _with_h5(tmp_path, _external_link)
    a = keras.Sequential([keras.Input(shape=(3, 4)), L.Flatten(), L.Dense(6, activation="relu"),
                          L.Dropout(0.25), L.Activation("tanh"),
                          L.Dense(3, activation="softmax")])
    before = a.get_weights()
    with pytest.raises(ValueError, match="external"):
        a.load_weights(path)
    for w0, w1 in zip(before, a.get_weights()):      # nothing half-assigned
        assert np.array_equal(w0, w1)


def test_zip_bomb_refused_without_memory(tmp_path):
    """A tiny .keras whose weights member claims 4 GB: refused from the
    directory alone, peak RSS barely moves (measured in a child process)."""
    path = HOSTILE["deflate bomb (declared size beyond deflate)"][0](tmp_path)
    code = textwrap.dedent(f"""
        import resource, nncore as keras
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            keras.models.load_model({str(path)!r})
        except ValueError as e:
            print("refused")
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    from conftest import child_env
    out = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True,
                         text=True, timeout=120)
    lines = out.stdout.split()
    assert lines[0] == "refused", out.stderr
    assert int(lines[1]) < 50, f"peak RSS grew by {lines[1]} MB"


def test_book_chapter7_file_names_unchanged(tmp_path, monkeypatch):
    """The book's chapter-7 lines, file names as printed (a small slice of data)."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    train_scaled = rng.random((120, 28, 28)).astype("float32")
    train_target = rng.integers(0, 10, 120)
    val_scaled, val_target = train_scaled[:30], train_target[:30]

    def model_fn(a_layer=None):
        model = keras.Sequential()
        model.add(keras.Input(shape=(28, 28)))
        model.add(L.Flatten())
        model.add(L.Dense(100, activation="relu"))
        if a_layer:
            model.add(a_layer)
        model.add(L.Dense(10, activation="softmax"))
        return model
    model = model_fn(L.Dropout(0.3))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(train_scaled, train_target, epochs=2, verbose=0,
              validation_data=(val_scaled, val_target))
    model.save_weights("model.weights.h5")
    model.save("model-whole.keras")
    model2 = model_fn(L.Dropout(0.3))
    model2.load_weights("model.weights.h5")
    val_labels = np.argmax(model2.predict(val_scaled, verbose=0), axis=-1)
    assert np.array_equal(val_labels, np.argmax(model.predict(val_scaled, verbose=0), -1))
    model3 = keras.models.load_model("model-whole.keras")
    assert model3.evaluate(val_scaled, val_target, verbose=0) == \
        model.evaluate(val_scaled, val_target, verbose=0)
    model = model_fn(L.Dropout(0.3))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    checkpoint_cb = keras.callbacks.ModelCheckpoint("best-model.keras", save_best_only=True)
    early_stopping_cb = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    model.fit(train_scaled, train_target, epochs=3, verbose=0,
              validation_data=(val_scaled, val_target),
              callbacks=[checkpoint_cb, early_stopping_cb])
    model = keras.models.load_model("best-model.keras")
    assert len(model.evaluate(val_scaled, val_target, verbose=0)) == 2
    assert sorted(os.listdir(tmp_path)) == ["best-model.keras", "model-whole.keras",
                                            "model.weights.h5"]
