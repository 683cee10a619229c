"""``CallbackList``: the container the model drives during fit / evaluate / predict.

How the model uses it::

    cbs = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                       model=model, verbose=verbose, epochs=epochs, steps=steps)
    cbs.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        cbs.on_epoch_begin(epoch)
        if cbs.needs_batch_hooks():           # someone wants every batch
            ... cbs.on_train_batch_begin(b); step; cbs.on_train_batch_end(b, logs)
        else:                                  # fused loop
            ... cbs.update_progress(steps_done, running_logs)   # <= ~20 Hz + last step
        cbs.on_epoch_end(epoch, logs)          # logs incl. val_*; callbacks may add keys
        if model.stop_training: break
    cbs.on_train_end(logs)                     # in a finally:
    return model.history                       # the History, set by set_model

``needs_batch_hooks(mode)`` (mode 'train' / 'test' / 'predict'; also
``needs_test_hooks()`` and ``needs_predict_hooks()``) is True when any callback
needs that mode's batch hooks (see ``Callback.needs_batch_hooks``).
``update_progress(step, logs)`` forwards to every callback that has an
``update_progress`` method (the ProgbarLogger).

Order: the given callbacks, then History (if ``add_history`` and none given),
then ProgbarLogger (if ``add_progbar`` and none given) -- so keys that
callbacks add to the epoch logs (``learning_rate``) reach History and the bar.
``params`` keyword arguments (``verbose``, ``epochs``, ``steps``) are passed to
every callback's ``set_params``.
"""
from nncore.callbacks.callback import Callback
from nncore.callbacks.history import History
from nncore.callbacks.progbar_logger import ProgbarLogger


def _flatten(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, CallbackList):
        return list(callbacks.callbacks)
    if isinstance(callbacks, Callback):
        return [callbacks]
    if isinstance(callbacks, type):
        raise TypeError(f"callbacks: got the class {callbacks.__name__}; pass an instance, "
                        f"e.g. {callbacks.__name__}()")
    out = []
    try:
        items = list(callbacks)
    except TypeError:
        raise TypeError(f"callbacks must be a list of Callback instances, got {callbacks!r}") from None
    for cb in items:
        if isinstance(cb, (list, tuple, CallbackList)):
            out.extend(_flatten(cb))
        elif isinstance(cb, type):
            raise TypeError(f"callbacks: got the class {cb.__name__}; pass an instance, "
                            f"e.g. {cb.__name__}()")
        elif not isinstance(cb, Callback):
            raise TypeError("callbacks must be nncore.callbacks.Callback instances, got "
                            f"{type(cb).__name__}")
        else:
            out.append(cb)
    return out


class CallbackList(Callback):
    """Container abstracting a list of callbacks."""

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None,
                 **params):
        super().__init__()
        self.callbacks = _flatten(callbacks)
        self._history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        self._progbar = next((cb for cb in self.callbacks if isinstance(cb, ProgbarLogger)),
                             None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    @property
    def history(self):
        """The History callback in the list (None if there is none)."""
        return self._history

    @property
    def progbar(self):
        """The ProgbarLogger in the list (None if there is none)."""
        return self._progbar

    def append(self, callback):
        """Add a callback (or a list of them) at the end."""
        self.callbacks.extend(_flatten([callback]))

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def set_params(self, params):
        """Give ``params`` to every callback."""
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)

    def set_model(self, model):
        """Give the model to every callback."""
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    # ------------------------------------------------------------ fast-path queries
    def needs_batch_hooks(self, mode="train"):
        """True if any callback must see every training batch."""
        return any(cb.needs_batch_hooks(mode) for cb in self.callbacks)

    def needs_test_hooks(self):
        """True if any callback must see every evaluation batch."""
        return self.needs_batch_hooks("test")

    def needs_predict_hooks(self):
        """True if any callback must see every prediction batch."""
        return self.needs_batch_hooks("predict")

    def end_progress_line(self):
        """End any unfinished progress-bar line (after an interrupted call)."""
        for cb in self.callbacks:
            end = getattr(cb, "end_progress_line", None)
            if end is not None:
                end()

    def update_progress(self, step, logs=None):
        """Forward progress (``step`` batches done, running ``logs``) to the progress bar."""
        for cb in self.callbacks:
            update = getattr(cb, "update_progress", None)
            if update is not None:
                update(step, logs)

    # ------------------------------------------------------------ hooks
    def _call(self, name, *args):
        for cb in self.callbacks:
            getattr(cb, name)(*args)

    def on_batch_begin(self, batch, logs=None):
        self._call("on_batch_begin", batch, {} if logs is None else logs)

    def on_batch_end(self, batch, logs=None):
        self._call("on_batch_end", batch, {} if logs is None else logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, {} if logs is None else logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, {} if logs is None else logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, {} if logs is None else logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, {} if logs is None else logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, {} if logs is None else logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, {} if logs is None else logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, {} if logs is None else logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, {} if logs is None else logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", {} if logs is None else logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", {} if logs is None else logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", {} if logs is None else logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", {} if logs is None else logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", {} if logs is None else logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", {} if logs is None else logs)
