"""keras.callbacks.TensorBoard: the files it writes, read back with TensorBoard's
own reader (EventAccumulator), and ``tensorboard --logdir`` serving them.

The tags and steps checked here are the ones Keras 3.15 writes for the same
model (compared by ``tools/tf_check_tensorboard.py``, run by hand with
TensorFlow: same tags, plugins and steps, but for one documented difference).  Skipped, with the reason, when the optional
``tensorboard`` package is absent -- except the test of the message a learner
gets then, which runs either way.
"""
import inspect
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

import nncore as keras

try:
    import tensorboard  # noqa: F401
    HAVE_TB = True
except ImportError:
    HAVE_TB = False

needs_tb = pytest.mark.skipif(not HAVE_TB, reason="the tensorboard package is not installed "
                                                   "(pip install 'nncore-keras[tensorboard]')")

EPOCHS, BATCH, N_TRAIN, N_VAL = 3, 10, 30, 10      # 3 training batches per epoch


def _data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(N_TRAIN + N_VAL, 4)).astype("float32")
    y = rng.integers(0, 3, N_TRAIN + N_VAL)
    return x, y


def _model(fused=True, functional=False):
    keras.utils.set_random_seed(3)
    if functional:
        inp = keras.Input(shape=(4,))
        h = keras.layers.Dense(8, activation="relu", name="hidden")(inp)
        model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="out")(h),
                            name="tb_func")
    else:
        model = keras.Sequential([keras.Input(shape=(4,)),
                                  keras.layers.Dense(8, activation="relu", name="hidden"),
                                  keras.layers.Dense(3, activation="softmax", name="out")],
                                 name="tb_model")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.use_fused = fused
    return model


def _fit(model, log_dir, **kw):
    x, y = _data()
    tb = keras.callbacks.TensorBoard(log_dir=str(log_dir), **kw)
    history = model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, validation_split=0.25,
                        verbose=0, callbacks=[tb])
    return history


def _read(folder):
    """{tag: [(step, ndarray), ...]} of the event files in ``folder``, as
    TensorBoard's EventAccumulator reads them (every event kept)."""
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util
    acc = ea.EventAccumulator(str(folder), size_guidance={ea.TENSORS: 0})
    acc.Reload()
    return {tag: [(e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]
            for tag in acc.Tags()["tensors"]}


def _scalars(events, tag):
    return [(step, float(value)) for step, value in events[tag]]


@needs_tb
@pytest.mark.parametrize("fused", [True, False], ids=["compiled-loop", "per-batch"])
def test_epoch_scalars_equal_history_in_train_and_validation(tmp_path, fused):
    model = _model(fused)
    history = _fit(model, tmp_path)
    assert model._last_route.route == ("run_steps" if fused else "per-batch")
    train, val = _read(tmp_path / "train"), _read(tmp_path / "validation")
    steps = list(range(EPOCHS))
    for key in ("loss", "accuracy"):
        got = _scalars(train, f"epoch_{key}")
        assert [s for s, _ in got] == steps
        np.testing.assert_allclose([v for _, v in got], history.history[key], rtol=1e-6)
        got = _scalars(val, f"epoch_{key}")         # val_ dropped: one chart per metric
        assert [s for s, _ in got] == steps
        np.testing.assert_allclose([v for _, v in got], history.history["val_" + key],
                                   rtol=1e-6)
    lr = _scalars(train, "epoch_learning_rate")
    assert lr == [(e, pytest.approx(model.optimizer.learning_rate)) for e in steps]
    # after each validation pass, at step = optimizer.iterations (3 steps an epoch)
    got = _scalars(val, "evaluation_loss_vs_iterations")
    assert [s for s, _ in got] == [3, 6, 9]
    np.testing.assert_allclose([v for _, v in got], history.history["val_loss"], rtol=1e-6)
    # default update_freq="epoch": no per-batch scalars
    assert not any(tag.startswith("batch_") for tag in train)
    assert not any(tag.startswith("epoch_") and tag != "epoch_learning_rate"
                   and tag[6:] not in history.history for tag in train)


@needs_tb
@pytest.mark.parametrize("fused", [True, False], ids=["compiled-loop", "per-batch"])
def test_batch_scalars_every_update_freq_batches(tmp_path, fused):
    model = _model(fused)
    history = _fit(model, tmp_path / "every2", update_freq=2)
    train = _read(tmp_path / "every2" / "train")
    # batches numbered from 1 over the whole fit: 9 batches, every 2nd written
    losses = _scalars(train, "batch_loss")
    assert [s for s, _ in losses] == [2, 4, 6, 8]
    assert [s for s, _ in _scalars(train, "batch_accuracy")] == [2, 4, 6, 8]
    # batch 6 is the last of epoch 1: its running mean is that epoch's loss
    assert dict(losses)[6] == pytest.approx(history.history["loss"][1], rel=1e-6)
    # and the epoch scalars are all still there
    assert [s for s, _ in _scalars(train, "epoch_loss")] == [0, 1, 2]

    model = _model(fused)
    history = _fit(model, tmp_path / "batch", update_freq="batch")
    losses = dict(_scalars(_read(tmp_path / "batch" / "train"), "batch_loss"))
    assert sorted(losses) == list(range(1, 10))
    for epoch, last in enumerate((3, 6, 9)):
        assert losses[last] == pytest.approx(history.history["loss"][epoch], rel=1e-6)


@needs_tb
def test_batch_hooks_only_when_writing_per_batch():
    # update_freq="epoch" must leave the compiled loop its chunked pace
    assert not keras.callbacks.TensorBoard().needs_batch_hooks("train")
    assert keras.callbacks.TensorBoard(update_freq=5).needs_batch_hooks("train")
    assert not keras.callbacks.TensorBoard(update_freq="batch").needs_batch_hooks("test")


@needs_tb
@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
def test_weight_histograms_every_histogram_freq_epochs(tmp_path, functional):
    model = _model(functional=functional)
    _fit(model, tmp_path, histogram_freq=2)
    train = _read(tmp_path / "train")
    # Keras 3's variable paths: "<model>/<layer>/<weight>" in a Sequential
    # model, "<layer>/<weight>" in a functional one
    prefix = "" if functional else "tb_model/"
    weights = {f"{prefix}{l.name}/{w.name}/histogram": w for l in model.layers for w in l.weights}
    assert sorted(t for t in train if t.endswith("/histogram")) == sorted(weights)
    for tag, weight in weights.items():
        events = train[tag]
        assert [s for s, _ in events] == [0, 2]
        for _, buckets in events:
            assert buckets.shape == (30, 3)            # TensorBoard's default bucket count
            assert buckets[:, 2].sum() == weight.value.size
        # the last histogram spans the trained weights' range
        last = events[-1][1]
        assert last[0, 0] == pytest.approx(float(weight.value.min()))
        assert last[-1, 1] == pytest.approx(float(weight.value.max()))


@needs_tb
def test_write_graph_writes_the_model_config_and_can_be_off(tmp_path):
    model = _model()
    _fit(model, tmp_path / "on")
    train = _read(tmp_path / "on" / "train")
    (step, value), = train["keras"]
    config = json.loads(value.item())
    assert step == 0 and config["config"]["name"] == "tb_model"
    assert [e["config"]["name"] for e in config["config"]["layers"][1:]] == ["hidden", "out"]
    assert config["config"]["layers"][1]["config"]["units"] == 8

    _fit(_model(), tmp_path / "off", write_graph=False)
    assert "keras" not in _read(tmp_path / "off" / "train")


@needs_tb
def test_evaluate_alone_writes_evaluation_scalars(tmp_path):
    model = _model()
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)       # 4 steps
    loss, acc = model.evaluate(x, y, verbose=0,
                               callbacks=[keras.callbacks.TensorBoard(log_dir=str(tmp_path))])
    val = _read(tmp_path / "validation")
    assert _scalars(val, "evaluation_loss_vs_iterations") == [(4, pytest.approx(loss, rel=1e-6))]
    assert _scalars(val, "evaluation_accuracy_vs_iterations") == [(4, pytest.approx(acc))]
    assert not (tmp_path / "train").exists()


