"""Fashion-MNIST: 70,000 28x28 grayscale images of clothing in 10 classes.

Keras-compatible::

    from nncore.datasets import fashion_mnist
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    # x_train (60000, 28, 28) uint8, y_train (60000,) uint8
    # x_test  (10000, 28, 28) uint8, y_test  (10000,) uint8

Where the files come from (first hit wins, per file):

1. the folder in the ``NNCORE_DATA_DIR`` environment variable (or its
   subfolder ``fashion_mnist/``);
2. the cache ``~/.nncore/datasets/fashion_mnist/`` (``NNCORE_HOME`` replaces
   ``~/.nncore``);
3. a download from :data:`MIRRORS` (or the ``mirrors=`` argument, or the
   ``NNCORE_DATASET_MIRRORS`` environment variable), verified against
   :data:`SHA256` and stored in the cache.

Offline, :func:`load_sample` returns a bundled genuine subset (the first 2,000
training and 500 test images) and :func:`load_data_or_sample` falls back to it.

Fashion-MNIST is by Zalando Research (Xiao, Rasul, Vollgraf, 2017), MIT
License, Copyright (c) 2017 Zalando SE.
"""
from __future__ import annotations

import sys
from typing import Optional, Sequence

from . import _download, _mnist_format, _sample
from ._download import DatasetUnavailableError

__all__ = ["load_data", "load_sample", "load_data_or_sample", "CLASS_NAMES",
           "MIRRORS", "SHA256", "DatasetUnavailableError"]

#: Label index -> class name.
CLASS_NAMES = (
    "T-shirt/top",  # 0
    "Trouser",      # 1
    "Pullover",     # 2
    "Dress",        # 3
    "Coat",         # 4
    "Sandal",       # 5
    "Shirt",        # 6
    "Sneaker",      # 7
    "Bag",          # 8
    "Ankle boot",   # 9
)

#: Base URLs tried in order.  Read at call time, so it can be replaced
#: (e.g. by tests, or to add an internal mirror).
MIRRORS = [
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",  # the one Keras uses
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",    # the authors' host
]

#: SHA-256 of the official .gz files (they also match the MD5s published by
#: Zalando Research: 8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...).
SHA256 = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
SIZES = {
    "train-images-idx3-ubyte.gz": 26421880,
    "train-labels-idx1-ubyte.gz": 29515,
    "t10k-images-idx3-ubyte.gz": 4422102,
    "t10k-labels-idx1-ubyte.gz": 5148,
}

SPEC = _mnist_format.make_spec("fashion_mnist", "Fashion-MNIST", SHA256, SIZES)


def load_data(
    *,
    mirrors: Optional[Sequence[str]] = None,
    download: bool = True,
    timeout: float = _download.DEFAULT_TIMEOUT,
    progress: bool = True,
    sample: bool = False,
):
    """Load Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)``.

    Shapes (60000, 28, 28), (60000,), (10000, 28, 28), (10000,); all uint8.

    Args:
        mirrors: base URLs to download from, replacing :data:`MIRRORS`.
        download: if False, never touch the network (disk only).
        timeout: seconds per network operation.
        progress: show a download progress bar on stderr.
        sample: return the bundled sample instead (see :func:`load_sample`).

    Raises:
        DatasetUnavailableError: the files are not on disk and cannot be
            downloaded; the message says where to put them.
        ValueError: a file is malformed.

    Example::

        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
        x_train = x_train / 255.0                  # pixels 0..255 -> 0..1
        keras.datasets.fashion_mnist.CLASS_NAMES[y_train[0]]    # 'Ankle boot'
    """
    if sample:
        return load_sample()
    return _mnist_format.load(SPEC, MIRRORS, mirrors=mirrors, download=download,
                              timeout=timeout, progress=progress,
                              n_train=60000, n_test=10000)


def load_sample():
    """The bundled genuine subset: the first 2,000 training and first 500 test
    images/labels of Fashion-MNIST, same tuple structure as :func:`load_data`
    (shapes (2000, 28, 28), (2000,), (500, 28, 28), (500,); uint8)."""
    return _sample.load_sample()


def load_data_or_sample(**kwargs):
    """:func:`load_data` if the full set is available, else the bundled sample.

    When falling back, prints one line to stderr saying so and where to put
    the files.  Keyword arguments are passed to :func:`load_data`.
    """
    try:
        return load_data(**kwargs)
    except DatasetUnavailableError:
        print(
            f"nncore: full Fashion-MNIST unavailable (offline?); using the bundled "
            f"sample of {_sample.SAMPLE_TRAIN} train / {_sample.SAMPLE_TEST} test images. "
            f"For the full set put the 4 .gz files in ${_download.DATA_DIR_ENV} or "
            f"{_download.cache_dir(SPEC.name)}",
            file=sys.stderr,
        )
        return load_sample()
