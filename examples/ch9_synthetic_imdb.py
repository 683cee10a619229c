"""Made-up IMDB-like reviews with a sentiment signal, for chapter 9 without the
real data (and for the benchmarks in ``bench/rnn_*.py``).

Only NumPy: the TensorFlow and PyTorch benchmark workers import this file too.

How a review is made (``make_reviews``):

* a label, 0 or 1, with equal chance;
* a length between ``min_len`` and ``max_len`` words (most reviews are longer
  than the 100 steps the book keeps, as in the real data);
* each word is a *file rank* (1 = the most frequent word, as in ``imdb.npz``)
  drawn with probability proportional to 1/rank over ``vocab`` ranks (Zipf's
  law) -- the background text;
* with probability ``p_sentiment`` a position instead holds a sentiment word:
  ranks ``POSITIVE`` (40..49) for a positive review, ``NEGATIVE`` (50..59) for a
  negative one, except that with probability ``p_flip`` it takes a word of the
  other side (sarcasm, "not bad" ...), so the labels are not perfectly
  predictable.

After ``imdb.load_data(num_words=200)`` rank ``k`` becomes index ``k + 3``,
so the sentiment words (43..62) survive ``num_words=200`` and ``500``.  A
network that learns "count the positive minus the negative words among the
last 100" reaches roughly 85-90 % accuracy; random guessing gets 50 %.

``write_imdb_npz`` stores reviews in Keras's own ``imdb.npz`` format (object
arrays of Python lists of ints, written by ``np.savez``), which
``nncore.datasets.imdb.load_data`` reads with its restricted reader.

Run it to make a file::

    python examples/ch9_synthetic_imdb.py /tmp/data/imdb.npz
    NNCORE_DATA_DIR=/tmp/data python examples/ch9_2_simple_rnn.py
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

POSITIVE = np.arange(40, 50)
NEGATIVE = np.arange(50, 60)


def make_reviews(n, seed=0, vocab=5000, min_len=60, max_len=400,
                 p_sentiment=0.06, p_flip=0.2):
    """``n`` reviews as a list of int arrays of file ranks, and int64 labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype(np.int64)
    lengths = rng.integers(min_len, max_len + 1, n)
    total = int(lengths.sum())
    # background words: rank k with probability proportional to 1/k (Zipf's
    # law over ranks 1..vocab), by inverting the cumulative distribution
    cdf = np.cumsum(1.0 / np.arange(1, vocab + 1))
    words = np.searchsorted(cdf / cdf[-1], rng.random(total), side="right") + 1
    words = np.minimum(words, vocab)
    # sentiment words, on the label's side unless flipped
    where = rng.random(total) < p_sentiment
    side = np.repeat(labels, lengths).astype(bool)
    side ^= rng.random(total) < p_flip
    pick = rng.integers(0, len(POSITIVE), total)
    senti = np.where(side, POSITIVE[pick], NEGATIVE[pick])
    words = np.where(where, senti, words)
    return np.split(words, np.cumsum(lengths)[:-1]), labels


def padded_sequences(n, num_words, maxlen=100, seed=0):
    """What the book feeds its models, without a file: ``n`` reviews as
    ``imdb.load_data(num_words=...)`` + ``pad_sequences(maxlen=...)`` make them
    (start index 1, ranks shifted by 3, words >= num_words -> 2, padding and
    truncation at the front).  Returns (int32 (n, maxlen), int64 labels)."""
    reviews, labels = make_reviews(n, seed=seed)
    out = np.zeros((n, maxlen), dtype=np.int32)
    for i, r in enumerate(reviews):
        seq = np.concatenate([[1], r[-maxlen:] + 3])[-maxlen:]
        out[i, maxlen - len(seq):] = np.where(seq < num_words, seq, 2)
    return out, labels


def write_imdb_npz(path, n_train=25000, n_test=25000, seed=0):
    """Write a file in the format of Keras's ``imdb.npz`` (atomically: a
    temporary file in the same folder, then a rename)."""
    reviews, labels = make_reviews(n_train + n_test, seed=seed)

    def obj(rows):
        a = np.empty(len(rows), dtype=object)
        for i, r in enumerate(rows):
            a[i] = [int(w) for w in r]
        return a

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, x_train=obj(reviews[:n_train]), y_train=labels[:n_train],
                     x_test=obj(reviews[n_train:]), y_test=labels[n_train:])
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path", help="where to write the file, e.g. /tmp/data/imdb.npz")
    p.add_argument("--n-train", type=int, default=25000)
    p.add_argument("--n-test", type=int, default=25000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    write_imdb_npz(a.path, a.n_train, a.n_test, a.seed)
    print(f"wrote {a.path}: {a.n_train} training and {a.n_test} test reviews (synthetic)")


if __name__ == "__main__":
    main()
