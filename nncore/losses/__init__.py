"""Losses, as ``keras.losses``: classes, functions and string names.

    'sparse_categorical_crossentropy'  integer labels, softmax outputs
    'categorical_crossentropy'         one-hot labels, softmax outputs
    'binary_crossentropy'              0/1 labels, sigmoid outputs
    'mse' / 'mean_squared_error'       regression

The maths (and the fused ``p - y`` gradient) is in ``nncore.ops.losses``.
"""
from nncore.losses.loss import (BinaryCrossentropy, CategoricalCrossentropy, Loss,
                                MeanSquaredError, SparseCategoricalCrossentropy,
                                binary_crossentropy, categorical_crossentropy, get,
                                mean_squared_error, mse, sparse_categorical_crossentropy)

__all__ = ["Loss", "SparseCategoricalCrossentropy", "CategoricalCrossentropy",
           "BinaryCrossentropy", "MeanSquaredError", "sparse_categorical_crossentropy",
           "categorical_crossentropy", "binary_crossentropy", "mean_squared_error",
           "mse", "get"]


def __getattr__(name):
    # a Keras name nncore lacks says "not in nncore yet"; a typo gets "did you mean"
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
