"""Data preprocessing, as ``keras.preprocessing``.

Nothing here yet: every Keras name (``image_dataset_from_directory``,
``keras.preprocessing.image``, ...) says "not in nncore yet".  A submodule
added to this package -- e.g. ``sequence.py`` with ``pad_sequences`` for
chapter 9 -- is found by ``__getattr__`` with no edit here.
"""
__all__ = []


def __getattr__(name):
    # a submodule if there is one; else "not in nncore yet" / "did you mean"
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
