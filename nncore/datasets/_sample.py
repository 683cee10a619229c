"""The small genuine Fashion-MNIST sample shipped inside the package.

``data/fashion_mnist_sample.npz`` holds the first :data:`SAMPLE_TRAIN` training
and first :data:`SAMPLE_TEST` test images and labels of the official
Fashion-MNIST files, unchanged, in the official order (so it equals
``x_train[:2000]`` etc. of the full set).  It lets examples, docs and tests run
offline.  It is a plain ``.npz`` (``np.savez_compressed``) of four uint8
arrays, read with ``allow_pickle=False``: no object arrays, no pickle.

Rebuild it (maintainers only) with::

    python -c "from nncore.datasets import _sample; _sample.build_sample('/path/to/fashion-mnist')"
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

__all__ = ["SAMPLE_PATH", "SAMPLE_TRAIN", "SAMPLE_TEST", "load_sample", "build_sample"]

SAMPLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                           "fashion_mnist_sample.npz")
SAMPLE_TRAIN = 2000
SAMPLE_TEST = 500
_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_sample(path: Optional[str] = None):
    """Return the bundled sample as ``(x_train, y_train), (x_test, y_test)``."""
    path = path or SAMPLE_PATH
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"the bundled Fashion-MNIST sample {path} is missing; the nncore "
            "installation is incomplete (package data 'nncore/datasets/data/*' "
            "was not installed)")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in _KEYS}
    x_train, y_train, x_test, y_test = (arrays[k] for k in _KEYS)
    # Cheap sanity checks: a damaged or replaced file should fail loudly.
    for name, arr, shape in (("x_train", x_train, (SAMPLE_TRAIN, 28, 28)),
                             ("y_train", y_train, (SAMPLE_TRAIN,)),
                             ("x_test", x_test, (SAMPLE_TEST, 28, 28)),
                             ("y_test", y_test, (SAMPLE_TEST,))):
        if arr.dtype != np.uint8 or arr.shape != shape:
            raise ValueError(f"{path}: {name} has {arr.dtype} {arr.shape}, "
                             f"expected uint8 {shape}")
    return (x_train, y_train), (x_test, y_test)


def build_sample(source_dir: str, dest: Optional[str] = None) -> str:
    """Write the sample from the four official Fashion-MNIST ``.gz`` files.

    The files are verified against the official SHA-256 digests first, so the
    sample can only ever be built from genuine data.
    """
    from . import fashion_mnist
    from ._download import sha256_file
    from ._mnist_format import _load_split, TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS

    for name, digest in fashion_mnist.SHA256.items():
        got = sha256_file(os.path.join(source_dir, name))
        if got != digest:
            raise ValueError(f"{name}: SHA-256 {got} is not the official {digest}")
    j = lambda n: os.path.join(source_dir, n)  # noqa: E731
    x_train, y_train = _load_split(j(TRAIN_IMAGES), j(TRAIN_LABELS), 60000, (28, 28), 10)
    x_test, y_test = _load_split(j(TEST_IMAGES), j(TEST_LABELS), 10000, (28, 28), 10)
    dest = dest or SAMPLE_PATH
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    np.savez_compressed(dest, x_train=x_train[:SAMPLE_TRAIN], y_train=y_train[:SAMPLE_TRAIN],
                        x_test=x_test[:SAMPLE_TEST], y_test=y_test[:SAMPLE_TEST])
    return dest
