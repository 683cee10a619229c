"""Progbar (nncore.utils.progbar) and ProgbarLogger output, in non-dynamic mode
(what a captured stdout sees) with a fake clock, compared with the format spec:

    verbose=1 in progress: ' 1/10 ━━────────────────── 4s 500ms/step - loss: 0.5000'
    verbose=1 finished:    '10/10 ━━━━━━━━━━━━━━━━━━━━ 3s 278ms/step - loss: 0.2500'
    verbose=2:             '10/10 - 3s - 278ms/step - loss: 0.2500'
"""
import io
import sys

import pytest

from nncore.callbacks import CallbackList, ProgbarLogger
from nncore.utils import progbar as pb
from nncore.utils.progbar import Progbar, format_eta, format_time_per_unit, format_value

DONE, TODO = "━", "─"


class Clock:
    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(pb, "_now", c)
    return c


@pytest.fixture
def plain_stdout(monkeypatch):
    """Make auto-detection see a non-interactive stdout."""
    monkeypatch.delenv("PYCHARM_HOSTED", raising=False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)


def bar(done, width=20):
    return DONE * done + TODO * (width - done)


# ---------------------------------------------------------------- formatting
@pytest.mark.parametrize("value,text", [
    (0.5, "0.5000"), (0.81234, "0.8123"), (-0.25, "-0.2500"), (12.0, "12.0000"),
    (0.0011, "0.0011"), (0.001, "1.0000e-03"), (1e-4, "1.0000e-04"),
    (-1e-5, "-1.0000e-05"), (0.0, "0.0000"), (float("nan"), "nan"),
])
def test_format_value(value, text):
    assert format_value(value) == text


@pytest.mark.parametrize("seconds,text", [
    (0.0, " 0s/step"), (2.4, " 2s/step"), (1.0, " 1s/step"), (0.002, " 2ms/step"),
    (0.2778, " 278ms/step"), (2e-6, " 2us/step"), (0.00095, " 950us/step"),
])
def test_format_time_per_unit(seconds, text):
    assert format_time_per_unit(seconds) == text


def test_format_time_per_unit_other_unit():
    assert format_time_per_unit(0.5, "sample") == " 500ms/sample"


@pytest.mark.parametrize("seconds,text", [
    (4.5, "4s"), (30, "30s"), (60, "60s"), (75, "1:15"), (3600, "60:00"), (3725, "1:02:05"),
])
def test_format_eta(seconds, text):
    assert format_eta(seconds) == text


# ---------------------------------------------------------------- Progbar
def test_verbose1_non_dynamic_lines(clock, capsys, plain_stdout):
    p = Progbar(10)                                   # created at t=100
    assert p._dynamic_display is False
    clock.t = 100.5
    p.update(1, [("loss", 0.5)])                      # first update always drawn
    clock.t = 101.0
    p.update(5, [("loss", 0.3)])                      # throttled: not a tty -> 10 s
    clock.t = 103.0
    p.update(10, [("loss", 0.25), ("val_loss", 1e-4)])
    out = capsys.readouterr().out
    assert out == (
        f" 1/10 {bar(2)} 4s 500ms/step - loss: 0.5000\n"
        f"10/10 {bar(20)} 3s 278ms/step - loss: 0.2500 - val_loss: 1.0000e-04\n")
    assert "\x1b[" not in out and "\r" not in out


def test_verbose1_non_dynamic_prints_again_after_log_interval(clock, capsys):
    p = Progbar(100, dynamic=False, log_interval=10.0)
    clock.t = 101.0
    p.update(1)
    clock.t = 105.0
    p.update(2)
    clock.t = 112.0
    p.update(50)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["1/100", "50/100"]
    # ETA: (112-101)/(50-1) s/step * 50 steps left = 11.2 s
    assert lines[1] == f" 50/100 {bar(10)} 11s 224ms/step"


def test_non_dynamic_no_duplicate_last_line(clock, capsys):
    # the model reports the last step, then finalizes: one line, not two
    p = Progbar(3, dynamic=False)
    clock.t = 101.0
    p.update(3, [("loss", 0.5)], finalize=False)
    assert capsys.readouterr().out == ""
    p.update(3, [("loss", 0.5)], finalize=True)
    assert capsys.readouterr().out == f"3/3 {bar(20)} 1s 333ms/step - loss: 0.5000\n"


