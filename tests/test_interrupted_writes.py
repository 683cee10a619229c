"""Ctrl-C landing anywhere in a save leaves the old file or the new one and
nothing else: no ``.tmp`` file, no open file descriptor.

Deterministic: a tracer sends a real SIGINT to this process at the N-th step
(each line executed, and just before each C call such as ``os.open``) of
nncore's saving code, for every N until a save runs to the end untouched.
The KeyboardInterrupt then arrives wherever Python would deliver it.
"""
import os
import signal
import sys
import threading

import numpy as np
import pytest

import nncore as keras

L = keras.layers
try:
    import h5py  # noqa: F401
    HAS_H5PY = True
except ImportError:
    HAS_H5PY = False

pytestmark = pytest.mark.skipif(
    os.name != "posix" or not os.path.isdir("/proc/self/fd")
    or threading.current_thread() is not threading.main_thread(),
    reason="needs POSIX signals and /proc/self/fd")

SAVING = os.sep + os.path.join("nncore", "saving") + os.sep
INTERRUPT = os.path.join("nncore", "models", "interrupt.py")
CSV = os.path.join("nncore", "callbacks", "csv_logger.py")


def _ours(code):
    f = code.co_filename
    return SAVING in f or f.endswith(INTERRUPT) or f.endswith(CSV)


class _SigintAtStep:
    """Send SIGINT at step ``at`` of nncore's saving code (lines and C calls)."""

    def __init__(self, at):
        self.at, self.steps, self.sent = at, 0, False

    def _step(self):
        if self.steps == self.at and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)
        self.steps += 1

    def trace(self, frame, event, arg):
        if event == "call":
            return self._local if _ours(frame.f_code) else None
        return None

    def _local(self, frame, event, arg):
        if event == "line":
            self._step()
        return self._local

    def profile(self, frame, event, arg):
        if event == "c_call" and _ours(frame.f_code):
            self._step()

    def __enter__(self):
        sys.settrace(self.trace)
        sys.setprofile(self.profile)
        return self

    def __exit__(self, *exc):
        sys.settrace(None)
        sys.setprofile(None)
        return False


def _fds():
    return sorted(os.listdir("/proc/self/fd"))


