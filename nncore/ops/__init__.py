"""Readable NumPy twins of every compiled kernel.

Each module here mirrors one ``src_cython/<name>.pyx`` module: same function
names, same arguments, same in-place outputs.  The docstrings carry the maths;
the compiled kernels compute the same thing faster.  ``nncore.backend``
chooses which of the two the layers, losses and optimizers call, and the test
suite holds the pairs together.
"""


def __getattr__(name):
    # a Keras name nncore lacks says "not in nncore yet"; a typo gets "did you mean"
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
