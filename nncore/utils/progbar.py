"""Text progress bar in the Keras 3 look (``keras.utils.Progbar``).

A finished ``verbose=1`` line reads::

    1500/1500 ━━━━━━━━━━━━━━━━━━━━ 3s 2ms/step - accuracy: 0.8123 - loss: 0.5321

while in progress the elapsed time is replaced by the estimated time left
(``h:mm:ss``, ``m:ss`` or ``Ns``, no label) and the bar is part drawn.
``verbose=2`` prints a single line when the bar is finalized::

    1500/1500 - 3s - 2ms/step - accuracy: 0.8123 - loss: 0.5321

Values are printed with ``.4f`` -- ``.4e`` when ``0 < |v| <= 1e-3`` -- and the
time per step in s, ms or us.  The first step is left out of the time-per-step
estimate (it usually includes warm-up).

Display modes
-------------
*Dynamic* (stdout is a terminal, a Jupyter/IPython kernel's output stream,
or PyCharm's ``PYCHARM_HOSTED`` is set): the line is redrawn in place with
``\\r`` at most once every ``interval`` seconds, and coloured with ANSI codes
like Keras (done part green, the rest grey).

* In a terminal each redraw is clipped to the terminal's width (read at every
  redraw, so resizing works): a line one column too long would wrap, and every
  redraw would then start a new screen line.
* In Jupyter (and VS Code / Colab notebooks) the frontend applies ``\\r``
  itself, so the bar is one updating line per epoch; nothing is clipped there
  (the output area wraps long lines and ``\\r`` still returns to their start).
* A bar interrupted mid-line (Ctrl-C, an exception in a callback) is ended
  with a newline by ``end_line()`` -- ``ProgbarLogger`` calls it in
  ``on_train_end``, which ``fit`` runs in a ``finally`` -- so the traceback or
  the next ``print`` starts on a line of its own.

*Non-dynamic* (output captured to a file or a pipe): every printed update is a
line of its own, ending in ``\\n``, in plain text (the part of the bar not yet
done is drawn ``─``), and intermediate lines are rate limited to one per
``log_interval`` seconds (default 10 s) so logs stay short; an intermediate
update that already reaches ``target`` is not drawn (the finalizing one follows).
The final line of a bar is always printed.

Differences from Keras, on purpose: Keras also treats every POSIX system as
dynamic (so captured logs fill with ``\\b``/``\\r``); Keras always emits ANSI
codes; Keras prints ``0`` as ``0.0000e+00`` and, in ``verbose=2``, negative
values in ``e`` notation.

Output goes to whatever ``sys.stdout`` is at the time of writing (so redirection
and pytest's ``capsys`` work).
"""
import math
import os
import re
import shutil
import sys
import time

import numpy as np

__all__ = ["Progbar", "format_value", "format_time_per_unit", "format_eta"]

_BOLD = "\x1b[1m"
_GREEN = "\x1b[32m"
_GREY = "\x1b[37m"
_RESET = "\x1b[0m"
_DONE_CHAR = "━"
_TODO_CHAR_PLAIN = "─"


def _now():
    """The clock used for intervals and timings (tests replace it)."""
    return time.perf_counter()


def _write(text):
    stream = sys.stdout
    if stream is None:          # pythonw / closed stdout: nothing to draw on
        return
    stream.write(text)
    try:
        stream.flush()
    except (AttributeError, ValueError, OSError):
        pass


def _stdout_isatty():
    stream = sys.stdout
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def in_notebook():
    """True when stdout is a Jupyter/IPython kernel's output stream.

    Checked on the stream itself (ipykernel's ``OutStream``), not on whether
    ipykernel was imported somewhere: a script that imports it but writes to a
    log file must still get plain lines.
    """
    stream = sys.stdout
    return stream is not None and type(stream).__module__.startswith("ipykernel")


def dynamic_display_available():
    """True where a line can be redrawn in place (tty, notebook, PyCharm)."""
    return _stdout_isatty() or in_notebook() or "PYCHARM_HOSTED" in os.environ


