"""Embedding lookup and its gradient (twin of ``src_cython/embedding.pyx``).

An embedding table ``E`` has one row of ``D`` numbers per word index
(``V`` rows).  For a batch of indices ``idx`` (flattened to ``N`` entries)::

    forward:   out[n, :] = E[idx[n], :]                       (a row gather)
    backward:  dE[v, :]  = sum over n with idx[n] == v of grad[n, :]

The backward is a scatter-add: a word used three times in a batch receives
the sum of its three output gradients; rows of words not in the batch get 0.
The sum runs over ``n`` in increasing order, as the compiled kernel does, so
both give bitwise the same ``dE``.  Indices are checked (0 <= idx < V) by
``embedding_indices`` before either runs (the layer raises the error).
"""

# The kernels: the same names exist in nncore._ext.embedding (the compiled twin).
__all__ = ["embedding_indices", "embedding_forward", "embedding_backward"]

import numpy as np


def embedding_indices(x, input_dim, idx):
    """idx[:] = x when every value of the 1-D ``x`` is an integer in
    0..input_dim-1 (floats holding integers count); returns -1 then, else the
    position of the first bad value.  ``idx`` None: check only."""
    if x.dtype.kind == "f":
        # NaN fails both comparisons; inf fails the range
        ok = (x >= 0) & (x < input_dim)
        ok &= np.floor(np.where(ok, x, 0)) == x
    else:
        ok = (x >= 0) & (x < input_dim)
    if not ok.all():
        return int(np.argmin(ok))
    if idx is not None:
        idx[...] = x
    return -1


def embedding_forward(table, idx, out):
    """out[n] = table[idx[n]] for every n (table (V, D), idx (N,) intp, out (N, D))."""
    np.take(table, idx, axis=0, out=out)


def embedding_backward(grad, idx, dtable):
    """dtable = 0, then dtable[idx[n]] += grad[n] for n = 0, 1, ... (grad (N, D))."""
    dtable.fill(0)
    np.add.at(dtable, idx, grad)
