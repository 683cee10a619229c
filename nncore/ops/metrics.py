"""Counting correct predictions (twin of ``src_cython/metrics.pyx``).

    sparse    correct_i = [argmax_j p_ij == label_i]
    one-hot   correct_i = [argmax_j p_ij == argmax_j y_ij]
    binary    correct_i = mean_j [(p_ij > threshold) == y_ij]

Each returns sum_i w_i * correct_i (w = sample weights, 1 when None); accuracy
is that divided by the summed weights.
"""

# The kernels: the same names exist in nncore._ext.metrics (the compiled twin).
__all__ = ['count_correct_sparse', 'count_correct_onehot', 'count_correct_binary']
import numpy as np


def _w(sample_weight, n):
    return np.ones(n) if sample_weight is None else sample_weight.astype(np.float64)


def count_correct_sparse(probs, labels, sample_weight=None):
    ok = np.argmax(probs, axis=1) == labels
    return float((ok * _w(sample_weight, len(ok))).sum())


def count_correct_onehot(probs, targets, sample_weight=None):
    ok = np.argmax(probs, axis=1) == np.argmax(targets, axis=1)
    return float((ok * _w(sample_weight, len(ok))).sum())


def count_correct_binary(probs, targets, sample_weight=None, threshold=0.5):
    ok = ((probs > threshold).astype(probs.dtype) == targets).mean(axis=1)
    return float((ok * _w(sample_weight, len(ok))).sum())