def terminal_columns():
    """Columns of the terminal on stdout, or None when stdout is not a terminal
    (a notebook or a file: nothing to clip to)."""
    if not _stdout_isatty():
        return None
    columns = shutil.get_terminal_size(fallback=(0, 0)).columns
    return columns if columns > 0 else None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def clip_line(line, width):
    """``line`` cut to ``width`` visible characters; ANSI colour codes do not
    count, and a reset is appended when a coloured part was cut off."""
    out, seen, pos, cut = [], 0, 0, False
    for m in _ANSI.finditer(line):
        text = line[pos:m.start()]
        if seen + len(text) > width:
            out.append(text[:width - seen])
            seen, cut = width, True
            break
        out.append(text)
        seen += len(text)
        out.append(m.group())
        pos = m.end()
    else:
        text = line[pos:]
        if seen + len(text) > width:
            out.append(text[:width - seen])
            seen, cut = width, True
        else:
            out.append(text)
            seen += len(text)
    clipped = "".join(out)
    if cut and _ANSI.search(line):
        clipped += _RESET
    return clipped, seen


def format_value(value):
    """A metric value as the progress bar prints it."""
    if isinstance(value, str):
        return value
    try:
        v = float(np.mean(value))
    except (TypeError, ValueError):
        return str(value)
    if v == 0.0 or abs(v) > 1e-3:
        return f"{v:.4f}"
    return f"{v:.4e}"           # also nan / inf, which print as 'nan' / 'inf'


def format_time_per_unit(seconds, unit_name="step"):
    """``' 2ms/step'``-style text (leading space included, as Keras)."""
    if seconds >= 1 or seconds == 0:
        return f" {seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f" {seconds * 1e3:.0f}ms/{unit_name}"
    return f" {seconds * 1e6:.0f}us/{unit_name}"


def format_eta(seconds):
    """Time left: ``h:mm:ss`` above an hour, ``m:ss`` above a minute, else ``Ns``."""
    seconds = max(0.0, float(seconds))
    if seconds > 3600:
        return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)
    if seconds > 60:
        return "%d:%02d" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


