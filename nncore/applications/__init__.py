"""Pretrained models, as ``keras.applications``.

nncore has none: every Keras name (``VGG16``, ``ResNet50``, ...) says
"not in nncore yet" instead of a bare AttributeError.
"""
__all__ = []


def __getattr__(name):
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
