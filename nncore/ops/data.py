"""Passes over the user's input arrays (twin of ``src_cython/data.pyx``).

Used by ``nncore/models/data.py``: the check that an input holds no NaN,
infinity or value too large for the model's dtype, and the gather of a
shuffled batch of a big input kept in another dtype (``CastOnRead``)::

    first_bad_value(x, limit)   first i with not |x[i]| <= limit, else -1
    gather_rows(src, rows, out, limit)
                                out[k] = src[rows[k]], in out's dtype, and
                                the first bad value of those rows, else -1
    onehot_positions(x, positions)
                                every row of x one-hot (one 1.0 among zeros)
                                or zero?  positions[r]: its 1's column, -1
"""

__all__ = ["gather_rows", "first_bad_value", "onehot_positions"]

import numpy as np


def gather_rows(src, rows, out, limit):
    """out[k] = src[rows[k]] for every k, converted to out's dtype (src and out
    2-D, rows an index array); returns ``first_bad_value`` of the gathered
    rows (a flat index into out, or -1)."""
    if out.shape != (len(rows), src.shape[1]):
        raise ValueError(f"gather_rows: out has shape {out.shape}, "
                         f"expected ({len(rows)}, {src.shape[1]})")
    picked = src[rows]
    out[...] = picked
    return first_bad_value(picked.reshape(-1), limit)


def first_bad_value(x, limit):
    """The index of the first element of the 1-D array x that is NaN, infinite
    or larger than ``limit`` in magnitude, or -1.  (``not |v| <= limit`` is
    true for all three: NaN compares false.)"""
    bad = ~(np.abs(x) <= x.dtype.type(limit))
    return int(np.argmax(bad)) if bad.any() else -1


def onehot_positions(x, positions):
    """True if every row of the 2-D array x holds a single 1.0 among zeros, or
    only zeros; positions[r] is then the column of row r's 1 (-1 for a zero
    row).  False as soon as one row is neither (positions then unspecified)."""
    if positions.shape[0] != x.shape[0]:
        raise ValueError(f"onehot_positions: positions has {positions.shape[0]} entries "
                         f"for {x.shape[0]} rows")
    if x.shape[0] == 0:
        return True
    if x.shape[1] == 0:
        return False
    nonzero = (x != 0).sum(axis=1)          # NaN counts as nonzero
    col = np.argmax(x != 0, axis=1)
    rows = np.arange(x.shape[0])
    if not np.all((nonzero == 0) | ((nonzero == 1) & (x[rows, col] == 1))):
        return False
    positions[...] = np.where(nonzero == 0, -1, col)
    return True
