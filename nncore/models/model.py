"""Model: compile / fit / evaluate / predict, with Keras 3's names and defaults.

The training loop, step by step (``_train_step``, the per-batch path):

    1. forward through every layer; the output layer stops at its
       pre-activation z when the loss can start from logits (softmax +
       cross-entropy, sigmoid + binary cross-entropy)
    2. loss and dL/d(output) -- or dL/dz = (p - y)/batch -- in one kernel
    3. backward through the layers in reverse, each filling its ``grads``
    4. regularization penalties join the loss, their gradients the grads
    5. the optimizer updates every trainable weight in place

``fit`` describes that step once as a step plan (``nncore.models.plan``) and
runs chunks of steps through ``kernels().run_steps`` -- the compiled loop, or
its NumPy twin under ``set_backend('numpy')`` -- without returning to Python
between steps.  A model the plan cannot describe trains here, one batch at a
time: same kernels, same order of operations, same results.  Both go through
one epoch driver (``nncore.models.loop``).

Thread safety: ``predict``, ``evaluate``, ``test_on_batch`` and calling the
model may run in several threads at once (layers return new arrays and keep
their per-call state per thread); ``fit`` and ``train_on_batch`` change the
weights and are refused while another thread trains the same model.
"""
import contextlib
import math
import numbers
import threading
import time
import warnings

import numpy as np

from nncore import losses as nn_losses
from nncore import metrics as nn_metrics
from nncore import naming
from nncore import optimizers as nn_optimizers
from nncore import random as nn_random
from nncore.models import data as D
from nncore.models.rollback import all_or_nothing


