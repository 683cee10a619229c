"""Shared logic for datasets distributed as the four MNIST-style IDX files.

MNIST and Fashion-MNIST (and a fake dataset used by the tests) all ship as::

    train-images-idx3-ubyte.gz   (N_train, 28, 28) uint8
    train-labels-idx1-ubyte.gz   (N_train,)        uint8
    t10k-images-idx3-ubyte.gz    (N_test, 28, 28)  uint8
    t10k-labels-idx1-ubyte.gz    (N_test,)         uint8

This module turns a table of official SHA-256 digests into a
:class:`~nncore.datasets._download.DatasetSpec` and loads the files into the
Keras-style ``(x_train, y_train), (x_test, y_test)`` tuple.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from . import _download
from ._idx import read_idx

__all__ = ["TRAIN_IMAGES", "TRAIN_LABELS", "TEST_IMAGES", "TEST_LABELS",
           "FILE_NAMES", "make_spec", "load"]

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

ArrayPair = Tuple[np.ndarray, np.ndarray]


def make_spec(name: str, title: str, sha256: Dict[str, str],
              sizes: Optional[Dict[str, int]] = None) -> _download.DatasetSpec:
    """Build the spec of a four-file dataset from its digest (and size) table."""
    sizes = sizes or {}
    if set(sha256) != set(FILE_NAMES):
        raise ValueError(f"sha256 table must have exactly the keys {FILE_NAMES}")
    files = tuple(_download.RemoteFile(n, sha256[n].lower(), sizes.get(n)) for n in FILE_NAMES)
    return _download.DatasetSpec(name=name, title=title, files=files)


def _load_split(images_path: str, labels_path: str, count: Optional[int],
                image_shape: Tuple[int, int], num_classes: int) -> ArrayPair:
    x = read_idx(images_path, expected_shape=(count,) + tuple(image_shape),
                 expected_dtype=np.uint8)
    y = read_idx(labels_path, expected_shape=(count,), expected_dtype=np.uint8)
    if len(x) != len(y):
        raise ValueError(f"{images_path} holds {len(x)} images but {labels_path} "
                         f"holds {len(y)} labels")
    if y.size and int(y.max()) >= num_classes:
        raise ValueError(f"{labels_path}: label {int(y.max())} out of range "
                         f"0..{num_classes - 1}")
    return x, y


def load(
    spec: _download.DatasetSpec,
    default_mirrors: Sequence[str],
    *,
    mirrors: Optional[Sequence[str]] = None,
    download: bool = True,
    timeout: float = _download.DEFAULT_TIMEOUT,
    progress: bool = True,
    n_train: Optional[int] = None,
    n_test: Optional[int] = None,
    image_shape: Tuple[int, int] = (28, 28),
    num_classes: int = 10,
) -> Tuple[ArrayPair, ArrayPair]:
    """Locate (or download) the four files of ``spec`` and parse them.

    ``n_train``/``n_test`` are the exact expected counts (``None``: any, as
    long as images and labels agree).  Returns
    ``(x_train, y_train), (x_test, y_test)``, all uint8.
    """
    paths = _download.fetch(spec, _download.resolve_mirrors(default_mirrors, mirrors),
                            download=download, timeout=timeout, progress=progress)
    train = _load_split(paths[TRAIN_IMAGES], paths[TRAIN_LABELS], n_train,
                        image_shape, num_classes)
    test = _load_split(paths[TEST_IMAGES], paths[TEST_LABELS], n_test,
                       image_shape, num_classes)
    return train, test
