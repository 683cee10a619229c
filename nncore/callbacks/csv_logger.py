"""``CSVLogger``: stream epoch results to a CSV file.

Like Keras: the first column is ``epoch`` (0-based), then the log keys sorted;
if the first epoch has no ``val_*`` keys, ``val_<key>`` columns are added
anyway (filled with ``NA`` while there is no validation, e.g. with
``validation_freq > 1``).  With ``append=True`` an existing non-empty file is
continued without a second header.  Lines end in ``\\n`` (Keras's csv dialect
writes ``\\r\\n``).
"""
import csv
import os

import numpy as np

from nncore.callbacks.callback import Callback
from nncore.models.interrupt import DeferredInterrupt


def _cell(value):
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(map(str, np.asarray(value).ravel().tolist())) + "]"
    return value


class CSVLogger(Callback):
    """Write one CSV row per epoch.

    Args:
        filename: path of the CSV file.
        separator: field separator (",").
        append: continue an existing file instead of overwriting it.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys = None
        self.writer = None
        self.csv_file = None
        self.append_header = True

    def on_train_begin(self, logs=None):
        if self.append:
            self.append_header = not (os.path.exists(self.filename)
                                      and os.path.getsize(self.filename) > 0)
            mode = "a"
        else:
            self.append_header = True
            mode = "w"
        self._close()
        self.csv_file = open(self.filename, mode, newline="", encoding="utf-8")
        self.keys = None
        self.writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.csv_file is None:           # used without on_train_begin
            self.on_train_begin()
        if self.keys is None:
            self.keys = sorted(logs.keys())
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += ["val_" + k for k in self.keys]
        # Ctrl-C waits until the row is written and flushed: the file never
        # ends in half a row (fit then closes it in on_train_end)
        with DeferredInterrupt():
            if self.writer is None:
                self.writer = csv.writer(self.csv_file, delimiter=self.sep, lineterminator="\n")
                if self.append_header:
                    self.writer.writerow(["epoch"] + self.keys)
            self.writer.writerow([epoch] + [_cell(logs.get(k, "NA")) for k in self.keys])
            self.csv_file.flush()

    def on_train_end(self, logs=None):
        self._close()
        self.writer = None

    def _close(self):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
