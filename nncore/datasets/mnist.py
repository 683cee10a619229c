"""MNIST: 70,000 28x28 grayscale images of handwritten digits 0-9.

Keras-compatible::

    from nncore.datasets import mnist
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    # x_train (60000, 28, 28) uint8, y_train (60000,) uint8
    # x_test  (10000, 28, 28) uint8, y_test  (10000,) uint8

Keras downloads one ``mnist.npz``; nncore uses the original four IDX ``.gz``
files instead (same pixels, same order), found like Fashion-MNIST's:

1. the folder in the ``NNCORE_DATA_DIR`` environment variable (or its
   subfolder ``mnist/``);
2. the cache ``~/.nncore/datasets/mnist/`` (``NNCORE_HOME`` replaces
   ``~/.nncore``);
3. a download from :data:`MIRRORS` (or ``mirrors=`` / the
   ``NNCORE_DATASET_MIRRORS`` environment variable), verified against
   :data:`SHA256` and stored in the cache.

Note: MNIST and Fashion-MNIST use the same file names.  To keep both under
one ``NNCORE_DATA_DIR``, put them in its subfolders ``mnist/`` and
``fashion_mnist/`` (looked at before the folder itself).  A file whose hash is
not the official one is used, with a warning.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from . import _download, _mnist_format
from ._download import DatasetUnavailableError

__all__ = ["load_data", "MIRRORS", "SHA256", "DatasetUnavailableError"]

#: Base URLs tried in order; read at call time so it can be replaced.  Both
#: serve the original IDX .gz files (the original yann.lecun.com host now
#: often refuses automated downloads, hence these well-known copies).
MIRRORS = [
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
]

#: SHA-256 of the official .gz files.  These are the values used by
#: TensorFlow Datasets, torchvision and many independent projects; their MD5s
#: are the well-known f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d....
SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
SIZES = {
    "train-images-idx3-ubyte.gz": 9912422,
    "train-labels-idx1-ubyte.gz": 28881,
    "t10k-images-idx3-ubyte.gz": 1648877,
    "t10k-labels-idx1-ubyte.gz": 4542,
}

SPEC = _mnist_format.make_spec("mnist", "MNIST", SHA256, SIZES)

_KERAS_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _load_keras_npz(path: str):
    """Read a Keras-style ``mnist.npz`` (four uint8 arrays, no pickle)."""
    with np.load(path, allow_pickle=False) as npz:
        missing = [k for k in _KERAS_NPZ_KEYS if k not in npz.files]
        if missing:
            raise ValueError(f"{path}: not a Keras mnist.npz (missing {missing})")
        x_train, y_train, x_test, y_test = (npz[k] for k in _KERAS_NPZ_KEYS)
    for name, arr, shape in (("x_train", x_train, (60000, 28, 28)), ("y_train", y_train, (60000,)),
                             ("x_test", x_test, (10000, 28, 28)), ("y_test", y_test, (10000,))):
        if arr.dtype != np.uint8 or arr.shape != shape:
            raise ValueError(f"{path}: {name} is {arr.dtype} {arr.shape}, expected uint8 {shape}")
    return (x_train, y_train), (x_test, y_test)


def load_data(
    path: str = "mnist.npz",
    *,
    mirrors: Optional[Sequence[str]] = None,
    download: bool = True,
    timeout: float = _download.DEFAULT_TIMEOUT,
    progress: bool = True,
):
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``.

    Shapes (60000, 28, 28), (60000,), (10000, 28, 28), (10000,); all uint8.

    Args:
        path: accepted for Keras compatibility.  If it names an existing
            Keras-format ``.npz`` file (as a path, or inside the MNIST cache
            folder), that file is read; otherwise it is ignored and the IDX
            files are used.
        mirrors: base URLs to download from, replacing :data:`MIRRORS`.
        download: if False, never touch the network (disk only).
        timeout: seconds per network operation.
        progress: show a download progress bar on stderr.

    Raises:
        DatasetUnavailableError: the files are not on disk and cannot be
            downloaded; the message says where to put them.
        ValueError: a file is malformed.
    """
    if path:
        # Like Keras: a bare file name is relative to the cache folder (never
        # to the current directory, which could hold anything); a path with a
        # folder part is taken as given.
        bare = os.path.basename(path) == path
        candidate = os.path.join(_download.cache_dir(SPEC.name), path) if bare else path
        if os.path.isfile(candidate):
            return _load_keras_npz(candidate)
    return _mnist_format.load(SPEC, MIRRORS, mirrors=mirrors, download=download,
                              timeout=timeout, progress=progress,
                              n_train=60000, n_test=10000)
