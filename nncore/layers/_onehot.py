"""A batch of one-hot rows kept as the positions of their 1s.

The book's first chapter-9 model feeds ``keras.utils.to_categorical(words)``:
20,000 x 100 x 200 float64 values, 3.2 GB, of which one in 200 is a 1.  The
input passes (``nncore/models/data.py``) find the position of every row's 1
once per fit -- int32, 8 MB -- and hand a recurrent first layer batches of
positions instead of rows: nothing is converted or scanned per step, and the
layer's input projection ``x_t . W`` is exactly row ``W[position]``, which
its kernel looks up (the same lookup ``Embedding`` does).

Anything else that reads such a batch as an array (``np.asarray(batch)``)
gets the ordinary one-hot rows back.
"""
from __future__ import annotations

import numpy as np

__all__ = ["OneHotBatch"]


class OneHotBatch:
    """``positions`` (batch, timesteps) int32: the column of each row's 1, -1
    for a row of zeros; ``depth``: the rows' width; ``dtype``: the dtype the
    rows would have.  Reads like a (batch, timesteps, depth) array.

    With ``table`` (depth, features) the rows are ``table[position]``
    instead -- an Embedding's lookup, which is the one-hot row times the
    table -- and the batch reads like a (batch, timesteps, features) array:
    the compiled step plan folds an Embedding into the recurrent layer above
    it this way (``x . W`` of such a row is row ``position`` of
    ``table . W``)."""

    def __init__(self, positions, depth, dtype, table=None):
        self.positions = np.ascontiguousarray(positions, dtype=np.int32)
        self.depth = int(depth)
        self.dtype = np.dtype(dtype)
        self.table = table
        width = self.depth if table is None else table.shape[1]
        self.shape = tuple(self.positions.shape) + (width,)
        self.ndim = len(self.shape)

    def __len__(self):
        return self.shape[0]

    def kernel_positions(self, reverse=False):
        """The positions as the recurrent kernels take them: flat (B*T + 1,)
        int32, the last entry 1 ("positions given"); ``reverse``: the time
        steps in reverse order (``go_backwards``)."""
        B, T = self.positions.shape
        flat = np.empty(B * T + 1, np.int32)
        flat[:-1].reshape(B, T)[...] = self.positions[:, ::-1] if reverse else self.positions
        flat[-1] = 1
        return flat

    def dense(self):
        """The rows: one-hot (batch, timesteps, depth), or the table's rows, in
        ``dtype`` (zeros for a position of -1)."""
        out = np.zeros(self.shape, dtype=self.dtype)
        b, t = np.nonzero(self.positions >= 0)
        if self.table is None:
            out[b, t, self.positions[b, t]] = 1
        else:
            out[b, t] = self.table[self.positions[b, t]]
        return out

    def __array__(self, dtype=None, copy=None):
        out = self.dense()
        return out if dtype is None else out.astype(dtype, copy=False)
