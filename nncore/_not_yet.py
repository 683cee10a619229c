"""Keras names nncore does not have yet, and the message a learner gets for them.

``keras.layers.BatchNormalization`` in a notebook ported to nncore should say
"not in nncore yet" (and what nncore has) rather than a bare AttributeError;
a misspelt name gets a "did you mean" instead.
"""
from __future__ import annotations

import difflib

LAYERS = frozenset("""
    BatchNormalization LayerNormalization GroupNormalization UnitNormalization
    Normalization Rescaling Resizing CenterCrop Conv1D Conv3D Conv1DTranspose
    Conv2DTranspose Conv3DTranspose SeparableConv1D SeparableConv2D DepthwiseConv1D
    DepthwiseConv2D MaxPooling1D MaxPooling3D AveragePooling1D
    AveragePooling3D GlobalAveragePooling1D GlobalAveragePooling2D
    GlobalAveragePooling3D GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D
    UpSampling1D UpSampling2D UpSampling3D ZeroPadding1D ZeroPadding2D ZeroPadding3D
    Cropping1D Cropping2D Cropping3D Bidirectional TimeDistributed
    ConvLSTM1D ConvLSTM2D RNN Embedding Masking Reshape Permute RepeatVector Lambda
    Concatenate Add Subtract Multiply Average Maximum Minimum Dot Attention
    AdditiveAttention MultiHeadAttention GroupQueryAttention LeakyReLU ReLU PReLU ELU
    Softmax SpatialDropout1D SpatialDropout2D SpatialDropout3D GaussianNoise
    GaussianDropout AlphaDropout ActivityRegularization Identity StringLookup
    IntegerLookup TextVectorization CategoryEncoding Hashing Discretization
    RandomFlip RandomRotation RandomZoom RandomCrop RandomTranslation RandomContrast
    RandomBrightness EinsumDense
""".split())

CALLBACKS = frozenset("""
    TensorBoard BackupAndRestore RemoteMonitor SwapEMAWeights
""".split())


def attribute_error(module: str, name: str, not_yet: frozenset, have) -> AttributeError:
    """The AttributeError for ``module.name``: not-in-nncore-yet, a close match, or plain."""
    have = sorted(n for n in have if not n.startswith("_"))
    if name in not_yet:
        return AttributeError(
            f"keras.{module.split('.', 1)[1]}.{name} is not in nncore yet. "
            f"nncore has: {', '.join(have)}")
    close = difflib.get_close_matches(name, have, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return AttributeError(f"module {module!r} has no attribute {name!r}.{hint}")
