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
    raise AttributeError(f"module 'nncore.models' has no attribute {name!r}")
