"""Models, as ``keras.models``."""
from nncore.models.model import Model
from nncore.models.sequential import Sequential

__all__ = ["Model", "Sequential"]
