"""Optimizer updates, in place (twin of ``src_cython/optimizers.pyx``).

Written in Keras 3's order of operations and in the parameter's own dtype, so
float32 results match Keras to rounding.  ``w`` and ``g`` are flat arrays
(updates are element-wise); slots are arrays of the same size, or None when
the optimizer's configuration does not use them.
"""

# The kernels: the same names exist in nncore._ext.optimizers (the compiled twin).
__all__ = ['sgd_update', 'adagrad_update', 'rmsprop_update', 'adam_update', 'adam_alpha', 'l1_l2_penalty_and_grad']
import math

import numpy as np


def _f(x, like):
    return like.dtype.type(x)


def _same_size(name, w, **arrays):
    for what, a in arrays.items():
        if a is not None and a.shape != w.shape:
            raise ValueError(f"{name}: {what} has {a.shape[0]} elements, w has {w.shape[0]}")


def sgd_update(w, g, momentum_slot, learning_rate, momentum=0.0, nesterov=False):
    """Stochastic gradient descent.

        no momentum:  w <- w - lr * g
        momentum:     m <- momentum * m - lr * g
                      w <- w + m                        (classical)
                      w <- w + momentum * m - lr * g    (Nesterov, with the new m)
    """
    _same_size("sgd_update", w, g=g, momentum_slot=momentum_slot)
    lr, mu = _f(learning_rate, w), _f(momentum, w)
    if momentum_slot is None:
        w -= g * lr
        return
    m = momentum_slot
    m[...] = -g * lr + m * mu
    if nesterov:
        w += -g * lr + m * mu
    else:
        w += m


def adagrad_update(w, g, accumulator, learning_rate, epsilon=1e-7):
    """Adagrad: every weight's step shrinks with its history of squared gradients.

        a <- a + g^2
        w <- w - lr * g / sqrt(a + eps)
    """
    _same_size("adagrad_update", w, g=g, accumulator=accumulator)
    lr, eps = _f(learning_rate, w), _f(epsilon, w)
    accumulator += g * g
    w -= lr * g / np.sqrt(accumulator + eps)


def rmsprop_update(w, g, velocity, average_gradient, momentum_slot,
                   learning_rate, rho=0.9, momentum=0.0, epsilon=1e-7):
    """RMSprop: divide by a running RMS of recent gradients.

        v   <- rho * v + (1 - rho) * g^2
        centered:  mg <- rho * mg + (1 - rho) * g;   den = v - mg^2 + eps
        otherwise: den = v + eps
        inc = lr * g / sqrt(den)
        momentum:  mom <- momentum * mom + inc;  w <- w - mom
        otherwise: w <- w - inc
    """
    _same_size("rmsprop_update", w, g=g, velocity=velocity,
               average_gradient=average_gradient, momentum_slot=momentum_slot)
    lr, r, mu, eps = (_f(v, w) for v in (learning_rate, rho, momentum, epsilon))
    one = _f(1.0, w)
    velocity[...] = r * velocity + (one - r) * g * g
    if average_gradient is not None:
        average_gradient[...] = r * average_gradient + (one - r) * g
        den = velocity - average_gradient * average_gradient + eps
    else:
        den = velocity + eps
    inc = lr * g / np.sqrt(den)
    if momentum_slot is not None:
        momentum_slot[...] = mu * momentum_slot + inc
        w -= momentum_slot
    else:
        w -= inc


def adam_alpha(learning_rate, beta_1, beta_2, step):
    """Adam's bias-corrected step size: lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)."""
    return learning_rate * math.sqrt(1.0 - beta_2 ** step) / (1.0 - beta_1 ** step)


def adam_update(w, g, m, v, vhat, learning_rate, beta_1, beta_2, epsilon, step):
    """Adam (Keras's "epsilon-hat" form), t = step counted from 1.

        alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
        m <- m + (g - m) * (1 - beta_1)         (running mean of g)
        v <- v + (g^2 - v) * (1 - beta_2)       (running mean of g^2)
        amsgrad:  vhat <- max(vhat, v), used in place of v
        w <- w - alpha * m / (sqrt(v) + eps)
    """
    if step < 1:
        raise ValueError(f"adam_update: step must be >= 1, got {step}")
    _same_size("adam_update", w, g=g, m=m, v=v, vhat=vhat)
    alpha = _f(adam_alpha(learning_rate, beta_1, beta_2, step), w)
    b1, b2, eps, one = _f(beta_1, w), _f(beta_2, w), _f(epsilon, w), _f(1.0, w)
    m += (g - m) * (one - b1)
    v += (g * g - v) * (one - b2)
    vv = v
    if vhat is not None:
        np.maximum(vhat, v, out=vhat)
        vv = vhat
    w -= (m * alpha) / (np.sqrt(vv) + eps)


def l1_l2_penalty_and_grad(w, g, l1, l2):
    """Weight regularization added to the loss: l1 * sum|w| + l2 * sum w^2.

    Its gradient, l1 * sign(w) + 2 * l2 * w, is added into g (when not None).
    """
    w64 = w.astype(np.float64)
    pen = float(l1 * np.abs(w64).sum() + l2 * (w64 * w64).sum())
    if g is not None:
        if l1:
            g += _f(l1, w) * np.sign(w)
        if l2:
            g += _f(2 * l2, w) * w
    return pen
