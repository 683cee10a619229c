"""The progress bar on real displays: a narrow terminal (each redraw clipped
to the width, so nothing wraps), an interrupted fit (the bar line is ended),
and which streams count as a notebook."""
import io
import os
import re
import sys

import numpy as np
import pytest

import nncore as keras
from nncore.utils import progbar as pb
from nncore.utils.progbar import Progbar, clip_line

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def tty(monkeypatch):
    """Call it in the test body to make stdout a terminal of 40 columns
    (pytest re-installs its own capture between set-up and the test call)."""
    def install():
        out = FakeTTY()
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(pb.shutil, "get_terminal_size",
                            lambda fallback=None: os.terminal_size((40, 24)))
        return out
    return install


def _screen_lines(raw):
    """Each redraw (text between \\r / \\n), without colour codes."""
    return [ANSI.sub("", s) for s in re.split(r"[\r\n]", raw) if s]


def test_clip_line_counts_visible_characters_only():
    line = "\x1b[1m12/50\x1b[0m \x1b[32m━━━━━\x1b[0m\x1b[37m━━━━━\x1b[0m 3s - loss: 0.5"
    clipped, n = clip_line(line, 9)
    assert n == 9 and ANSI.sub("", clipped) == "12/50 ━━━"
    assert clipped.endswith("\x1b[0m")            # colour not left switched on
    same, n = clip_line("short", 40)
    assert same == "short" and n == 5


def test_redraws_fit_a_narrow_terminal(tty, monkeypatch):
    tty = tty()
    t = [0.0]
    monkeypatch.setattr(pb, "_now", lambda: t[0])
    p = Progbar(50)
    assert p._dynamic_display
    for i in range(1, 51):
        t[0] += 1.0
        p.update(i, [("accuracy", 0.8), ("loss", 0.5), ("val_loss", 0.6)])
    raw = tty.getvalue()
    lines = _screen_lines(raw)
    assert len(lines) == 50
    assert max(len(s) for s in lines) <= 39, max(lines, key=len)
    assert raw.count("\n") == 1 and raw.endswith("\n")   # one screen line, ended once
    # unclipped, the same line would not have fitted
    assert len("50/50 ━━━━━━━━━━━━━━━━━━━━ 50s 1s/step - accuracy: 0.8000") > 39


def test_wide_terminal_is_not_clipped(tty, monkeypatch):
    tty = tty()
    monkeypatch.setattr(pb.shutil, "get_terminal_size",
                        lambda fallback=None: os.terminal_size((200, 24)))
    p = Progbar(5)
    p.update(5, [("accuracy", 0.8), ("loss", 0.5)])
    assert "loss: 0.5000" in ANSI.sub("", tty.getvalue())


def test_notebook_output_is_not_clipped(monkeypatch):
    # a kernel's stream is not a tty: the frontend wraps, so keep the full line
    class OutStream(io.StringIO):
        pass
    OutStream.__module__ = "ipykernel.iostream"
    out = OutStream()
    monkeypatch.setattr(sys, "stdout", out)
    assert pb.in_notebook() and pb.dynamic_display_available()
    assert pb.terminal_columns() is None
    p = Progbar(5)
    p.update(2, [("loss", 0.5)])
    p.update(5, [("accuracy", 0.8), ("loss", 0.5)], finalize=True)
    raw = out.getvalue()
    assert raw.startswith("\r") and raw.count("\n") == 1
    assert "loss: 0.5000 - accuracy: 0.8000" in ANSI.sub("", raw)


def test_importing_ipykernel_alone_is_not_a_notebook(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.delenv("PYCHARM_HOSTED", raising=False)
    assert not pb.in_notebook()
    assert not pb.dynamic_display_available()


def _model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def test_interrupted_fit_ends_the_bar_line(tty):
    tty = tty()
    x = np.random.default_rng(0).random((640, 8)).astype("float32")
    y = np.arange(640) % 3

    def stop(batch, logs):
        if batch == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _model().fit(x, y, epochs=2, batch_size=8, verbose=1, callbacks=[
            keras.callbacks.LambdaCallback(on_train_batch_end=stop)])
    print("next line")
    raw = tty.getvalue()
    assert "/80" in raw                           # the bar was drawn, mid-epoch
    assert "\nnext line\n" in raw                 # ...and ended before the print
    assert raw.rstrip("\n").splitlines()[-1] == "next line"


def test_uninterrupted_fit_adds_no_blank_lines(tty):
    tty = tty()
    x = np.random.default_rng(0).random((64, 8)).astype("float32")
    y = np.arange(64) % 3
    _model().fit(x, y, epochs=2, batch_size=8, verbose=1)
    print("next line")
    lines = tty.getvalue().split("\n")
    assert "" not in lines[:-1]                   # no empty line anywhere
    assert lines[-2] == "next line"


def test_verbose_auto_is_the_progress_bar(capsys, monkeypatch):
    # Keras 3: "auto" is 1 (2 only under a ParameterServerStrategy, which
    # nncore does not have)
    monkeypatch.delenv("PYCHARM_HOSTED", raising=False)
    x = np.random.default_rng(0).random((64, 8)).astype("float32")
    y = np.arange(64) % 3
    _model().fit(x, y, epochs=1, batch_size=8)       # verbose="auto"
    out = capsys.readouterr().out
    assert "━" in out and "8/8" in out
    assert " - 0s - " not in out                         # not the verbose=2 line


@pytest.mark.parametrize("what", ["evaluate", "predict"])
def test_interrupted_evaluate_or_predict_ends_the_bar_line(what, tty, monkeypatch):
    """A callback that stops evaluate/predict half-way (as Ctrl-C would):
    the bar's line is ended, so the next print starts on a line of its own."""
    import numpy as np
    import nncore as keras

    class Stop(keras.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            if batch == 2:
                raise KeyboardInterrupt

        def on_predict_batch_end(self, batch, logs=None):
            if batch == 2:
                raise KeyboardInterrupt

    m = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.ones((64, 4), np.float32), np.zeros(64, int)
    out = tty()
    t = [0.0]
    monkeypatch.setattr(pb, "_now", lambda: t[0] + 1.0)
    with pytest.raises(KeyboardInterrupt):
        if what == "evaluate":
            m.evaluate(x, y, batch_size=8, verbose=1, callbacks=[Stop()])
        else:
            m.predict(x, batch_size=8, verbose=1, callbacks=[Stop()])
    print("NEXT")
    raw = out.getvalue()
    assert "/8" in raw                         # a bar was drawn ...
    assert raw.endswith("\nNEXT\n")           # ... and its line ended before NEXT