class Model:
    """The training machinery shared by every model: compile, fit, evaluate, predict.

    Build models with ``Sequential([...])`` (a stack of layers) or
    ``Model(inputs, outputs)`` from symbolic tensors (``nncore.models.
    functional``).  Subclassing ``Model`` with your own ``call()`` is not
    supported: nncore's training loop needs the layer graph it can plan and
    run backwards.  Everything here has Keras 3's names and defaults.

    A training step (what ``fit`` repeats ``ceil(n / batch_size)`` times per epoch):

    1. forward: ``p = model(x_batch)``;
    2. loss: ``L = mean_i loss(y_i, p_i)`` and its gradient ``dL/dp``;
    3. backward: every layer turns ``dL/d(output)`` into ``dL/d(weights)`` and
       ``dL/d(input)``;
    4. the optimizer moves each weight a little against its gradient.

    Args:
        name: the model's name (default: ``sequential``, ``sequential_1``, ...).

    Example::

        model = keras.Sequential([keras.Input(shape=(784,)),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        history = model.fit(x_train, y_train, epochs=5, validation_split=0.2)
        loss, acc = model.evaluate(x_test, y_test)
    """

    def __new__(cls, *args, **kwargs):
        # keras.Model(inputs, outputs): the functional API builds the model
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            from nncore.models.functional import Functional
            return super().__new__(Functional)
        return super().__new__(cls)

    def __init__(self, name=None, **kwargs):
        if not hasattr(self, "_forward"):
            raise TypeError(
                f"{type(self).__name__}: nncore cannot run a Model without a layer graph "
                "(subclassing keras.Model with call() is not supported yet); build it "
                "with keras.Sequential([...]) or keras.Model(inputs, outputs)")
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
        self.use_fused = True        # let fit() use the step plan when it can
        self._compile_generation = 0  # bumped by compile(): fit re-plans when it changes
        self._training_lock = threading.Lock()
        self._observers = []         # step observers (nncore.utils.trace): see observe()

    # copy.deepcopy(model) works: the lock and observers are per object, not copied
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_training_lock", None)
        state["_observers"] = []
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._training_lock = threading.Lock()

    # ------------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        """Choose the optimizer, the loss and the metrics before training.

        Args:
            optimizer: a name (``"sgd"``, ``"rmsprop"``, ``"adagrad"``, ``"adam"``;
                default ``"rmsprop"`` as in Keras) or an optimizer object such as
                ``keras.optimizers.Adam(learning_rate=1e-3)``.
            loss: a name (``"sparse_categorical_crossentropy"`` for integer labels,
                ``"categorical_crossentropy"`` for one-hot rows,
                ``"binary_crossentropy"``, ``"mse"``) or a loss object.
            metrics: list of metric names or objects, e.g. ``["accuracy"]``
                ("accuracy" picks the right accuracy for the loss).
            weighted_metrics: metrics that also use ``sample_weight`` / ``class_weight``.
            loss_weights: not supported (single-output models); must stay None.
            run_eagerly, steps_per_execution, jit_compile, auto_scale_loss: accepted
                for Keras compatibility and ignored (nncore always runs on the CPU).

        A refused call (unknown name, ...) raises and leaves the previous
        configuration in place.

        Example::

            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
        """
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
        self._compile_generation = self.__dict__.get("_compile_generation", 0) + 1

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
        """Names of the values evaluate() returns: ``["loss", "accuracy", ...]``."""
        return ["loss"] + [m.name for m in (self._metrics or [])]

    # ------------------------------------------------------------- data
    def _unbuilt_guard(self):
        """A refused call leaves an unbuilt model unbuilt: the first call
        builds the model for its x before y (or the shape check) can still
        refuse, and a model built for a refused call would then refuse the
        right data.  Once built, preparing data changes nothing, so there is
        nothing to undo (and no snapshot to take on every predict)."""
        if self.built:
            return contextlib.nullcontext()
        return all_or_nothing(self, *self.layers)

    def _prepare_x(self, x, what="x", lazy=False, check_later=False):
        """x converted once, the model built for it, its shape checked
        (``lazy``: a big input of another dtype is converted batch by batch;
        ``check_later``: its values checked then, see D.as_features)."""
        raw = x
        x = D.as_features(x, self.dtype, what=what, lazy=lazy, check_later=check_later,
                          onehot=self._takes_onehot_positions())
        with self._unbuilt_guard():
            self._ensure_built_for(x)
            self._check_input(x, what=what)
            # the values as given (not their float copy): positions are the
            # user's, and no step has run yet when one is refused
            try:
                self._layers[0].check_input_values(np.asarray(raw))
            except ValueError as e:
                raise ValueError(f"{what}: {e}") from None
        return x

    def _takes_onehot_positions(self):
        """Whether a big one-hot input may reach this model as the positions of
        its 1s (``D.OneHotRows``): Sequential's first layer may take them."""
        return False

    def _prepare(self, x, y, sample_weight=None, class_weight=None, what="", lazy=False):
        with self._unbuilt_guard():
            x = self._prepare_x(x, what=f"{what}x", lazy=lazy)
            if y is None:
                raise ValueError(f"{what}y is None: training and evaluation need targets")
            D.check_same_length(x, y, f"{what}x", f"{what}y")
            t = self.loss.prepare_targets(y, self.output_units, self.dtype, what=f"{what}y")
            sw = D.sample_weights(sample_weight, class_weight, np.asarray(t), x.shape[0],
                                  self.dtype, self.output_units)
        return x, t, sw

    # ------------------------------------------------------------- one step
    def _loss_path(self):
        return self.loss.path(self.output_activation)

    def _step_forward_loss(self, xb, tb, swb, training, want_grad):
        """Forward + loss for one batch; returns (loss_sum, predictions, grad, path)."""
        path = self._loss_path()
        values = self._forward(xb, training=training, logits_last=(path == "logits"))
        n = xb.shape[0]
        grad = np.empty(values.shape, values.dtype) if want_grad else None
        probs = np.empty(values.shape, values.dtype) if path != "probs" else None
        loss_sum = self.loss.compute(tb, values, path, grad, self.loss.scale(n), swb, probs)
        preds = probs if path == "logits" else values
        return loss_sum, preds, grad, path

    def _build_optimizer(self):
        """Slots for the trainable variables, checked before any kernel
        touches them.  An optimizer that has not taken a step yet, or holds
        no variables, has no state worth keeping, so it is (re)built for the
        variables trained now (e.g. after ``model.trainable`` went back to
        True)."""
        variables, _ = self._trainable_pairs()
        opt = self.optimizer
        if not opt.built or ((opt.iterations == 0 or not opt._variables) and
                             [id(v) for v in opt._variables] != [id(v) for v in variables]):
            opt.build(variables)
        opt.check_variables(variables)

    def _gradient_step(self, xb, tb, swb, training=True):
        """Forward, loss, backward and regularization of one batch: every
        ``layer.grads`` filled, no weight changed.  Returns (batch loss,
        predictions, dL/d(output or logits))."""
        for ob in self._observers:
            ob.on_step_begin(self, xb, tb)
        loss_sum, preds, grad, path = self._step_forward_loss(xb, tb, swb, training, True)
        for ob in self._observers:
            ob.on_loss(self, grad, path)
        self._backward(grad, from_logits=(path == "logits"))
        reg = self._regularization(add_grads=True)
        loss = loss_sum * self.loss.scale(xb.shape[0]) + reg
        for ob in self._observers:
            ob.on_gradients(self, loss, preds, reg)
        return loss, preds, grad

    def _train_step(self, xb, tb, swb):
        """One optimizer step on one batch; returns (batch loss, predictions)."""
        loss, preds, _ = self._gradient_step(xb, tb, swb)
        variables, grads = self._trainable_pairs()
        self.optimizer.apply(grads, variables)
        return loss, preds

    # ------------------------------------------------------------- observers
    def observe(self, observer):
        """Context manager: call ``observer``'s hooks during the steps run on
        the per-batch path inside the block (``nncore.utils.trace`` uses it).

        Hooks (all optional): ``on_step_begin(model, x, y)``,
        ``on_layer_forward(model, index, layer, inputs, output, kwargs)``,
        ``on_loss(model, grad, path)``,
        ``on_layer_backward(model, index, layer, grad_output, grad_input, kwargs)``,
        ``on_gradients(model, loss, predictions, regularization)`` (every
        ``layer.grads`` final, before the optimizer runs)."""
        import contextlib

        @contextlib.contextmanager
        def scope():
            self._observers.append(_Observer(observer))
            try:
                yield observer
            finally:
                self._observers.pop()
        return scope()

    @staticmethod
    def _metric_counts(metrics, tb, preds, swb):
        """(correct, weight) of each metric on one batch: sample weights count
        for weighted_metrics only, as in Keras."""
        n = float(tb.shape[0])
        w = n if swb is None else float(swb.astype(np.float64).sum())
        return [(m.count_correct(tb, preds, swb), w) if m.weighted else
                (m.count_correct(tb, preds, None), n) for m in metrics]

    def _count_metrics(self, metrics, tb, preds, swb):
        for m, (correct, weight) in zip(metrics, self._metric_counts(metrics, tb, preds, swb)):
            m.add(correct, weight)

    def _logs(self, loss_total, count, metrics):
        logs = {m.name: float(m.result()) for m in metrics}
        # Keras's loss tracker is a float32 ``Mean``: total and count are
        # float32 variables, so a running total past float32's largest value
        # is inf there (and TerminateOnNaN fires at that batch).  The loops
        # keep the total in float64; rounding it to float32 here gives the
        # same overflow point and the same float32 quotient Keras reports.
        with np.errstate(over="ignore", invalid="ignore"):
            total, n = np.float32(loss_total), np.float32(count)
            logs["loss"] = float(total / n) if n else 0.0
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
        """Train the model for ``epochs`` passes over ``(x, y)``.

        Each epoch shuffles the samples (``shuffle=True``), cuts them into batches of
        ``batch_size`` and takes one optimizer step per batch; then, if asked, it
        measures the validation loss and metrics.

        Args:
            x: inputs, a NumPy array of shape ``(samples, ...)`` (e.g.
                ``(60000, 28, 28)`` images scaled to 0..1). Generators and
                ``tf.data`` datasets are not supported: pass arrays.
            y: targets: integer labels ``(samples,)`` or one-hot rows, matching the loss.
            batch_size: samples per optimizer step (default 32).
            epochs: number of passes over the data (default 1).
            verbose: ``"auto"`` (default; the progress bar, as Keras 3 picks 1 when
                there is no distribution strategy), 0 silent, 1 progress bar,
                2 one line per epoch.
            callbacks: list of callbacks, e.g. ``[keras.callbacks.EarlyStopping()]``.
            validation_split: fraction (0..1) of the samples held out for validation,
                taken from the *end* of x/y before shuffling (default 0.0).
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight)``;
                takes precedence over validation_split.
            shuffle: True (default), False, or ``"batch"`` (shuffle batch order only).
            class_weight: ``{class index: weight}`` multiplying each sample's loss.
            sample_weight: one weight per sample multiplying its loss.
            initial_epoch: epoch to start counting from (to resume training).
            steps_per_epoch: batches per epoch (default: all the data).
            validation_steps, validation_batch_size, validation_freq: how much, in
                what batch size and how often (every n epochs) to validate.

        Returns:
            A :class:`~nncore.callbacks.History`; ``history.history`` maps
            ``"loss"``, ``"accuracy"``, ``"val_loss"``, ... to one value per epoch.

        Example::

            history = model.fit(x_train, y_train, epochs=20, batch_size=32,
                                validation_data=(x_val, y_val),
                                callbacks=[keras.callbacks.EarlyStopping(patience=2)])
            history.history["val_loss"]
        """
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

        if validation_batch_size is not None:
            validation_batch_size = D.check_positive_int(validation_batch_size,
                                                         "validation_batch_size")
        if not self._training_lock.acquire(blocking=False):
            raise RuntimeError(f"fit: model '{self.name}' is already being trained in "
                               "another thread; train one model from one thread at a time")
        try:
            return self._fit(x, y, batch_size, epochs, verbose, callbacks, validation_split,
                             validation_data, shuffle, class_weight, sample_weight,
                             initial_epoch, steps_per_epoch, validation_steps,
                             validation_batch_size, validation_freq)
        finally:
            self._training_lock.release()

    def _fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
             validation_data, shuffle, class_weight, sample_weight, initial_epoch,
             steps_per_epoch, validation_steps, validation_batch_size, validation_freq):
        from nncore.callbacks import CallbackList
        from nncore.models import loop

        _sync_threads()
        # everything up to the first step may still refuse (validation data,
        # callbacks): the model, its layers and optimizer then stay as they were
        with all_or_nothing(self, *self.layers,
                            *([self.optimizer] if self.optimizer is not None else [])):
            x, t, sw = self._prepare(x, y, sample_weight, class_weight, lazy=True)
            val = None
            if validation_data is not None:
                if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                    raise ValueError("validation_data must be a tuple (x_val, y_val) or "
                                     "(x_val, y_val, sample_weight_val)")
                vsw = validation_data[2] if len(validation_data) == 3 else None
                val = self._prepare(validation_data[0], validation_data[1], vsw,
                                    what="validation_data ", lazy=True)
            elif validation_split:
                # Keras: the split is taken from the end, before any shuffling
                split_at = int(math.floor(x.shape[0] * (1.0 - validation_split)))
                if split_at == 0 or split_at == x.shape[0]:
                    raise ValueError(f"validation_split={validation_split} leaves an empty "
                                     f"training or validation set for {x.shape[0]} samples")
                val = (D.rows(x, split_at, None), t[split_at:],
                       None if sw is None else sw[split_at:])
                x, t, sw = (D.rows(x, 0, split_at), t[:split_at],
                            None if sw is None else sw[:split_at])
            val_bs = validation_batch_size or batch_size

            self._resolve_metrics()
            self._build_optimizer()
            n = x.shape[0]
            batches = math.ceil(n / batch_size)
            # Keras 3: with steps_per_epoch, an epoch takes that many batches and
            # the next epoch goes on where it stopped, reshuffling only when the
            # data is used up; asking for more batches than the data holds runs
            # what there is, with a warning.
            steps = steps_per_epoch or batches
            if steps > batches:
                warnings.warn(f"fit: steps_per_epoch={steps_per_epoch} but the data holds "
                              f"{batches} batches of {batch_size}; each epoch runs {batches} "
                              "steps (your input ran out of data)", stacklevel=3)
            cbs = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                               model=self, verbose=verbose, epochs=epochs,
                               steps=min(steps, batches))
        self.stop_training = False
        stepper, generation = None, None
        cursor, order = 0, None
        # (no NaN warning when TerminateOnNaN is there to act on it)
        from nncore.callbacks import TerminateOnNaN
        logs, warned = {}, any(isinstance(cb, TerminateOnNaN) for cb in cbs.callbacks)
        cbs.on_train_begin()
        try:
            for epoch in range(initial_epoch, epochs):
                if generation != self._compile_generation:     # first epoch, or recompiled
                    self._build_optimizer()
                    stepper = loop.make_stepper(self, x, t, sw, batch_size)
                    generation = self._compile_generation
                for m in stepper.metrics:
                    m.reset_state()
                cbs.on_epoch_begin(epoch)
                if cursor == 0:
                    order = self._epoch_order(n, batch_size, batches, shuffle)
                run = min(steps, batches - cursor)
                logs = loop.run_epoch(self, stepper, order[cursor * batch_size:], run, cbs)
                cursor = (cursor + run) % batches if steps_per_epoch else 0
                if not warned and not np.isfinite(logs.get("loss", 0.0)):
                    warned = True
                    self._warn_nonfinite(epoch, x)
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

    @staticmethod
    def _epoch_order(n, batch_size, batches, shuffle):
        if shuffle is True:
            return nn_random.generator().permutation(n)
        if shuffle == "batch":
            starts = nn_random.generator().permutation(batches) * batch_size
            return np.concatenate([np.arange(s, min(s + batch_size, n)) for s in starts])
        return np.arange(n)

    def _warn_nonfinite(self, epoch, x):
        """The loss overflowed: say so once, and what probably caused it.
        Training goes on, as in Keras (``TerminateOnNaN`` stops it)."""
        big = float(np.max(np.abs(x))) if x.size else 0.0
        hint = (f"; the inputs reach |x| = {big:.3g}: scale them (e.g. x / 255.0)"
                if big > 1e6 else "; try a smaller learning rate")
        warnings.warn(f"fit: the loss became NaN or inf in epoch {epoch + 1}{hint}. Add "
                      "keras.callbacks.TerminateOnNaN() to stop training when this "
                      "happens", RuntimeWarning, stacklevel=4)

    # ------------------------------------------------------------- evaluate
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """The loss (and metrics) of the model on ``(x, y)``, without training.

        Args:
            x, y: inputs and targets, as in :meth:`fit`.
            batch_size: samples per forward pass (default 32; only affects speed,
                except for losses reduced with ``"sum"``).
            verbose: ``"auto"`` (progress bar), 0 or 1.
            sample_weight: optional weight per sample.
            steps: evaluate only the first ``steps`` batches.
            callbacks: callbacks that receive the ``on_test_*`` hooks.
            return_dict: return ``{"loss": ..., "accuracy": ...}`` instead of a list.

        Returns:
            ``[loss, metric1, ...]``, or just the loss when there are no metrics.

        Example::

            test_loss, test_acc = model.evaluate(x_test, y_test)
        """
        from nncore.callbacks import CallbackList

        self._require_compiled("evaluate")
        batch_size = D.check_positive_int(32 if batch_size is None else batch_size, "batch_size")
        steps = D.check_positive_int(steps, "steps", allow_none=True)
        verbose = _verbosity(verbose)
        _sync_threads()
        x, t, sw = self._prepare(x, y, sample_weight, lazy=True)
        self._resolve_metrics()
        n_steps = math.ceil(x.shape[0] / batch_size)
        cbs = CallbackList(callbacks, add_history=False, add_progbar=verbose != 0,
                           model=self, verbose=verbose, epochs=1, steps=n_steps)
        try:
            logs = self._evaluate_arrays(x, t, sw, batch_size, cbs, verbose, steps)
        except BaseException:            # Ctrl-C too: leave no half-drawn bar line
            cbs.end_progress_line()
            raise
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
        """The model's outputs for a batch of inputs (no training, Dropout off).

        ``x`` must be a batch, shape ``(samples, ...)``, even for one sample: use
        ``x_test[:1]`` or ``x_test[0][None]`` (not ``x_test[0]``).

        Args:
            x: inputs, a NumPy array of shape ``(samples, ...)``.
            batch_size: samples per forward pass (default 32; only affects speed).
            verbose: ``"auto"`` (progress bar), 0 or 1.
            steps: predict only the first ``steps`` batches.
            callbacks: callbacks that receive the ``on_predict_*`` hooks.

        Returns:
            A float array ``(samples, outputs)``: for a softmax output, one row of
            class probabilities per sample (``probs.argmax(axis=1)`` is the class).

        Example::

            probs = model.predict(x_test[:5])
            classes = probs.argmax(axis=1)
        """
        from nncore.callbacks import CallbackList

        batch_size = D.check_positive_int(32 if batch_size is None else batch_size, "batch_size")
        verbose = _verbosity(verbose)
        steps = D.check_positive_int(steps, "steps", allow_none=True)
        _sync_threads()
        # predict changes no state: a bad value may be found as its batch is
        # converted (one pass over a big input instead of two)
        x = self._prepare_x(x, lazy=True, check_later=True)
        n = x.shape[0] if steps is None else min(x.shape[0], steps * batch_size)
        n_steps = math.ceil(n / batch_size)
        cbs = CallbackList(callbacks, add_history=False, add_progbar=verbose != 0,
                           model=self, verbose=verbose, epochs=1, steps=n_steps)
        hooks = cbs.needs_predict_hooks()
        # a big input converted batch by batch counts too: its converted
        # chunk is a buffer (the book's one-hot words: 20,000 values a row)
        lazy_row = int(np.prod(x.shape[1:])) if isinstance(x, D.CastOnRead) else 0
        chunk = batch_size if hooks else max(batch_size, self._chunk_rows(4096, extra=lazy_row))
        out = np.empty((n,) + self._output_row_shape(), dtype=self.dtype)
        cbs.on_predict_begin()
        progress = _Throttle()
        try:
            for start in range(0, n, chunk):
                stop = min(start + chunk, n)
                if hooks:
                    cbs.on_predict_batch_begin(start // batch_size)
                out[start:stop] = self._forward(x[start:stop], training=False)
                if hooks:
                    cbs.on_predict_batch_end(start // batch_size, {"outputs": out[start:stop]})
                elif verbose and (progress.due() or stop == n):
                    cbs.update_progress(math.ceil(stop / batch_size), {})
        except BaseException:            # Ctrl-C too: leave no half-drawn bar line
            cbs.end_progress_line()
            raise
        cbs.on_predict_end()
        return out

    def _chunk_rows(self, cap, budget=1 << 24, extra=0):
        """Rows per internal evaluate/predict chunk: ``cap``, or fewer when one
        sample's activations are large (a CNN keeps ~50 K values per image),
        so that a chunk's layer buffers (and ``extra`` values a row) stay
        within ``budget`` values, or when a layer asks for fewer
        (``Layer.inference_rows``: a recurrent layer's caches)."""
        per_row = extra
        for layer in getattr(self, "layers", []):
            limit = getattr(layer, "inference_rows", None)
            if limit is not None:
                cap = min(cap, limit)
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
        """Empty the running state of the compiled metrics."""
        for m in self._metrics or []:
            m.reset_state()

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on exactly this batch, as Keras 3 does.

        Returns that batch's loss (and metrics), computed during the step -- not a
        running mean.  ``return_dict=True`` gives ``{"loss": ..., ...}``.

        Example::

            loss, acc = model.train_on_batch(x_train[:32], y_train[:32])
        """
        self._require_compiled("train_on_batch")
        _sync_threads()
        x, t, sw = self._prepare(x, y, sample_weight, class_weight)
        self._build_optimizer()
        metrics = self._fresh_metrics()
        if not self._training_lock.acquire(blocking=False):
            raise RuntimeError(f"train_on_batch: model '{self.name}' is already being "
                               "trained in another thread")
        try:
            batch_loss, preds = self._train_step(x, t, sw)
        finally:
            self._training_lock.release()
        self._count_metrics(metrics, t, preds, sw)
        st = {"loss": batch_loss * x.shape[0], "count": x.shape[0], "metrics": metrics}
        return self._batch_result(st, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss (and metrics) on exactly this batch, without training.

        Example::

            loss, acc = model.test_on_batch(x_val[:32], y_val[:32])
        """
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
        """The outputs for this batch in one forward pass (same as ``model(x)``)."""
        return self(x)

    # ------------------------------------------------------------- saving
    def save(self, filepath, overwrite=True):
        """Save the whole model -- architecture, weights, optimizer state -- to ``filepath``.

        The suffix chooses the format: ``.npz`` is nncore's own (JSON
        architecture + arrays, never pickle); ``.keras`` is Keras 3's archive
        (TensorFlow loads it; needs h5py) -- both written atomically.
        ``keras.models.load_model(filepath)`` reads either back.

        Args:
            filepath: a path ending in ``.npz`` or ``.keras`` (``docs/saving.md``).
            overwrite: replace an existing file (default True).

        Example::

            model.save("best-model.npz")
            model = keras.models.load_model("best-model.npz")
        """
        from nncore.saving import save_model
        save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        """Save only the weights (``.weights.npz``); load them into a model of the
        same architecture with :meth:`load_weights`.

        Example::

            model.save_weights("model.weights.npz")
        """
        from nncore.saving import save_weights
        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        """Load weights saved by :meth:`save_weights` (or :meth:`save`) into this model.

        The architecture must match: each weight array is checked for shape, and a
        refused file leaves the weights unchanged.

        Example::

            model.load_weights("model.weights.npz")
        """
        from nncore.saving import load_weights
        load_weights(self, filepath)


class _Observer:
    """A step observer with every hook (the missing ones do nothing)."""
    HOOKS = ("on_step_begin", "on_layer_forward", "on_loss", "on_layer_backward",
             "on_gradients")

    def __init__(self, target):
        for name in self.HOOKS:
            setattr(self, name, getattr(target, name, None) or _ignore)


def _ignore(*args, **kwargs):
    pass


def _sync_threads():
    """Apply nncore.set_num_threads to the calling thread (OpenMP keeps the
    setting per thread: a fit run from a worker thread would otherwise use
    the default, whatever the main thread asked for)."""
    from nncore._info import sync_threads
    sync_threads()


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
