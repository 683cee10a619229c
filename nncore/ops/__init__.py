"""Readable NumPy twins of every compiled kernel.

Each module here mirrors one ``src_cython/<name>.pyx`` module: same function
names, same arguments, same in-place outputs.  The docstrings carry the maths;
the compiled kernels compute the same thing faster.  ``nncore.backend``
chooses which of the two the layers, losses and optimizers call, and the test
suite holds the pairs together.
"""