def test_keras_signature_and_defaults():
    # Keras 3.15's keras.callbacks.TensorBoard.__init__, argument for argument
    params = inspect.signature(keras.callbacks.TensorBoard.__init__).parameters
    assert {n: p.default for n, p in params.items() if n != "self"} == {
        "log_dir": "logs", "histogram_freq": 0, "write_graph": True, "write_images": False,
        "write_steps_per_second": False, "update_freq": "epoch", "profile_batch": 0,
        "embeddings_freq": 0, "embeddings_metadata": None}


@needs_tb
@pytest.mark.parametrize("kwargs, name", [
    (dict(write_images=True), "write_images"),
    (dict(profile_batch=5), "profile_batch"),
    (dict(profile_batch=(2, 4)), "profile_batch"),
    (dict(embeddings_freq=1), "embeddings_freq"),
    (dict(embeddings_metadata="meta.tsv"), "embeddings_metadata"),
    (dict(update_freq="sometimes"), "update_freq"),
    (dict(update_freq=0), "update_freq"),
    (dict(histogram_freq=-1), "histogram_freq"),
    (dict(histogram_freq=1.5), "histogram_freq"),
])
def test_unsupported_or_bad_arguments_are_refused_by_name(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=rf"TensorBoard: {name}"):
        keras.callbacks.TensorBoard(log_dir=str(tmp_path), **kwargs)
    assert not os.listdir(tmp_path)          # refused before anything was written


@needs_tb
def test_write_steps_per_second(tmp_path):
    _fit(_model(), tmp_path, update_freq=3, write_steps_per_second=True)
    train = _read(tmp_path / "train")
    per_epoch = _scalars(train, "epoch_steps_per_second")
    assert [s for s, _ in per_epoch] == [0, 1, 2] and all(v > 0 for _, v in per_epoch)
    assert [s for s, _ in _scalars(train, "batch_steps_per_second")] == [3, 6, 9]


def test_missing_package_names_the_extra(monkeypatch):
    # a None entry in sys.modules makes `import tensorboard...` raise ImportError
    for mod in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ImportError, match=r"pip install 'nncore-keras\[tensorboard\]'"):
        keras.callbacks.TensorBoard()


@needs_tb
def test_tensorboard_serves_the_logs(tmp_path):
    _fit(_model(), tmp_path / "run1", histogram_freq=1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path),
         "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url, seen, deadline = None, [], time.monotonic() + 90
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            seen.append(line)
            m = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            if m:
                url = m.group(1)
        assert url, "tensorboard did not start:\n" + "".join(seen)
        runs = []
        while len(runs) < 2 and time.monotonic() < deadline:  # it loads in the background
            with urllib.request.urlopen(f"{url}/data/runs", timeout=30) as r:
                runs = json.load(r)
            time.sleep(0.2)
        assert sorted(runs) == ["run1/train", "run1/validation"]
        with urllib.request.urlopen(f"{url}/data/plugin/scalars/tags", timeout=30) as r:
            tags = json.load(r)
        assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(tags["run1/train"])
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
