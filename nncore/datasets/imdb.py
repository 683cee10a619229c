"""IMDB movie reviews: 25,000 training and 25,000 test reviews, positive (1)
or negative (0), each a list of word indices.

Keras-compatible (the book's chapter 9)::

    from nncore.datasets import imdb
    (train_input, train_target), (test_input, test_target) = imdb.load_data(num_words=200)
    # train_input: 1-D object array of 25000 Python lists of ints
    # train_target: (25000,) int64 labels 0/1

Word ``k`` of the file is the k-th most frequent word.  After loading, index
0 is padding, ``start_char`` (1) starts every review, ``oov_char`` (2) stands
for a word cut by ``num_words``/``skip_top``, and real words start at
``index_from`` (3): file word ``k`` becomes ``k + 3``.

Where ``imdb.npz`` comes from (first hit wins): ``$NNCORE_DATA_DIR/imdb.npz``
or ``$NNCORE_DATA_DIR/imdb/imdb.npz`` (a SHA-256 different from the official
file only warns), the cache ``~/.nncore/datasets/imdb/``, else a download from
Keras's location, verified by SHA-256.  The file's reviews are pickled object
arrays; they are read by a restricted reader that executes nothing
(``nncore/datasets/_npy_objects.py``).

The IMDB dataset is by Maas et al. (2011), "Learning Word Vectors for
Sentiment Analysis", ai.stanford.edu/~amaas/data/sentiment/.
"""
from __future__ import annotations

import json
import numbers
from typing import Optional, Sequence

import numpy as np

from . import _download
from ._download import DatasetSpec, DatasetUnavailableError, RemoteFile
from ._npy_objects import UnsafeArrayError, load_npz_lists

__all__ = ["load_data", "get_word_index", "MIRRORS", "SHA256", "DatasetUnavailableError",
           "UnsafeArrayError"]

#: Base URLs tried in order (Keras's own location).
MIRRORS = ["https://storage.googleapis.com/tensorflow/tf-keras-datasets/"]

#: SHA-256 of the official files (``imdb.npz``'s is the digest Keras checks;
#: the word index's is that of the same official file).
SHA256 = {
    "imdb.npz": "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
}
# Keras pins the word index by MD5, so that is the digest checked for it.
WORD_INDEX_MD5 = "bfafd718b763782e994055a2d397834f"


def _spec(name):
    if name == "imdb.npz":
        rf = RemoteFile(name, SHA256[name])
    else:
        rf = RemoteFile(name, WORD_INDEX_MD5, algorithm="md5")
    return DatasetSpec("imdb", "IMDB", (rf,))


def _check_int(value, what, allow_none=False, minimum=None):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"imdb.load_data: {what} must be an integer"
                        f"{' or None' if allow_none else ''}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"imdb.load_data: {what} must be >= {minimum}, got {value}")
    return int(value)


def _locate(path, mirrors, download, timeout, progress):
    """A local path for ``path``: an existing file as given, else the file of
    that name found/downloaded by the dataset machinery."""
    import os
    if os.path.isabs(path) or os.sep in path:
        if not os.path.isfile(path):
            raise DatasetUnavailableError(f"imdb: no file at {path}")
        return path
    if path != "imdb.npz":
        raise ValueError(f"imdb.load_data: path={path!r}; give an absolute path to a file, "
                         "or leave the default 'imdb.npz' (looked up in $NNCORE_DATA_DIR, "
                         "the cache, then downloaded)")
    spec = _spec("imdb.npz")
    return _download.fetch(spec, _download.resolve_mirrors(MIRRORS, mirrors),
                           download=download, timeout=timeout, progress=progress)[path]