def _model(seed):
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.Input((3,)), L.Dense(4, activation="relu"), L.Dense(2)])
    m.compile(optimizer="adam", loss="mse")
    m.fit(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"), epochs=1, verbose=0)
    return m


def _weights_of(path):
    if ".weights." in path:
        m = _model(99)
        m.load_weights(path)
    else:
        m = keras.models.load_model(path)
    return [w.copy() for w in m.get_weights()]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _sweep(tmp_path, save, name, check_old_or_new, max_runs=4000, stride=1):
    """Interrupt ``save`` at step 0, stride, 2*stride, ... until a run ends with
    no signal sent; after each run check the folder and the descriptors."""
    at, interrupted = 0, 0
    for _ in range(max_runs):
        before = _fds()
        with _SigintAtStep(at) as s:
            try:
                save()
            except KeyboardInterrupt:
                interrupted += 1
        assert sorted(os.listdir(tmp_path)) == [name], \
            f"interrupt at step {at}: folder holds {os.listdir(tmp_path)}"
        assert _fds() == before, f"interrupt at step {at}: file descriptor leaked"
        check_old_or_new(at)
        if not s.sent:
            return interrupted, s.steps
        at += stride
    raise AssertionError("the save never ran to the end")


# model.save for .npz and .keras, save_weights for the weights-only files
SUFFIXES = [".npz", ".weights.npz"] + ([".keras", ".weights.h5"] if HAS_H5PY else [])


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_sigint_at_every_step_of_a_save_leaves_old_or_new_file(tmp_path, suffix):
    old, new = _model(1), _model(2)
    path = str(tmp_path / ("m" + suffix))
    if ".weights." in suffix:
        saver = lambda m: m.save_weights(path)      # noqa: E731
    else:
        saver = lambda m: m.save(path)              # noqa: E731
    saver(old)
    want_old, want_new = old.get_weights(), new.get_weights()

    def check(at):
        got = _weights_of(path)
        assert _same(got, want_old) or _same(got, want_new), \
            f"interrupt at step {at}: the file is neither the old nor the new model"

    # .keras runs ~3x more lines (the zip and the HDF5 inside it): every 3rd step
    stride = 3 if suffix == ".keras" else 1
    interrupted, steps = _sweep(tmp_path, lambda: saver(new), os.path.basename(path), check,
                                stride=stride)
    assert interrupted >= 1 and steps > 10      # the sweep really hit the writer
    assert _same(_weights_of(path), want_new)


def test_sigint_while_the_temporary_file_is_opened(tmp_path, monkeypatch):
    """The exact report: Ctrl-C arriving inside ``os.open`` of the writer."""
    from nncore.saving import atomic
    m = _model(1)
    path = str(tmp_path / "m.weights.npz")
    m.save_weights(path)
    real_open = os.open

    def open_then_sigint(p, *a, **k):
        fd = real_open(p, *a, **k)
        if str(p).endswith(".tmp"):
            os.kill(os.getpid(), signal.SIGINT)
        return fd

    monkeypatch.setattr(atomic.os, "open", open_then_sigint)
    before = _fds()
    with pytest.raises(KeyboardInterrupt):
        _model(2).save_weights(path)
    assert os.listdir(tmp_path) == ["m.weights.npz"] and _fds() == before


@pytest.mark.parametrize("step", ["chmod", "fdopen"])
def test_an_error_before_the_file_object_exists_closes_the_descriptor(tmp_path, monkeypatch,
                                                                      step):
    from nncore.saving import atomic
    m = _model(1)
    path = str(tmp_path / "m.weights.npz")
    m.save_weights(path)

    def fail(*a, **k):
        raise KeyboardInterrupt

    if step == "chmod":
        monkeypatch.setattr(atomic, "_copy_mode_and_owner", fail)
    else:
        monkeypatch.setattr(atomic.os, "fdopen", fail)
    before = _fds()
    with pytest.raises(KeyboardInterrupt):
        _model(2).save_weights(path)
    assert os.listdir(tmp_path) == ["m.weights.npz"]
    assert _fds() == before, "the temporary file's descriptor was left open"


@pytest.mark.skipif(not HAS_H5PY, reason="h5py is not installed (.keras files)")
def test_sigint_during_a_model_checkpoint_keeps_the_last_complete_file(tmp_path):
    path = str(tmp_path / "ckpt.keras")
    m = _model(1)
    x, y = np.ones((8, 3), "float32"), np.ones((8, 2), "float32")
    m.fit(x, y, epochs=1, verbose=0, callbacks=[keras.callbacks.ModelCheckpoint(path)])
    good = [w.copy() for w in keras.models.load_model(path).get_weights()]
    after = []

    def check(at):
        got = _weights_of(path)
        assert _same(got, good) or any(_same(got, a) for a in after), \
            f"interrupt at step {at}: checkpoint is neither the old nor a new model"

    def fit():
        try:
            m.fit(x, y, epochs=1, verbose=0, callbacks=[keras.callbacks.ModelCheckpoint(path)])
        finally:
            after.append([w.copy() for w in m.get_weights()])

    interrupted, _ = _sweep(tmp_path, fit, "ckpt.keras", check, stride=7)
    assert interrupted >= 1


def test_sigint_at_every_step_of_a_csv_logger_leaves_whole_rows(tmp_path):
    path = str(tmp_path / "log.csv")
    m = _model(1)
    x, y = np.ones((8, 3), "float32"), np.ones((8, 2), "float32")

    def check(at):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        assert text == "" or text.endswith("\n"), f"interrupt at step {at}: half a row"
        rows = text.splitlines()
        assert all(r.count(",") == rows[0].count(",") for r in rows), rows

    def fit():
        m.fit(x, y, epochs=2, verbose=0, callbacks=[keras.callbacks.CSVLogger(path)])

    fit()
    interrupted, _ = _sweep(tmp_path, fit, "log.csv", check)
    assert interrupted >= 1
