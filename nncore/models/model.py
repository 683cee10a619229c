"""Model: compile / fit / evaluate / predict, with Keras 3's names and defaults.

The training loop, step by step (``_train_step``, the per-batch path):

    1. forward through every layer; the output layer stops at its
       pre-activation z when the loss can start from logits (softmax +
       cross-entropy, sigmoid + binary cross-entropy)
    2. loss and dL/d(output) -- or dL/dz = (p - y)/batch -- in one kernel
    3. backward through the layers in reverse, each filling its ``grads``
    4. regularization penalties join the loss, their gradients the grads
    5. the optimizer updates every trainable weight in place

``fit`` runs that per batch for teaching and for anything unusual, and hands
whole runs of steps to the compiled loop (``nncore.models.fused``) when the
model is a plain stack the loop understands: same kernels, same order of
operations, same results, without returning to Python between steps.
"""
import math
import numbers
import time

import numpy as np

from nncore import losses as nn_losses
from nncore import metrics as nn_metrics
from nncore import naming
from nncore import optimizers as nn_optimizers
from nncore import random as nn_random
from nncore.models import data as D
from nncore.models.interrupt import DeferredInterrupt


class Model:
    def __init__(self, name=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected argument(s) {', '.join(kwargs)}")
        self.name = name or naming.unique_name(naming.to_snake_case(type(self).__name__))
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._metric_specs = []
        self._weighted_metric_specs = []
        self._metrics = None
        self.use_fused = True        # let fit() use the compiled loop when it can

    # ------------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        """Choose the optimizer, the loss and the metrics (Keras's defaults)."""
        if loss_weights is not None:
            raise ValueError("compile: loss_weights is not supported (single-output models)")
        # resolve everything before changing anything: a refused compile()
        # leaves the previous configuration in place
        optimizer = nn_optimizers.get(optimizer)
        loss = nn_losses.get(loss) if loss is not None else None
        if metrics is None:
            metrics = []
        elif isinstance(metrics, (str, nn_metrics.Metric)) or not isinstance(metrics, (list, tuple)):
            metrics = [metrics]
        if weighted_metrics is None:
            weighted_metrics = []
        elif isinstance(weighted_metrics, (str, nn_metrics.Metric)):
            weighted_metrics = [weighted_metrics]
        for m in list(metrics) + list(weighted_metrics):  # fail early on unknown names
            nn_metrics.get(m, loss, n_outputs=2)
        self.optimizer, self.loss = optimizer, loss
        # As in Keras, sample_weight/class_weight apply to the loss and to
        # weighted_metrics, never to the plain metrics.
        self._metric_specs = list(metrics)
        self._weighted_metric_specs = list(weighted_metrics)
        self._metrics = None
        self.compiled = True

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"You must call compile() before {what}(): e.g. "
                               "model.compile(optimizer='adam', "
                               "loss='sparse_categorical_crossentropy', metrics=['accuracy'])")
        if self.loss is None and what in ("fit", "evaluate", "train_on_batch", "test_on_batch"):
            raise ValueError(f"{what}(): the model was compiled without a loss; "
                             "pass loss=... to compile()")

    def _resolve_metrics(self):
        if self._metrics is None:
            n_out = self.output_units
            metrics = [nn_metrics.get(m, self.loss, n_outputs=n_out)
                       for m in self._metric_specs]
            for spec in self._weighted_metric_specs:
                m = nn_metrics.get(spec, self.loss, n_outputs=n_out)
                if isinstance(spec, str):
                    m.name = "weighted_" + m.name
                m.weighted = True
                metrics.append(m)
            for m in metrics:
                kind = getattr(m, "target_kind", None)
                if kind == "sparse" and self.loss.target_kind != "sparse":
                    raise ValueError(f"metric {m.name!r} needs integer labels, but the "
                                     f"loss {self.loss.name} takes one-hot targets")
                if kind == "dense" and self.loss.target_kind == "sparse" and \
                        not isinstance(m, nn_metrics.BinaryAccuracy):
                    raise ValueError(f"metric {m.name!r} needs one-hot targets, but the "
                                     f"loss {self.loss.name} takes integer labels")
            self._metrics = metrics      # only once every metric fits the loss
        return self._metrics

    @property
    def metrics_names(self):
        return ["loss"] + [m.name for m in (self._metrics or [])]

    # ------------------------------------------------------------- data
    def _prepare_x(self, x, what="x"):
        """x converted once, the model built for it, its shape checked."""
        x = D.as_features(x, self.dtype, what=what)
        self._ensure_built_for(x)
        self._check_input(x, what=what)
        return x

    def _prepare(self, x, y, sample_weight=None, class_weight=None, what=""):
        x = self._prepare_x(x, what=f"{what}x")
        if y is None:
            raise ValueError(f"{what}y is None: training and evaluation need targets")
        D.check_same_length(x, y, f"{what}x", f"{what}y")
        t = self.loss.prepare_targets(y, self.output_units, self.dtype, what=f"{what}y")
        sw = D.sample_weights(sample_weight, class_weight, np.asarray(t), x.shape[0], self.dtype)
        return x, t, sw

    # ------------------------------------------------------------- one step
    def _loss_path(self):
        return self.loss.path(self.output_activation)

    def _step_forward_loss(self, xb, tb, swb, training, want_grad):
        """Forward + loss for one batch; returns (loss_sum, predictions, grad, path)."""
        path = self._loss_path()
        values = self._forward(xb, training=training, logits_last=(path == "logits"))
        n = xb.shape[0]
        grad = self._buffer("grad", values.shape) if want_grad else None
        probs = self._buffer("probs", values.shape) if path != "probs" else None
        loss_sum = self.loss.compute(tb, values, path, grad, self.loss.scale(n), swb, probs)
        preds = probs if path == "logits" else values
        return loss_sum, preds, grad, path

    def _train_step(self, xb, tb, swb):
        """One optimizer step on one batch; returns (batch loss, predictions)."""
        loss_sum, preds, grad, path = self._step_forward_loss(xb, tb, swb, True, True)
        self._backward(grad, from_logits=(path == "logits"))
        reg = self._regularization(add_grads=True)
        variables, grads = self._trainable_pairs()
        self.optimizer.apply(grads, variables)
        return loss_sum * self.loss.scale(xb.shape[0]) + reg, preds

    def _count_metrics(self, metrics, tb, preds, swb):
        n = float(tb.shape[0])
        w = n if swb is None else float(swb.astype(np.float64).sum())
        for m in metrics:
            if m.weighted:
                m.add(m.count_correct(tb, preds, swb), w)
            else:
                m.add(m.count_correct(tb, preds, None), n)

    def _logs(self, loss_total, count, metrics):
        logs = {m.name: float(m.result()) for m in metrics}
        logs["loss"] = float(loss_total / count) if count else 0.0
        return logs

    def _fresh_metrics(self):
        """Empty copies of the compiled metrics, for one evaluation or batch."""
        return [m.fresh() for m in self._resolve_metrics()]

    # ------------------------------------------------------------- fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto",
            callbacks=None, validation_split=0.0, validation_data=None, shuffle=True,
            class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None,
            validation_freq=1):
        """Train for ``epochs`` epochs; returns a History (``.history`` dict)."""
        from nncore.callbacks import CallbackList

        self._require_compiled("fit")
        batch_size = D.check_positive_int(32 if batch_size is None else batch_size, "batch_size")
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
            raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, numbers.Integral) \
                or initial_epoch < 0:
            raise ValueError(f"initial_epoch must be an integer >= 0, got {initial_epoch!r}")
        verbose = _verbosity(verbose)
        if not isinstance(validation_split, numbers.Real) or not 0 <= validation_split < 1:
            raise ValueError(f"validation_split must be a number in [0, 1), got {validation_split!r}")
        if shuffle not in (True, False, "batch"):
            raise ValueError(f"shuffle must be True, False or 'batch', got {shuffle!r}")
        validation_freq = D.check_positive_int(validation_freq, "validation_freq")
        steps_per_epoch = D.check_positive_int(steps_per_epoch, "steps_per_epoch", allow_none=True)
        validation_steps = D.check_positive_int(validation_steps, "validation_steps", allow_none=True)

        x, t, sw = self._prepare(x, y, sample_weight, class_weight)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val) or "
                                 "(x_val, y_val, sample_weight_val)")
            vsw = validation_data[2] if len(validation_data) == 3 else None
            val = self._prepare(validation_data[0], validation_data[1], vsw, what="validation_data ")
        elif validation_split:
            # Keras: the split is taken from the end, before any shuffling
            split_at = int(math.floor(x.shape[0] * (1.0 - validation_split)))
            if split_at == 0 or split_at == x.shape[0]:
                raise ValueError(f"validation_split={validation_split} leaves an empty "
                                 f"training or validation set for {x.shape[0]} samples")
            val = (x[split_at:], t[split_at:], None if sw is None else sw[split_at:])
            x, t, sw = x[:split_at], t[:split_at], None if sw is None else sw[:split_at]
        val_bs = D.check_positive_int(validation_batch_size or batch_size, "validation_batch_size")

        metrics = self._resolve_metrics()
        variables, _ = self._trainable_pairs()
        if not self.optimizer.built:
            self.optimizer.build(variables)
        n = x.shape[0]
        steps = steps_per_epoch or math.ceil(n / batch_size)
        cbs = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                           model=self, verbose=verbose, epochs=epochs, steps=steps)
        self.stop_training = False
        runner = self._epoch_runner(x, t, sw, batch_size, cbs)
        logs = {}
        cbs.on_train_begin()
        try:
            for epoch in range(initial_epoch, epochs):
                for m in metrics:
                    m.reset_state()
                cbs.on_epoch_begin(epoch)
                if shuffle is True:
                    order = nn_random.generator().permutation(n)
                elif shuffle == "batch":
                    starts = nn_random.generator().permutation(steps) * batch_size
                    order = np.concatenate([np.arange(s, min(s + batch_size, n)) for s in starts])
                else:
                    order = np.arange(n)
                logs = runner(order, steps, metrics)
                if val is not None and (epoch + 1) % validation_freq == 0:
                    val_logs = self._evaluate_arrays(*val, val_bs, cbs, verbose=0,
                                                     steps=validation_steps)
                    logs.update({"val_" + k: v for k, v in val_logs.items()})
                cbs.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        finally:
            # also on KeyboardInterrupt: weights are those of the last whole step
            cbs.on_train_end(logs)
        return self.history

    def _epoch_runner(self, x, t, sw, batch_size, cbs):
        """The function that runs one epoch: compiled when possible."""
        if self.use_fused and not cbs.needs_batch_hooks():
            from nncore.models import fused
            runner = fused.make_epoch_runner(self, x, t, sw, batch_size, cbs)
            if runner is not None:
                return runner
        return lambda order, steps, metrics: self._train_epoch_python(
            x, t, sw, order, batch_size, steps, metrics, cbs)

    def _train_epoch_python(self, x, t, sw, order, batch_size, steps, metrics, cbs):
        hooks = cbs.needs_batch_hooks()
        totals = [0.0, 0]          # loss sum, samples
        progress = _Throttle()
        from nncore import _info
        from nncore.models.step_threads import StepThreadChooser
        # Long steps (a CNN's are milliseconds) are timed per thread count as
        # in the fused loop: on a busy machine one thread can beat a team
        # whose members wait for each other.  Results do not depend on it.
        team = _info.get_num_threads()
        chooser = self.__dict__.get("_python_chooser")
        if chooser is None or chooser.candidates[0] != team:
            chooser = self._python_chooser = StepThreadChooser(team) if team > 1 else None
        try:
            with DeferredInterrupt() as interrupt:
                for step in range(steps):
                    interrupt.raise_if_pending()
                    if chooser is not None:
                        threads = chooser.pick()
                        _info.set_num_threads(threads)
                        start = time.perf_counter()
                    self._python_step(x, t, sw, order, batch_size, step, steps, metrics, cbs,
                                      hooks, progress, totals)
                    if chooser is not None:
                        chooser.record(threads, time.perf_counter() - start, 1)
                    if self.stop_training:
                        break
        finally:
            if chooser is not None:
                _info.set_num_threads(team)
        return self._logs(totals[0], totals[1], metrics)

    def _python_step(self, x, t, sw, order, batch_size, step, steps, metrics, cbs, hooks,
                     progress, totals):
        """One step of the per-batch path, with its callbacks and running totals."""
        idx = order[(step * batch_size) % x.shape[0]:][:batch_size]
        xb, tb = x[idx], t[idx]
        swb = None if sw is None else sw[idx]
        if hooks:
            cbs.on_train_batch_begin(step)
        batch_loss, preds = self._train_step(xb, tb, swb)
        totals[0] += batch_loss * xb.shape[0]
        totals[1] += xb.shape[0]
        self._count_metrics(metrics, tb, preds, swb)
        if hooks:
            cbs.on_train_batch_end(step, self._logs(totals[0], totals[1], metrics))
        elif progress.due() or step == steps - 1:
            cbs.update_progress(step + 1, self._logs(totals[0], totals[1], metrics))

    # ------------------------------------------------------------- evaluate
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """Loss and metrics on (x, y): [loss, metric...] (a scalar without metrics)."""
        from nncore.callbacks import CallbackList

        self._require_compiled("evaluate")
        batch_size = D.check_positive_int(32 if batch_size is None else batch_size, "batch_size")
        steps = D.check_positive_int(steps, "steps", allow_none=True)
        verbose = _verbosity(verbose)
        x, t, sw = self._prepare(x, y, sample_weight)
        self._resolve_metrics()
        n_steps = math.ceil(x.shape[0] / batch_size)
        cbs = CallbackList(callbacks, add_history=False, add_progbar=verbose != 0,
                           model=self, verbose=verbose, epochs=1, steps=n_steps)
        logs = self._evaluate_arrays(x, t, sw, batch_size, cbs, verbose, steps)
        if return_dict:
            return logs
        names = ["loss"] + [m.name for m in self._metrics]
        values = [logs[k] for k in names]
        return values[0] if len(values) == 1 else values

    def _evaluate_arrays(self, x, t, sw, batch_size, cbs, verbose=0, steps=None):
        metrics = self._fresh_metrics()
        hooks = cbs.needs_test_hooks()
        n = x.shape[0]
        # Rows are independent, so big internal batches give the same numbers
        # (mean loss over samples) much faster -- unless a callback wants each
        # user-sized batch, or the loss is a per-batch sum.
        chunk = batch_size
        if not hooks and self.loss.reduction == "sum_over_batch_size":
            chunk = max(batch_size, self._chunk_rows(2048))
        total_steps = steps or math.ceil(n / batch_size)
        limit = min(n, total_steps * batch_size)
        cbs.on_test_begin()
        loss_total, count = 0.0, 0
        reg = self._regularization(add_grads=False)
        progress = _Throttle()
        for start in range(0, limit, chunk):
            stop = min(start + chunk, limit)
            xb, tb = x[start:stop], t[start:stop]
            swb = None if sw is None else sw[start:stop]
            step = start // batch_size
            if hooks:
                cbs.on_test_batch_begin(step)
            loss_sum, preds, _, _ = self._step_forward_loss(xb, tb, swb, False, False)
            nb = stop - start
            loss_total += loss_sum * self.loss.scale(nb) * nb + reg * nb
            count += nb
            self._count_metrics(metrics, tb, preds, swb)
            logs = self._logs(loss_total, count, metrics)
            if hooks:
                cbs.on_test_batch_end(step, logs)
            elif verbose and (progress.due() or stop == limit):
                cbs.update_progress(math.ceil(stop / batch_size), logs)
        logs = self._logs(loss_total, count, metrics)
        cbs.on_test_end(logs)
        return logs

    # ------------------------------------------------------------- predict
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for x, as one array (rows in the order of x)."""
        from nncore.callbacks import CallbackList

        batch_size = D.check_positive_int(32 if batch_size is None else batch_size, "batch_size")
        verbose = _verbosity(verbose)
        steps = D.check_positive_int(steps, "steps", allow_none=True)
        x = self._prepare_x(x)
        n = x.shape[0] if steps is None else min(x.shape[0], steps * batch_size)
        n_steps = math.ceil(n / batch_size)
        cbs = CallbackList(callbacks, add_history=False, add_progbar=verbose != 0,
                           model=self, verbose=verbose, epochs=1, steps=n_steps)
        hooks = cbs.needs_predict_hooks()
        chunk = batch_size if hooks else max(batch_size, self._chunk_rows(4096))
        out = np.empty((n,) + self._output_row_shape(), dtype=self.dtype)
        cbs.on_predict_begin()
        progress = _Throttle()
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            if hooks:
                cbs.on_predict_batch_begin(start // batch_size)
            out[start:stop] = self._forward(x[start:stop], training=False)
            if hooks:
                cbs.on_predict_batch_end(start // batch_size, {"outputs": out[start:stop]})
            elif verbose and (progress.due() or stop == n):
                cbs.update_progress(math.ceil(stop / batch_size), {})
        cbs.on_predict_end()
        return out

    def _chunk_rows(self, cap, budget=1 << 24):
        """Rows per internal evaluate/predict chunk: ``cap``, or fewer when one
        sample's activations are large (a CNN keeps ~50 K values per image),
        so that a chunk's layer buffers stay within ``budget`` values."""
        per_row = 0
        for layer in getattr(self, "layers", []):
            shape = getattr(layer, "output_shape", None) or ()
            if len(shape) > 1 and all(d is not None for d in shape[1:]):
                per_row += int(np.prod(shape[1:]))
        return max(1, min(cap, budget // max(per_row, 1)))

    def _output_row_shape(self):
        """Shape of one sample's output: (units,), or e.g. (28, 28, 32) for a
        model that ends in feature maps."""
        shape = getattr(self, "output_shape", None)
        if shape is not None and len(shape) > 2 and all(d is not None for d in shape[1:]):
            return tuple(shape[1:])
        return (self.output_units,)

    def __call__(self, x, training=False):
        x = self._prepare_x(x)
        return np.array(self._forward(x, training=training), copy=True)

    # ------------------------------------------------------------- on_batch
    def reset_metrics(self):
        for m in self._metrics or []:
            m.reset_state()

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on exactly this batch; returns that batch's loss
        (and metrics), as Keras 3 does (per batch, not a running mean)."""
        self._require_compiled("train_on_batch")
        x, t, sw = self._prepare(x, y, sample_weight, class_weight)
        variables, _ = self._trainable_pairs()
        if not self.optimizer.built:
            self.optimizer.build(variables)
        metrics = self._fresh_metrics()
        batch_loss, preds = self._train_step(x, t, sw)
        self._count_metrics(metrics, t, preds, sw)
        st = {"loss": batch_loss * x.shape[0], "count": x.shape[0], "metrics": metrics}
        return self._batch_result(st, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._require_compiled("test_on_batch")
        x, t, sw = self._prepare(x, y, sample_weight)
        metrics = self._fresh_metrics()
        loss_sum, preds, _, _ = self._step_forward_loss(x, t, sw, False, False)
        loss = loss_sum * self.loss.scale(x.shape[0]) + self._regularization(add_grads=False)
        self._count_metrics(metrics, t, preds, sw)
        st = {"loss": loss * x.shape[0], "count": x.shape[0], "metrics": metrics}
        return self._batch_result(st, return_dict)

    def _batch_result(self, st, return_dict):
        logs = self._logs(st["loss"], st["count"], st["metrics"])
        if return_dict:
            return logs
        values = [logs["loss"]] + [logs[m.name] for m in st["metrics"]]
        return values[0] if len(values) == 1 else values

    def predict_on_batch(self, x):
        return self(x)

    def trace_step(self, x, y, apply=False):
        """Record one training step layer by layer (see nncore.utils.trace)."""
        from nncore.utils.teaching import trace
        return trace(self, x, y, apply=apply)

    # ------------------------------------------------------------- saving
    def save(self, filepath, overwrite=True):
        from nncore.saving import save_model
        save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        from nncore.saving import save_weights
        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        from nncore.saving import load_weights
        load_weights(self, filepath)


class _Throttle:
    """True at most every ``interval`` seconds: progress bars must not slow training."""

    def __init__(self, interval=0.05):
        self.interval = interval
        self.last = time.perf_counter()

    def due(self):
        now = time.perf_counter()
        if now - self.last >= self.interval:
            self.last = now
            return True
        return False


def _verbosity(verbose):
    if verbose == "auto":
        return 1
    if verbose in (0, 1, 2) and not isinstance(verbose, float):
        return int(verbose)
    raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