def load_data(path: str = "imdb.npz", num_words: Optional[int] = None, skip_top: int = 0,
              maxlen: Optional[int] = None, seed: int = 113, start_char: Optional[int] = 1,
              oov_char: Optional[int] = 2, index_from: int = 3, *,
              mirrors: Optional[Sequence[str]] = None, download: bool = True,
              timeout: float = _download.DEFAULT_TIMEOUT, progress: bool = True):
    """Load IMDB as ``(x_train, y_train), (x_test, y_test)``, processed as Keras 3 does.

    In this order: each split is shuffled with ``np.random.RandomState(seed)``
    (the training split first, then the test split, from the same generator);
    every word index is shifted by ``index_from`` and ``start_char`` put in
    front (when ``start_char`` is None, only the shift); with ``maxlen``,
    reviews of ``maxlen`` or more indices (counting ``start_char``) are
    *dropped* (not cut); then every index outside ``skip_top <= w < num_words``
    becomes ``oov_char``, or is removed when ``oov_char`` is None.
    ``num_words=None`` keeps every word.

    Args:
        path: ``'imdb.npz'`` (found in ``$NNCORE_DATA_DIR``, the cache, or
            downloaded), or an absolute path to a file in the same format.
        num_words: keep the indices below this (the most frequent words).
        skip_top: indices below this (the most frequent) become ``oov_char``.
        maxlen: drop reviews of this length or longer.
        seed: shuffling seed.
        start_char: index put at the start of every review (None: none).
        oov_char: index for cut words (None: remove them).
        index_from: shift added to every word index of the file.
        mirrors, download, timeout, progress: as for ``fashion_mnist.load_data``.

    Returns:
        ``x_*``: 1-D object arrays of Python lists of ints; ``y_*``: int labels.

    Raises:
        DatasetUnavailableError: no file on disk and no download possible;
            the message says where to put ``imdb.npz``.
        UnsafeArrayError: the file holds anything but lists of ints.

    Example::

        (x_train, y_train), _ = imdb.load_data(num_words=200)
        x_train[0][:5]        # [1, 14, 22, 16, 43]
    """
    num_words = _check_int(num_words, "num_words", allow_none=True, minimum=0)
    skip_top = _check_int(skip_top, "skip_top", minimum=0)
    maxlen = _check_int(maxlen, "maxlen", allow_none=True, minimum=0)
    seed = _check_int(seed, "seed", minimum=0)
    start_char = _check_int(start_char, "start_char", allow_none=True)
    oov_char = _check_int(oov_char, "oov_char", allow_none=True)
    index_from = _check_int(index_from, "index_from")

    local = _locate(path, mirrors, download, timeout, progress)
    f = load_npz_lists(local, ("x_train", "x_test"), ("y_train", "y_test"))
    x_train, labels_train = f["x_train"], f["y_train"]
    x_test, labels_test = f["x_test"], f["y_test"]
    for x, y, split in ((x_train, labels_train, "train"), (x_test, labels_test, "test")):
        if y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu":
            raise ValueError(f"{local}: y_{split} must be {len(x)} integer labels, got "
                             f"shape {y.shape} dtype {y.dtype}")

    # One generator for both splits, in this order, so the same seed gives
    # Keras's exact order.
    rng = np.random.RandomState(seed)
    order = np.arange(len(x_train))
    rng.shuffle(order)
    x_train, labels_train = x_train[order], labels_train[order]
    order = np.arange(len(x_test))
    rng.shuffle(order)
    x_test, labels_test = x_test[order], labels_test[order]

    def shift(xs):
        head = [] if start_char is None else [start_char]
        return [head + [w + index_from for w in x] for x in xs]

    x_train, x_test = shift(x_train), shift(x_test)
    labels_train, labels_test = list(labels_train), list(labels_test)

    if maxlen:  # Keras: `if maxlen:`, so maxlen=0 means no limit
        keep = [i for i, x in enumerate(x_train) if len(x) < maxlen]
        x_train, labels_train = [x_train[i] for i in keep], [labels_train[i] for i in keep]
        keep = [i for i, x in enumerate(x_test) if len(x) < maxlen]
        x_test, labels_test = [x_test[i] for i in keep], [labels_test[i] for i in keep]
        if not x_train or not x_test:
            raise ValueError(f"imdb.load_data: no review is shorter than maxlen={maxlen}; "
                             "increase maxlen")

    xs = x_train + x_test
    labels = np.concatenate([np.asarray(labels_train, dtype=f["y_train"].dtype),
                             np.asarray(labels_test, dtype=f["y_test"].dtype)])
    if not num_words:  # Keras: None or 0 -> the largest index (kept out by `<`)
        num_words = max((max(x) for x in xs if x), default=0)
    if oov_char is not None:
        xs = [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    else:
        xs = [[w for w in x if skip_top <= w < num_words] for x in xs]

    n = len(x_train)
    return (_object_array(xs[:n]), labels[:n]), (_object_array(xs[n:]), labels[n:])


def _object_array(rows):
    # Always 1-D (np.array(rows, dtype=object) would make a 2-D array when
    # every review happens to have the same length).
    out = np.empty(len(rows), dtype=object)
    for i, r in enumerate(rows):
        out[i] = r
    return out


def get_word_index(path: str = "imdb_word_index.json", *,
                   mirrors: Optional[Sequence[str]] = None, download: bool = True,
                   timeout: float = _download.DEFAULT_TIMEOUT, progress: bool = True) -> dict:
    """The dict ``{word: index}`` of the file's word indices (1 = most frequent).

    These are the indices *before* ``load_data``'s shift: word ``w`` appears
    in loaded reviews as ``word_index[w] + index_from`` (3 by default), and
    1/2 mean start/out-of-vocabulary.  Decoding a review::

        index_from = 3
        words = {i + index_from: w for w, i in imdb.get_word_index().items()}
        words[1], words[2] = "[START]", "[OOV]"
        " ".join(words.get(i, "?") for i in x_train[0])
    """
    import os
    if os.path.isabs(path):
        local = path
        if not os.path.isfile(local):
            raise DatasetUnavailableError(f"imdb: no file at {path}")
    else:
        spec = _spec(path)
        local = _download.fetch(spec, _download.resolve_mirrors(MIRRORS, mirrors),
                                download=download, timeout=timeout, progress=progress)[path]
    with open(local, encoding="utf-8") as fh:
        index = json.load(fh)
    if not isinstance(index, dict) or not all(
            isinstance(k, str) and type(v) is int for k, v in index.items()):
        raise ValueError(f"{local}: expected a JSON object {{word: integer index}}")
    return index