def test_verbose2_single_line_at_end(clock, capsys, plain_stdout):
    p = Progbar(10, verbose=2)
    clock.t = 100.5
    p.update(1, [("loss", 0.5)])
    clock.t = 103.0
    p.update(10, [("accuracy", 0.8123), ("loss", 0.25)])
    assert capsys.readouterr().out == (
        "10/10 - 3s - 278ms/step - loss: 0.2500 - accuracy: 0.8123\n")


def test_verbose0_silent(clock, capsys):
    p = Progbar(3, verbose=0)
    for i in range(1, 4):
        p.update(i, [("loss", 1.0)])
    assert capsys.readouterr().out == ""


def test_dynamic_redraws_in_place_and_pads(clock, capsys):
    p = Progbar(4, dynamic=True, ansi=False, interval=0.05, stateful_metrics=["loss"])
    clock.t = 101.0
    p.update(1, [("loss", 12.5)])
    clock.t = 101.01
    p.update(2, [("loss", 1.0)])                      # within 0.05 s: skipped
    clock.t = 104.0
    p.update(4, [("loss", 1.0)])
    parts = capsys.readouterr().out.split("\r")
    assert parts[0] == "" and len(parts) == 3         # 2 draws, each starting with \r
    assert parts[1] == f"1/4 {bar(5)} 3s 1s/step - loss: 12.5000"      # no newline yet
    final = f"4/4 {bar(20)} 4s 1s/step - loss: 1.0000"
    # the final line is one character shorter: padded with a space, then \n
    assert parts[2] == final + " " + "\n"


