"""Models, as ``keras.models``."""
from nncore.models.model import Model
from nncore.models.sequential import Sequential

__all__ = ["Model", "Sequential", "load_model", "save_model", "clone_model",
           "model_from_json"]

_FROM_SAVING = ("load_model", "save_model", "clone_model", "model_from_json")


def __getattr__(name):
    # from nncore.saving on first use (nncore.saving imports this package)
    if name in _FROM_SAVING:
        from nncore import saving
        return getattr(saving, name)
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
