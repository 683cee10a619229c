"""Bias + activation, forward and backward (twin of ``src_cython/activations.pyx``).

Forward, in place on the pre-activation z (rows = samples)::

    a = f(z + b)

    linear   f(z) = z
    relu     f(z) = max(z, 0)
    sigmoid  f(z) = 1 / (1 + e^-z)
    tanh     f(z) = tanh(z)
    softmax  f(z)_j = e^(z_j - max z) / sum_k e^(z_k - max z)     (per row)

Backward: the chain rule dL/dz = dL/da * da/dz, written with the forward
*output* a, so nothing but a has to be kept from the forward pass::

    linear   dz = da
    relu     dz = da * (a > 0)
    sigmoid  dz = da * a * (1 - a)
    tanh     dz = da * (1 - a^2)
    softmax  dz_i = a_i * (da_i - sum_j da_j a_j)     (the Jacobian-vector product)
"""

# The kernels: the same names exist in nncore._ext.activations (the compiled twin).
__all__ = ['bias_act_forward', 'act_backward', 'bias_grad']
import numpy as np

# The one activation table: name -> the kernels' code (the enum in
# src_cython/k_activations.pxd; the compiled modules check theirs against
# this at import), and the formulas ``trace`` prints for each.
CODES = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "softmax": 4}
ACTIVATIONS = tuple(CODES)
FORWARD_FORMULA = {
    "linear": "a = z",
    "relu": "a = relu(z) = max(z, 0)",
    "sigmoid": "a = sigmoid(z) = 1 / (1 + e^-z)",
    "tanh": "a = tanh(z)",
    "softmax": "a = softmax(z) = e^z / sum(e^z)  (per row)",
}
BACKWARD_FORMULA = {
    "linear": "dz = da",
    "relu": "dz = da * [a > 0]",
    "sigmoid": "dz = da * a * (1 - a)",
    "tanh": "dz = da * (1 - a^2)",
    "softmax": "dz = a * (da - sum(da * a))  (per row)",
}


def _check(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: "
                         f"{', '.join(ACTIVATIONS)}")


def sigmoid(z):
    """1 / (1 + e^-z) without overflow for large |z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def bias_act_forward(z, bias, activation):
    """z <- activation(z + bias), in place (bias may be None)."""
    _check(activation)
    if bias is not None:
        if bias.shape[0] != z.shape[1]:
            raise ValueError(f"bias_act_forward: bias has {bias.shape[0]} "
                             f"entries, z has {z.shape[1]} columns")
        z += bias
    if activation == "relu":
        np.maximum(z, 0, out=z)
    elif activation == "sigmoid":
        z[...] = sigmoid(z)
    elif activation == "tanh":
        np.tanh(z, out=z)
    elif activation == "softmax":
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True, dtype=np.float64).astype(z.dtype)


def act_backward(grad, out, activation, dz):
    """dz = grad * f'(.), expressed through the forward output ``out``."""
    _check(activation)
    if not (grad.shape == out.shape == dz.shape):
        raise ValueError(f"act_backward: grad {grad.shape}, out {out.shape} "
                         f"and dz {dz.shape} must match")
    if activation == "linear":
        dz[...] = grad
    elif activation == "relu":
        dz[...] = np.where(out > 0, grad, 0)
    elif activation == "sigmoid":
        dz[...] = grad * out * (1 - out)
    elif activation == "tanh":
        dz[...] = grad * (1 - out * out)
    else:  # softmax
        dot = (grad.astype(np.float64) * out).sum(axis=1, keepdims=True)
        dz[...] = out * (grad - dot.astype(out.dtype))


def bias_grad(dz, db, accumulate=False):
    """db (+)= sum over the batch of dz: each sample's error reaches the bias."""
    if db.shape[0] != dz.shape[1]:
        raise ValueError(f"bias_grad: db has {db.shape[0]} entries, dz has "
                         f"{dz.shape[1]} columns")
    if accumulate:
        db += dz.sum(axis=0)
    else:
        db[...] = dz.sum(axis=0)
