"""The ``Callback`` base class (as ``keras.callbacks.Callback``).

Hooks (all optional, all no-ops here), with ``logs`` dicts:

* ``on_train_begin(logs)`` / ``on_train_end(logs)``
* ``on_epoch_begin(epoch, logs)`` / ``on_epoch_end(epoch, logs)`` -- epoch is 0-based
* ``on_train_batch_begin(batch, logs)`` / ``on_train_batch_end(batch, logs)``
  (by default they call the older aliases ``on_batch_begin`` / ``on_batch_end``)
* ``on_test_begin`` / ``on_test_end`` / ``on_test_batch_begin`` / ``on_test_batch_end``
* ``on_predict_begin`` / ``on_predict_end`` / ``on_predict_batch_begin`` /
  ``on_predict_batch_end``

``set_model(model)`` and ``set_params(params)`` are called by ``CallbackList``;
``params`` is ``{'verbose': v, 'epochs': n, 'steps': steps_per_epoch}``.

nncore trains in a fused compiled loop and only returns to Python for every
batch when some callback needs it.  ``needs_batch_hooks(mode)`` answers that
question for one callback: by default True when the callback's class (or the
instance itself, as ``LambdaCallback`` does) overrides a batch hook of that
mode.  Callbacks whose need depends on their settings override it (e.g.
``ModelCheckpoint(save_freq=100)``).
"""

_BATCH_HOOKS = {
    "train": ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end"),
    "test": ("on_test_batch_begin", "on_test_batch_end"),
    "predict": ("on_predict_batch_begin", "on_predict_batch_end"),
}


def overrides_hook(callback, name):
    """True if ``callback`` replaces ``Callback.<name>`` (in its class or instance)."""
    if name in vars(callback):
        return True
    return getattr(type(callback), name, None) is not getattr(Callback, name)


class Callback:
    """Base class of all callbacks: subclass it and override the hooks you need.

    ``fit``/``evaluate``/``predict`` call the hooks at fixed points; ``logs`` is a
    dict such as ``{"loss": 0.41, "accuracy": 0.85, "val_loss": 0.45}``, and
    ``self.model`` is the model being trained (set ``self.model.stop_training =
    True`` to stop after this epoch).

    Example::

        class PrintValLoss(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                print(epoch, logs["val_loss"])

        model.fit(x, y, validation_split=0.2, callbacks=[PrintValLoss()])
    """

    def __init__(self):
        self.params = {}
        self._model = None

    def set_params(self, params):
        """Receive ``{"verbose": v, "epochs": n, "steps": steps_per_epoch}`` from the model."""
        self.params = params

    def set_model(self, model):
        """Receive the model this callback will watch (``self.model``)."""
        self._model = model

    @property
    def model(self):
        """The model being trained / evaluated (None before ``set_model``)."""
        return self._model

    def needs_batch_hooks(self, mode="train"):
        """Whether this callback must see every batch of ``mode``
        (``'train'``, ``'test'`` or ``'predict'``)."""
        try:
            names = _BATCH_HOOKS[mode]
        except KeyError:
            raise ValueError(f"mode must be 'train', 'test' or 'predict', got {mode!r}") from None
        return any(overrides_hook(self, name) for name in names)

    # Backwards-compatible aliases of the train batch hooks.
    def on_batch_begin(self, batch, logs=None):
        """Alias of ``on_train_batch_begin`` (called by it)."""

    def on_batch_end(self, batch, logs=None):
        """Alias of ``on_train_batch_end`` (called by it)."""

    def on_epoch_begin(self, epoch, logs=None):
        """Start of epoch ``epoch`` (0-based) in ``fit``."""

    def on_epoch_end(self, epoch, logs=None):
        """End of an epoch; ``logs`` holds the epoch's metrics (``val_*`` too)."""

    def on_train_batch_begin(self, batch, logs=None):
        """Start of a training batch."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        """End of a training batch; ``logs`` holds the running epoch metrics."""
        self.on_batch_end(batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        """Start of a batch in ``evaluate`` (or validation in ``fit``)."""

    def on_test_batch_end(self, batch, logs=None):
        """End of a batch in ``evaluate`` (or validation in ``fit``)."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Start of a batch in ``predict``."""

    def on_predict_batch_end(self, batch, logs=None):
        """End of a batch in ``predict``."""

    def on_train_begin(self, logs=None):
        """Start of ``fit``."""

    def on_train_end(self, logs=None):
        """End of ``fit`` (also after an interruption)."""

    def on_test_begin(self, logs=None):
        """Start of ``evaluate`` or of a validation pass."""

    def on_test_end(self, logs=None):
        """End of ``evaluate`` or of a validation pass."""

    def on_predict_begin(self, logs=None):
        """Start of ``predict``."""

    def on_predict_end(self, logs=None):
        """End of ``predict``."""
