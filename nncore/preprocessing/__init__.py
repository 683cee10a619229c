"""Data preprocessing, as ``keras.preprocessing``: ``sequence.pad_sequences``.

Every other Keras name (``image_dataset_from_directory``,
``keras.preprocessing.image``, ...) says "not in nncore yet".  A submodule
added to this package is found by ``__getattr__`` with no edit here.
"""
from . import sequence

__all__ = ["sequence"]


def __getattr__(name):
    # a submodule if there is one; else "not in nncore yet" / "did you mean"
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
