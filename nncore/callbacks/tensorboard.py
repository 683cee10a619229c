"""``TensorBoard``: write training curves and weight histograms for TensorBoard.

What is written, where, and at which step -- the same tags and steps as
Keras 3's callback, so a TensorBoard page looks the same for either:

* ``<log_dir>/train``: ``epoch_<name>`` for every training log key
  (``epoch_loss``, ``epoch_accuracy``) plus ``epoch_learning_rate``, at step
  ``epoch`` (0-based); with ``update_freq="batch"`` or an integer N,
  ``batch_<name>`` (the running mean of the epoch so far, as in the progress
  bar) at step = the training batch number counted from 1 over the whole
  ``fit``, every N batches; with ``histogram_freq=N``, one histogram of each
  weight every N epochs (epochs 0, N, 2N...), tagged
  ``<weight path>/histogram`` -- ``sequential/dense/kernel/histogram`` for a
  Sequential model (Keras puts the model name in front), ``dense/kernel/...``
  for a functional one; with ``write_graph=True`` (the default) the tag
  ``keras``: the model's Keras config as JSON, which TensorBoard's Graphs tab
  draws as the model's conceptual graph (nncore has no op graph to write).
* ``<log_dir>/validation``: ``epoch_<name>`` for every ``val_<name>`` key (the
  prefix dropped, so train and validation curves share one chart), and
  ``evaluation_<name>_vs_iterations`` at step = ``optimizer.iterations`` after
  each validation pass (and after ``model.evaluate(..., callbacks=[tb])``).

One difference from Keras on purpose: with an integer ``update_freq`` N,
Keras (through ``tf.summary.record_if``) also drops the epoch scalars, the
histograms and the evaluation scalars of every epoch whose last batch number
is not a multiple of N; nncore writes them for every epoch.
``tools/tf_check_tensorboard.py`` compares the tags and steps of both.

The files are written with the ``tensorboard`` package's own event-file writer
and summary protos (``pip install 'nncore-keras[tensorboard]'``).  It is the
one package a learner needs anyway to look at the logs (``tensorboard
--logdir logs``), it does not need TensorFlow, and its ``*_pb`` summary
functions give the same tensor-valued summaries ``tf.summary`` writes.  Event
files are append-only streams that TensorBoard reads while they grow, so they
are not written atomically like model files; the writer is flushed at every
epoch end and closed when ``fit`` ends (also after Ctrl-C or an error).

Per-batch scalars need per-batch callbacks, so with ``update_freq`` other than
``"epoch"`` the compiled training loop runs one step at a time and returns to
Python after each (a little slower); with the default ``"epoch"`` it keeps its
chunked pace.
"""
import json
import numbers
import os
import time

import numpy as np

from nncore.callbacks.callback import Callback

_INSTALL = "pip install 'nncore-keras[tensorboard]'"


