"""Matrix product, the one operation a Dense layer is made of.

A Dense layer with kernel W (inputs x units) needs three products per step::

    forward          Z  = X  . W        gemm(X,  W,  Z)
    kernel gradient  dW = X^T . dZ      gemm(X,  dZ, dW, trans_a=True)
    input gradient   dX = dZ . W^T      gemm(dZ, W,  dX, trans_b=True)
"""

# The kernels: the same names exist in nncore._ext.gemm (the compiled twin).
__all__ = ['gemm']
import numpy as np


def gemm(a, b, out, trans_a=False, trans_b=False, accumulate=False):
    """out (+)= op(a) @ op(b), where op(m) = m.T when its trans flag is set.

    ``out`` is written in place (``accumulate=True`` adds to it), as the
    compiled kernel does, so callers can keep one preallocated buffer.
    """
    a = a.T if trans_a else a
    b = b.T if trans_b else b
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"gemm: inner dimensions differ: op(a) is {a.shape} "
                         f"but op(b) is {b.shape}")
    if out.shape != (a.shape[0], b.shape[1]):
        raise ValueError(f"gemm: out has shape {out.shape}, expected "
                         f"{(a.shape[0], b.shape[1])}")
    if accumulate:
        out += a @ b
    else:
        np.matmul(a, b, out=out)