class Progbar:
    """Displays a progress bar (API of ``keras.utils.Progbar``).

    Args:
        target: total number of steps, or None if unknown.
        width: bar width in characters (20).
        verbose: 0 silent, 1 bar, 2 one line when finalized.
        interval: minimum seconds between two redraws (0.05).
        stateful_metrics: names whose values are shown as given. Other names
            are averaged over the steps by the bar, as in Keras.
        stateless_metrics: the opposite selection: only these names are
            averaged (pass ``()`` to show every value as given). Give at most
            one of the two.
        unit_name: ``"step"`` or e.g. ``"sample"``.
        dynamic: force (True/False) or auto-detect (None) in-place redrawing.
        ansi: colour codes; defaults to ``dynamic``.
        log_interval: minimum seconds between intermediate lines when not
            dynamic (10.0).
        order_key: optional sort key for the metric names; by default they are
            shown in order of first appearance.
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05,
                 stateful_metrics=None, stateless_metrics=None, unit_name="step",
                 dynamic=None, ansi=None, log_interval=10.0, order_key=None):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("Progbar: pass either `stateful_metrics` or "
                             "`stateless_metrics`, not both.")
        self.target = target
        self.width = int(width)
        self.verbose = verbose
        self.interval = float(interval)
        self.log_interval = float(log_interval)
        self.unit_name = unit_name
        self.order_key = order_key
        if stateless_metrics is not None:
            self.stateful_metrics = None
            self.stateless_metrics = set(stateless_metrics)
        else:
            self.stateful_metrics = set(stateful_metrics or ())
            self.stateless_metrics = None
        self._dynamic_display = dynamic_display_available() if dynamic is None else bool(dynamic)
        self._ansi = self._dynamic_display if ansi is None else bool(ansi)

        self._values = {}           # name -> [sum, count] (averaged) or value
        self._values_order = []
        self._seen_so_far = 0
        self._start = _now()
        self._last_update = None    # time of the last drawn line
        self._first_step = None     # (time, count) of the first update with count >= 1
        self._prev_total_width = 0
        self._finalized = False
        self._line_open = False     # a dynamic line is drawn but not yet ended

    # ------------------------------------------------------------ public
    def update(self, current, values=None, finalize=None):
        """Record progress ``current`` (steps done) and maybe redraw.

        ``values``: list of ``(name, value)`` pairs (or a dict).
        ``finalize``: last update of this bar; defaults to ``current >= target``.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        if isinstance(values, dict):
            values = list(values.items())
        self._record(current, values or (), finalize)
        now = _now()
        time_per_unit = self._time_per_unit(current, now)
        self._seen_so_far = current

        if self.verbose == 1:
            if (not finalize and not self._dynamic_display and self.target is not None
                    and current >= self.target):
                return      # the finalizing update follows; one line per bar end in logs
            if not finalize and self._last_update is not None:
                wait = self.interval if self._dynamic_display else max(self.interval,
                                                                       self.log_interval)
                if now - self._last_update < wait:
                    return
            self._draw_line(current, now, time_per_unit, finalize)
            self._last_update = now
        elif self.verbose == 2 and finalize:
            self._draw_summary(current, now, time_per_unit)
            self._last_update = now
        if finalize:
            self._finalized = True

    def add(self, n, values=None):
        """Advance by ``n`` steps."""
        self.update(self._seen_so_far + n, values)

    def end_line(self):
        """End a bar line left open by an interrupted run (Ctrl-C, an error),
        so that what is printed next starts on a new line.  Safe to call always."""
        if self._line_open:
            _write("\n")
            self._line_open = False

    # ------------------------------------------------------------ helpers
    def _is_averaged(self, name):
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in self.stateless_metrics

    def _record(self, current, values, finalize):
        for name, value in values:
            if name not in self._values_order:
                self._values_order.append(name)
                if self.order_key is not None:
                    self._values_order.sort(key=self.order_key)
            if self._is_averaged(name) and not finalize:
                n = max(current - self._seen_so_far, 1)
                acc = self._values.get(name)
                if isinstance(acc, list):
                    acc[0] += value * n
                    acc[1] += n
                else:
                    self._values[name] = [value * n, n]
            else:
                # stateful values, and the final update (the epoch's true value)
                self._values[name] = [value, 1]

    def _value_text(self, name):
        total, count = self._values[name]
        if isinstance(total, str):
            return total
        try:
            avg = np.mean(total) / max(1, count)
        except (TypeError, ValueError):
            return str(total)
        return format_value(avg)

    def _metrics_text(self):
        return "".join(f" - {k}: {self._value_text(k)}" for k in self._values_order)

    def _time_per_unit(self, current, now):
        if not current:
            return 0.0
        if self._first_step is None:
            self._first_step = (now, current)
            return (now - self._start) / current
        t0, c0 = self._first_step
        if current > c0:
            return (now - t0) / (current - c0)
        return (now - self._start) / current

    def _count_text(self, current):
        target = self.target
        digits = int(math.log10(target)) + 1
        return f"{current:>{digits}d}/{target}"

    def _draw_line(self, current, now, time_per_unit, finalize):
        bold = (lambda s: f"{_BOLD}{s}{_RESET}") if self._ansi else (lambda s: s)
        if self.target is not None and self.target > 0:
            count = self._count_text(current)
            done = min(self.width, max(0, int(self.width * current / self.target)))
            if self._ansi:
                bar = ""
                if done > 0:
                    bar += f"{_GREEN}{_DONE_CHAR * done}{_RESET}"
                bar += f"{_GREY}{_DONE_CHAR * (self.width - done)}{_RESET}"
            else:
                bar = _DONE_CHAR * done + _TODO_CHAR_PLAIN * (self.width - done)
            head = f"{bold(count)} {bar}"
            visible = len(count) + 1 + self.width
            if finalize:
                when = f"{now - self._start:.0f}s"
            else:
                when = format_eta(time_per_unit * (self.target - current))
        else:
            count = "%7d/Unknown" % current
            head = count
            visible = len(count)
            when = f"{now - self._start:.0f}s"
        tail = format_time_per_unit(time_per_unit, self.unit_name) + self._metrics_text()
        line = f"{head} {bold(when)}{tail}"
        visible += 1 + len(when) + len(tail)

        if self._dynamic_display:
            columns = terminal_columns()
            if columns is not None and visible > columns - 1:
                # one column spare: writing into the last column makes some
                # terminals wrap, and every later \r would then land a line lower
                line, visible = clip_line(line, columns - 1)
            pad = " " * max(0, self._prev_total_width - visible)
            if columns is not None:
                pad = pad[:max(0, columns - 1 - visible)]
            _write("\r" + line + pad + ("\n" if finalize else ""))
            self._line_open = not finalize
        else:
            _write(line + "\n")
        self._prev_total_width = visible

    def _draw_summary(self, current, now, time_per_unit):
        target = self.target if self.target else max(current, 1)
        digits = int(math.log10(target)) + 1
        line = (f"{current:>{digits}d}/{target} - {now - self._start:.0f}s -"
                f"{format_time_per_unit(time_per_unit, self.unit_name)}"
                f"{self._metrics_text()}")
        _write(line + "\n")
