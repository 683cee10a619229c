"""Losses and their gradients in one pass (twin of ``src_cython/losses.pyx``).

Every function returns ``sum_i w_i * loss_i`` over the rows (w = sample
weights, all 1 when None) and writes into ``d`` the gradient of
``scale * sum_i w_i * loss_i``; Keras's default reduction is the mean over the
batch, i.e. ``scale = 1 / batch_size``.

Softmax + cross-entropy fuse into the famous ``p - y``:  with
``p = softmax(z)`` and ``L = -sum_j y_j log p_j``,

    dL/dz_k = p_k * sum_j y_j - y_k        ( = p_k - y_k for one-hot y )

so the backward pass never divides by a probability.  The loss itself is
computed as ``logsumexp(z) - sum_j y_j z_j`` (stable for any z).  Keras on
TensorFlow does exactly this whenever the output layer is a softmax (or a
sigmoid, for binary cross-entropy), so these are the default paths.

From probabilities (an output that is not a softmax/sigmoid layer), Keras
clips to [eps, 1 - eps] with eps = 1e-7 (see the per-function docstrings).
"""

# The kernels: the same names exist in nncore._ext.losses (the compiled twin).
__all__ = ['softmax_crossentropy_sparse', 'softmax_crossentropy', 'sigmoid_binary_crossentropy', 'crossentropy_from_probs', 'crossentropy_sparse_from_probs', 'binary_crossentropy_from_probs', 'mean_squared_error']
import numpy as np

EPSILON = 1e-7


def _weights(sample_weight, n):
    if sample_weight is None:
        return np.ones(n)
    if sample_weight.shape[0] != n:
        raise ValueError(f"{sample_weight.shape[0]} sample weights for {n} rows")
    return sample_weight.astype(np.float64)


def _check_labels(name, labels, n, c):
    if labels.shape[0] != n:
        raise ValueError(f"{name}: {labels.shape[0]} labels for {n} rows")
    bad = (labels < 0) | (labels >= c)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}: label {labels[i]} at row {i} is outside [0, {c})")


def _log_softmax(z):
    z64 = z.astype(np.float64)
    m = z64.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(z64 - m).sum(axis=1, keepdims=True))
    return z64 - lse


def softmax_crossentropy_sparse(logits, labels, probs, dlogits, scale, sample_weight=None):
    """p = softmax(z); loss_i = -log p_i[label_i]; dz = (p - onehot(label)) * w * scale."""
    n, c = logits.shape
    _check_labels("softmax_crossentropy_sparse", labels, n, c)
    w = _weights(sample_weight, n)
    logp = _log_softmax(logits)
    probs[...] = np.exp(logp)
    rows = -logp[np.arange(n), labels]
    if dlogits is not None:
        g = np.exp(logp)
        g[np.arange(n), labels] -= 1.0
        dlogits[...] = g * (w * scale)[:, None]
    return float((rows * w).sum())


def softmax_crossentropy(logits, targets, probs, dlogits, scale, sample_weight=None):
    """p = softmax(z); loss_i = -sum_j y_ij log p_ij; dz = (p * sum_j y_j - y) * w * scale."""
    n, c = logits.shape
    if targets.shape != logits.shape:
        raise ValueError(f"softmax_crossentropy: targets {targets.shape} vs logits {logits.shape}")
    w = _weights(sample_weight, n)
    logp = _log_softmax(logits)
    y = targets.astype(np.float64)
    probs[...] = np.exp(logp)
    rows = -(y * logp).sum(axis=1)
    if dlogits is not None:
        g = np.exp(logp) * y.sum(axis=1, keepdims=True) - y
        dlogits[...] = g * (w * scale)[:, None]
    return float((rows * w).sum())