def _tensorboard_modules():
    """The tensorboard pieces this callback writes with (ImportError if absent)."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.histogram.summary_v2 import histogram_pb
        from tensorboard.plugins.scalar.summary_v2 import scalar_pb
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        from tensorboard.util import tensor_util
    except ImportError as e:
        raise ImportError(
            "keras.callbacks.TensorBoard needs the tensorboard package, which is an optional "
            f"extra of nncore: {_INSTALL} (or pip install tensorboard). "
            f"Import failed with: {e}") from e
    return dict(event_pb2=event_pb2, summary_pb2=summary_pb2, histogram_pb=histogram_pb,
                scalar_pb=scalar_pb, EventFileWriter=EventFileWriter, tensor_util=tensor_util)


def _check_freq(name, value, allow_zero=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or value < (0 if allow_zero else 1):
        least = "0 (off)" if allow_zero else "1"
        raise ValueError(f"TensorBoard: {name} must be an integer >= {least}, got {value!r}")
    return int(value)


def _refuse(name, value, default, why):
    if value != default and value is not default:
        raise ValueError(f"TensorBoard: {name}={value!r} is not supported in nncore ({why}); "
                         f"leave {name} at its default {default!r}")


def _scalar(value):
    """A log value as a float, or None when it is not one number (then it is skipped)."""
    if isinstance(value, (str, bytes)):
        return None
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return float(arr) if arr.ndim == 0 else None


class TensorBoard(Callback):
    """Write logs that TensorBoard shows: loss/metric curves, histograms, the model.

    Start TensorBoard on the folder (``tensorboard --logdir logs``) and open the
    address it prints.

    Args:
        log_dir: the folder of this run's logs (``"logs"``); ``train`` and
            ``validation`` sub-folders are made in it.
        histogram_freq: write a histogram of every weight every this many
            epochs (0: never).
        write_graph: write the model's Keras config (the ``keras`` tag, drawn
            as a conceptual graph).  nncore has no op graph, so that is all.
        write_images: weights as images -- not supported (must stay False).
        write_steps_per_second: also write ``epoch_steps_per_second`` (and
            ``batch_steps_per_second`` when writing per batch).
        update_freq: ``"epoch"`` (scalars once per epoch), ``"batch"`` or an
            integer N (also ``batch_<name>`` scalars every N training batches).
        profile_batch: profiling -- not supported (must stay 0).
        embeddings_freq: the embedding projector -- not supported (must stay 0).
        embeddings_metadata: not supported (must stay None).

    Example::

        tb = keras.callbacks.TensorBoard(log_dir="logs/run1", histogram_freq=1)
        model.fit(x, y, epochs=10, validation_split=0.2, callbacks=[tb])

    Needs the ``tensorboard`` package (``pip install 'nncore-keras[tensorboard]'``).
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0,
                 embeddings_freq=0, embeddings_metadata=None):
        super().__init__()
        # the missing package is said at once, not at the end of the first epoch
        self._tb = _tensorboard_modules()
        try:
            self.log_dir = os.fspath(log_dir)
        except TypeError:
            raise TypeError(f"TensorBoard: log_dir must be a path (str or os.PathLike), "
                            f"got {type(log_dir).__name__}") from None
        if not self.log_dir:
            raise ValueError("TensorBoard: log_dir must not be empty")
        self.histogram_freq = _check_freq("histogram_freq", histogram_freq)
        if update_freq == "batch":
            update_freq = 1
        elif update_freq != "epoch":
            if isinstance(update_freq, str):
                raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or an "
                                 f"integer >= 1, got {update_freq!r}")
            update_freq = _check_freq("update_freq", update_freq, allow_zero=False)
        self.update_freq = update_freq
        self.write_graph = bool(write_graph)
        self.write_steps_per_second = bool(write_steps_per_second)
        _refuse("write_images", write_images, False,
                "weights are not drawn as images; histogram_freq gives their histograms")
        _refuse("profile_batch", profile_batch, 0, "nncore has no profiler trace to write")
        _refuse("embeddings_freq", embeddings_freq, 0, "the embedding projector is not built")
        _refuse("embeddings_metadata", embeddings_metadata, None,
                "the embedding projector is not built")
        self.write_images = False
        self.profile_batch = 0
        self.embeddings_freq = 0
        self.embeddings_metadata = None
        self._writers = {}
        self._in_fit = False
        self._global_train_batch = 0
        self._batch_start = 0.0
        self._epoch_start = 0.0
        self._epoch_start_iterations = 0

    # ---------------------------------------------------------------- writers
    @property
    def _train_dir(self):
        return os.path.join(self.log_dir, "train")

    @property
    def _val_dir(self):
        return os.path.join(self.log_dir, "validation")

    def _writer(self, which):
        # made on first use (as Keras does): an evaluate-only run makes no
        # empty train file
        w = self._writers.get(which)
        if w is None:
            folder = self._train_dir if which == "train" else self._val_dir
            try:
                w = self._tb["EventFileWriter"](folder)
            except OSError as e:
                raise OSError(f"TensorBoard: cannot write logs in {folder!r}: {e}") from e
            self._writers[which] = w
        return w

    def _write(self, which, summary, step):
        event = self._tb["event_pb2"].Event(wall_time=time.time(), step=int(step),
                                            summary=summary)
        self._writer(which).add_event(event)

    def _scalar(self, which, tag, value, step):
        value = _scalar(value)
        if value is not None:
            self._write(which, self._tb["scalar_pb"](tag, value), step)

    def _flush(self):
        for w in self._writers.values():
            w.flush()

    def _close(self):
        writers, self._writers = self._writers, {}
        for w in writers.values():
            w.close()

    def needs_batch_hooks(self, mode="train"):
        super().needs_batch_hooks(mode)          # checks mode
        return mode == "train" and self.update_freq != "epoch"

    # ---------------------------------------------------------------- the model
    def set_model(self, model):
        super().set_model(model)
        self._close()               # a new fit: new event files, as in Keras

    def _weight_prefix(self):
        # Keras 3 names a Sequential model's variables "<model>/<layer>/<weight>"
        # and a functional model's "<layer>/<weight>"
        from nncore.models.functional import Functional
        model = self.model
        return "" if isinstance(model, Functional) else f"{model.name}/"

    def _write_model_config(self):
        """The ``keras`` tag Keras writes: the model's config as JSON, which the
        Graphs tab draws.  Skipped with a warning if the model has no Keras config
        (as Keras does when ``to_json`` fails)."""
        import warnings

        from nncore.saving import keras_files
        try:
            config, _ = keras_files.sequential_config(self.model)
        except ValueError as e:
            warnings.warn(f"TensorBoard: the model graph is not written: {e}", stacklevel=3)
            return
        pb2 = self._tb["summary_pb2"]
        meta = pb2.SummaryMetadata()
        meta.plugin_data.plugin_name = "graph_keras_model"
        meta.plugin_data.content = b"1"
        tensor = self._tb["tensor_util"].make_tensor_proto(
            json.dumps(config).encode("utf-8"))
        summary = pb2.Summary()
        summary.value.add(tag="keras", metadata=meta, tensor=tensor)
        self._write("train", summary, 0)

    def _write_histograms(self, epoch):
        prefix = self._weight_prefix()
        for layer in self.model.layers:
            for weight in layer.weights:
                tag = f"{prefix}{weight.path}".replace(":", "_") + "/histogram"
                self._write("train", self._tb["histogram_pb"](tag, np.asarray(weight.value)),
                            epoch)

    def _learning_rate(self):
        opt = getattr(self.model, "optimizer", None)
        lr = getattr(opt, "learning_rate", None)
        return _scalar(lr)

    def _iterations(self):
        opt = getattr(self.model, "optimizer", None)
        return int(np.asarray(getattr(opt, "iterations", 0)).item()) if opt is not None else 0

    # ---------------------------------------------------------------- hooks
    def on_train_begin(self, logs=None):
        self._in_fit = True
        self._global_train_batch = 0
        if self.write_graph:
            self._write_model_config()

    def on_epoch_begin(self, epoch, logs=None):
        if self.write_steps_per_second:
            self._epoch_start = time.perf_counter()
            self._epoch_start_iterations = self._iterations()

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        step = self._global_train_batch
        if self.update_freq == "epoch" or step % self.update_freq:
            return
        if self.write_steps_per_second:
            elapsed = max(time.perf_counter() - self._batch_start, 1e-9)
            self._scalar("train", "batch_steps_per_second", 1.0 / elapsed, step)
        for name, value in (logs or {}).items():
            self._scalar("train", f"batch_{name}", value, step)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        if logs:
            lr = self._learning_rate()
            if lr is not None:
                train["learning_rate"] = lr
            if self.write_steps_per_second:
                elapsed = max(time.perf_counter() - self._epoch_start, 1e-9)
                train["steps_per_second"] = \
                    (self._iterations() - self._epoch_start_iterations) / elapsed
            for name, value in train.items():
                self._scalar("train", f"epoch_{name}", value, epoch)
            for name, value in val.items():
                self._scalar("validation", f"epoch_{name}", value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_histograms(epoch)
        # so that a running tensorboard shows each epoch as it ends
        self._flush()

    def on_test_end(self, logs=None):
        if getattr(self.model, "optimizer", None) is None:
            return
        step = self._iterations()
        for name, value in (logs or {}).items():
            self._scalar("validation", f"evaluation_{name}_vs_iterations", value, step)
        if not self._in_fit:        # model.evaluate(callbacks=[tb]) on its own
            self._close()

    def on_train_end(self, logs=None):
        self._in_fit = False
        self._close()
