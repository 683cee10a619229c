"""``LambdaCallback``: a callback built from plain functions.

Each argument replaces the hook of the same name; the functions take the
hook's arguments: ``on_epoch_begin(epoch, logs)``, ``on_train_begin(logs)``,
``on_train_batch_end(batch, logs)``, ... Any hook may be given by keyword
(e.g. ``on_test_end=...``).  Batch hooks given here make the model run its
per-batch Python loop (``needs_batch_hooks``)."""
from nncore.callbacks.callback import Callback

_HOOKS = frozenset({
    "on_epoch_begin", "on_epoch_end", "on_train_begin", "on_train_end",
    "on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end",
    "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
    "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end",
})


class LambdaCallback(Callback):
    """Callback for creating simple, custom callbacks on-the-fly."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        unknown = sorted(set(kwargs) - _HOOKS)
        if unknown:
            raise TypeError(f"LambdaCallback got unknown hook names: {unknown}")
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be callable, got {fn!r}")
            setattr(self, name, fn)