def test_averaging_of_stateless_values(clock, capsys):
    # default: values averaged over steps by the bar, as Keras's Progbar does
    p = Progbar(4, dynamic=False, log_interval=0)
    clock.t = 101.0
    p.update(1, [("loss", 12.5)])
    clock.t = 102.0
    p.update(3, [("loss", 1.0)])
    clock.t = 103.0
    p.update(4, [("loss", 2.0)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == f"3/4 {bar(15)} 0s 500ms/step - loss: 4.8333"   # (12.5 + 2*1) / 3
    assert lines[2] == f"4/4 {bar(20)} 3s 667ms/step - loss: 2.0000"   # final value as given


def test_dynamic_ansi_colours(clock, capsys):
    p = Progbar(2, dynamic=True)                       # ansi follows dynamic
    clock.t = 101.0
    p.update(1)
    out = capsys.readouterr().out
    assert out == ("\r\x1b[1m1/2\x1b[0m \x1b[32m" + DONE * 10 + "\x1b[0m\x1b[37m"
                   + DONE * 10 + "\x1b[0m \x1b[1m1s\x1b[0m 1s/step")


def test_stateful_metrics_shown_as_given(clock, capsys):
    p = Progbar(4, dynamic=False, log_interval=0, stateful_metrics=["loss"])
    clock.t = 101.0
    p.update(1, [("loss", 1.0)])
    clock.t = 102.0
    p.update(3, [("loss", 0.0)])
    assert capsys.readouterr().out.splitlines()[-1].endswith("- loss: 0.0000")


def test_unknown_target(clock, capsys):
    p = Progbar(None, dynamic=False, log_interval=0)
    clock.t = 102.0
    p.update(3)
    assert capsys.readouterr().out == "      3/Unknown 2s 667ms/step\n"


def test_add_and_stdout_looked_up_at_write_time(clock, monkeypatch):
    p = Progbar(2, dynamic=False)
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buf)           # replaced after construction
    clock.t = 101.0
    p.add(1)
    clock.t = 102.0
    p.add(1)
    assert buf.getvalue().splitlines()[-1] == f"2/2 {bar(20)} 2s 1s/step"


def test_dynamic_detection(monkeypatch, plain_stdout):
    assert Progbar(1)._dynamic_display is False
    monkeypatch.setenv("PYCHARM_HOSTED", "1")
    assert Progbar(1)._dynamic_display is True


def test_first_step_excluded_from_time_per_step(clock, capsys):
    p = Progbar(11, dynamic=False, log_interval=0)
    clock.t = 110.0          # slow first step (10 s)
    p.update(1)
    clock.t = 111.0          # then 10 steps in 1 s
    p.update(11)
    assert capsys.readouterr().out.splitlines()[-1] == f"11/11 {bar(20)} 11s 100ms/step"


def test_both_metric_selections_rejected():
    with pytest.raises(ValueError):
        Progbar(1, stateful_metrics=["a"], stateless_metrics=["b"])


# ---------------------------------------------------------------- ProgbarLogger
def run_epochs(cbs, clock, epochs, steps, batch_logs, epoch_logs, use_hooks=False):
    cbs.on_train_begin()
    for epoch in range(epochs):
        clock.t = 100.0 + 10 * epoch
        cbs.on_epoch_begin(epoch)
        for step in range(1, steps + 1):
            clock.t = 100.0 + 10 * epoch + step
            if use_hooks:
                cbs.on_train_batch_end(step - 1, dict(batch_logs))
            else:
                cbs.update_progress(step, dict(batch_logs))
        # silent validation pass inside fit
        cbs.on_test_begin()
        cbs.update_progress(1, {"loss": 9.0})
        cbs.on_test_batch_end(0, {"loss": 9.0})
        cbs.on_test_end({"loss": 9.0})
        cbs.on_epoch_end(epoch, dict(epoch_logs))
    cbs.on_train_end()


def test_progbar_logger_fit_verbose1(clock, capsys, plain_stdout):
    cbs = CallbackList([], add_progbar=True, verbose=1, epochs=2, steps=4)
    assert not cbs.needs_batch_hooks()
    run_epochs(cbs, clock, 2, 4, {"loss": 0.5, "accuracy": 0.75},
               {"val_loss": 0.4, "learning_rate": 0.001, "loss": 0.5, "val_accuracy": 0.8,
                "accuracy": 0.75})
    out = capsys.readouterr().out
    first = f"1/4 {bar(5)} 3s 1s/step - accuracy: 0.7500 - loss: 0.5000"
    last = (f"4/4 {bar(20)} 4s 1s/step - accuracy: 0.7500 - loss: 0.5000 - "
            "val_accuracy: 0.8000 - val_loss: 0.4000 - learning_rate: 1.0000e-03")
    assert out == f"Epoch 1/2\n{first}\n{last}\nEpoch 2/2\n{first}\n{last}\n"


def test_progbar_logger_batch_hooks_also_draw(clock, capsys, plain_stdout):
    cbs = CallbackList([ProgbarLogger()], verbose=1, epochs=1, steps=2)
    run_epochs(cbs, clock, 1, 2, {"loss": 1.0}, {"loss": 1.0}, use_hooks=True)
    out = capsys.readouterr().out
    assert "Epoch" not in out                          # epochs == 1
    assert out == f"1/2 {bar(10)} 1s 1s/step - loss: 1.0000\n2/2 {bar(20)} 2s 1s/step - loss: 1.0000\n"


def test_progbar_logger_verbose2(clock, capsys, plain_stdout):
    cbs = CallbackList([], add_progbar=True, verbose=2, epochs=2, steps=4)
    run_epochs(cbs, clock, 2, 4, {"loss": 0.5}, {"loss": 0.5, "val_loss": 0.25})
    out = capsys.readouterr().out
    line = "4/4 - 4s - 1s/step - loss: 0.5000 - val_loss: 0.2500"
    assert out == f"Epoch 1/2\n{line}\nEpoch 2/2\n{line}\n"


def test_progbar_logger_evaluate_and_predict(clock, capsys, plain_stdout):
    cbs = CallbackList([], add_progbar=True, verbose=1, epochs=1, steps=3)
    cbs.on_test_begin()
    clock.t = 101.0
    cbs.update_progress(3, {"loss": 0.5})
    cbs.on_test_end({"loss": 0.25, "accuracy": 0.5})
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"3/3 {bar(20)} 1s 333ms/step - accuracy: 0.5000 - loss: 0.2500"

    cbs = CallbackList([], add_progbar=True, verbose=1, epochs=1, steps=2)
    clock.t = 200.0
    cbs.on_predict_begin()
    clock.t = 202.0
    cbs.update_progress(2, {"outputs": [1, 2]})
    cbs.on_predict_end()
    out = capsys.readouterr().out
    assert "outputs" not in out
    assert out.splitlines()[-1] == f"2/2 {bar(20)} 2s 1s/step"


def test_progbar_logger_silent_with_verbose0(clock, capsys):
    cbs = CallbackList([ProgbarLogger()], verbose=0, epochs=2, steps=2)
    run_epochs(cbs, clock, 2, 2, {"loss": 1.0}, {"loss": 1.0})
    assert capsys.readouterr().out == ""


def test_progbar_logger_unknown_steps(clock, capsys, plain_stdout):
    cbs = CallbackList([], add_progbar=True, verbose=2, epochs=1, steps=None)
    run_epochs(cbs, clock, 1, 3, {"loss": 1.0}, {"loss": 1.0})
    assert capsys.readouterr().out == "3/3 - 3s - 1s/step - loss: 1.0000\n"
