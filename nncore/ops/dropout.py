"""Inverted dropout with a counter-based RNG (twin of ``src_cython/dropout.pyx``).

During training each element is kept with probability 1 - rate and scaled
by 1 / (1 - rate), so the expected output equals the input and nothing has to
change at inference time::

    keep_i = u_i < 1 - rate ;   out_i = x_i * keep_i / (1 - rate)

``u_i`` is a pure function of (seed, step, i), built from the splitmix64
mixing function::

    mix(z)  = splitmix64 finaliser (xor-shift-multiply, three rounds)
    key     = mix(seed * 0x9E3779B97F4A7C15 + step)
    u_i     = (mix(key + i * 0xD1B54A32D192ED03) >> 11) / 2**53

Because nothing is carried from one element to the next, any thread can
compute any element and the mask is always the same for the same seed and step.
"""

# The kernels: the same names exist in nncore._ext.dropout (the compiled twin).
__all__ = ['dropout_forward', 'dropout_backward']
import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_STRIDE = np.uint64(0xD1B54A32D192ED03)


def _mix(z):
    # uint64 arithmetic wraps modulo 2**64, exactly as in C.
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def dropout_uniform(seed, step, n):
    """The n uniforms in [0, 1) for (seed, step)."""
    with np.errstate(over="ignore"):
        key = _mix(np.array([seed], dtype=np.uint64) * _GOLDEN + np.uint64(step))[0]
        i = np.arange(n, dtype=np.uint64)
        bits = _mix(key + i * _STRIDE) >> np.uint64(11)
    return bits.astype(np.float64) * (1.0 / 2.0 ** 53)


def _check(name, n, n2, rate):
    if n2 != n:
        raise ValueError(f"{name}: arrays have {n} and {n2} elements")
    if not (0.0 <= rate < 1.0):
        raise ValueError(f"{name}: rate must be in [0, 1), got {rate}")


def dropout_forward(x, out, mask, rate, seed, step):
    """out = x * keep / (1 - rate), with keep = u(seed, step) < 1 - rate (flat arrays)."""
    _check("dropout_forward", x.shape[0], out.shape[0], rate)
    _check("dropout_forward", x.shape[0], mask.shape[0], rate)
    keep = dropout_uniform(seed, step, x.shape[0]) < 1.0 - rate
    mask[...] = keep
    scale = x.dtype.type(1.0 / (1.0 - rate))
    out[...] = np.where(keep, x * scale, 0)


def dropout_backward(grad, mask, rate, dx):
    """dx = grad * mask / (1 - rate): dropped units pass no gradient."""
    _check("dropout_backward", grad.shape[0], mask.shape[0], rate)
    _check("dropout_backward", grad.shape[0], dx.shape[0], rate)
    scale = grad.dtype.type(1.0 / (1.0 - rate))
    dx[...] = np.where(mask.astype(bool), grad * scale, 0)