def sigmoid_binary_crossentropy(logits, targets, probs, dlogits, scale, sample_weight=None):
    """p = sigmoid(z); loss_i = mean_j [max(z,0) - z*y + log(1 + e^-|z|)];
    dz = (p - y) * w * scale / c  (c = outputs per sample)."""
    n, c = logits.shape
    if targets.shape != logits.shape:
        raise ValueError(f"sigmoid_binary_crossentropy: targets {targets.shape} vs logits {logits.shape}")
    w = _weights(sample_weight, n)
    z = logits.astype(np.float64)
    y = targets.astype(np.float64)
    rows = (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean(axis=1)
    e = np.exp(-np.abs(z))
    p = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    probs[...] = p
    if dlogits is not None:
        dlogits[...] = (p - y) * (w * scale / c)[:, None]
    return float((rows * w).sum())


def crossentropy_from_probs(probs, targets, dprobs, scale, sample_weight=None):
    """q = clip(p / sum_j p_j, eps, 1-eps); loss_i = -sum_j y_j log q_j.

    Gradient through the normalisation (g_j = -y_j / q_j inside the clip
    range, 0 outside):  dL/dp_k = (g_k - sum_j g_j q_j) / sum_j p_j.
    """
    n, c = probs.shape
    w = _weights(sample_weight, n)
    p = probs.astype(np.float64)
    y = targets.astype(np.float64)
    s = p.sum(axis=1, keepdims=True)
    q_raw = p / s
    q = np.clip(q_raw, EPSILON, 1 - EPSILON)
    rows = -(y * np.log(q)).sum(axis=1)
    if dprobs is not None:
        inside = (q_raw > EPSILON) & (q_raw < 1 - EPSILON)
        g = np.where(inside, -y / q, 0.0)
        d = (g - (g * q_raw).sum(axis=1, keepdims=True)) / s
        dprobs[...] = d * (w * scale)[:, None]
    return float((rows * w).sum())


def crossentropy_sparse_from_probs(probs, labels, dprobs, scale, sample_weight=None):
    """q = clip(p, eps, 1-eps); loss_i = log(sum_j q_j) - log q_label.

    (TensorFlow takes log(q) as logits of its sparse softmax cross-entropy,
    which renormalises after clipping.)  dL/dp_k = [p_k inside the clip
    range] * (1 / sum_j q_j - [k == label] / q_label).
    """
    n, c = probs.shape
    _check_labels("crossentropy_sparse_from_probs", labels, n, c)
    w = _weights(sample_weight, n)
    p = probs.astype(np.float64)
    q = np.clip(p, EPSILON, 1 - EPSILON)
    s = q.sum(axis=1)
    ql = q[np.arange(n), labels]
    rows = np.log(s) - np.log(ql)
    if dprobs is not None:
        g = np.repeat((1.0 / s)[:, None], c, axis=1)
        g[np.arange(n), labels] -= 1.0 / ql
        g[~((p > EPSILON) & (p < 1 - EPSILON))] = 0.0
        dprobs[...] = g * (w * scale)[:, None]
    return float((rows * w).sum())


def binary_crossentropy_from_probs(probs, targets, dprobs, scale, sample_weight=None):
    """q = clip(p, eps, 1-eps); loss_i = -mean_j [y log q + (1-y) log(1-q)]."""
    n, c = probs.shape
    w = _weights(sample_weight, n)
    p = probs.astype(np.float64)
    y = targets.astype(np.float64)
    q = np.clip(p, EPSILON, 1 - EPSILON)
    rows = -(y * np.log(q) + (1 - y) * np.log(1 - q)).mean(axis=1)
    if dprobs is not None:
        inside = (p > EPSILON) & (p < 1 - EPSILON)
        g = np.where(inside, -y / q + (1 - y) / (1 - q), 0.0)
        dprobs[...] = g * (w * scale / c)[:, None]
    return float((rows * w).sum())


def mean_squared_error(preds, targets, dpreds, scale, sample_weight=None):
    """loss_i = mean_j (p_j - y_j)^2;  dL/dp = 2 (p - y) * w * scale / c."""
    n, c = preds.shape
    w = _weights(sample_weight, n)
    diff = preds.astype(np.float64) - targets.astype(np.float64)
    rows = (diff * diff).mean(axis=1)
    if dpreds is not None:
        dpreds[...] = 2.0 * diff * (w * scale / c)[:, None]
    return float((rows * w).sum())
