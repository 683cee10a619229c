"""pytest-benchmark: the book's chapter-9 models, and the two shortcuts of their
input side each against the way it replaced.  Run with

    pytest bench/test_bench_rnn.py --benchmark-only

(not part of the test suite).  Data: 20,000 synthetic reviews of 100 steps
(``examples/ch9_synthetic_imdb.py``: Zipf-distributed words with a sentiment
signal, so the models learn something), batch 64, RMSprop(1e-4).  The
one-hot model trains on the first 5,000 (0.8 GB of float64 one-hot rows
instead of the book's 3.2 GB).  For nncore vs TensorFlow vs PyTorch side by
side, see bench/rnn_compare.py.

Groups that hold an A/B pair (the same model, the shortcut on and off):

* "one-hot input": positions found once per fit (``OneHotRows``) against
  rows converted batch by batch, the kernel finding the 1s in every batch;
* "Embedding + LSTM": the Embedding folded into the LSTM's plan entry
  (``_EmbeddedRecurrentEntry``) against two entries.
"""
import pathlib
import sys

import numpy as np
import pytest

import nncore as keras
from nncore.layers import _recurrent
from nncore.models import data as D

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))

STEPS, BATCH = 100, 64


@pytest.fixture(scope="module")
def reviews():
    import ch9_synthetic_imdb as synth
    x, y = synth.padded_sequences(20000, num_words=500, maxlen=STEPS, seed=0)
    return x.astype(np.int32), y


def _model(first, cell, vocab):
    keras.utils.set_random_seed(42)
    layers = [keras.Input(shape=(STEPS, vocab) if first == "onehot" else (STEPS,))]
    if first == "embedding":
        layers.append(keras.layers.Embedding(vocab, 16))
    layers += [getattr(keras.layers, cell)(8), keras.layers.Dense(1, activation="sigmoid")]
    m = keras.Sequential(layers)
    m.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-4),
              loss="binary_crossentropy", metrics=["accuracy"])
    return m


def _epoch(benchmark, m, x, y):
    m.fit(x[:640], y[:640], batch_size=BATCH, epochs=1, verbose=0)    # warm-up
    benchmark.pedantic(lambda: m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0),
                       rounds=3, iterations=1)


def _onehot(reviews):
    x, y = reviews
    words = np.where(x[:5000] < 200, x[:5000], 2)
    return keras.utils.to_categorical(words), y[:5000]       # float64, as the book


@pytest.mark.benchmark(group="one-hot input: SimpleRNN(8), 5,000 x 100 x 200 float64")
def test_onehot_fit_epoch_positions(benchmark, reviews):
    x, y = _onehot(reviews)
    _epoch(benchmark, _model("onehot", "SimpleRNN", 200), x, y)


@pytest.mark.benchmark(group="one-hot input: SimpleRNN(8), 5,000 x 100 x 200 float64")
def test_onehot_fit_epoch_rows_per_batch(benchmark, reviews, monkeypatch):
    monkeypatch.setattr(D, "ONEHOT_MIN_DEPTH", 10 ** 9)      # never kept as positions
    x, y = _onehot(reviews)
    _epoch(benchmark, _model("onehot", "SimpleRNN", 200), x, y)


@pytest.mark.benchmark(group="Embedding(500, 16) + LSTM(8), 20,000 x 100")
def test_lstm_fit_epoch_folded(benchmark, reviews):
    x, y = reviews
    _epoch(benchmark, _model("embedding", "LSTM", 500), x, y)


@pytest.mark.benchmark(group="Embedding(500, 16) + LSTM(8), 20,000 x 100")
def test_lstm_fit_epoch_two_entries(benchmark, reviews, monkeypatch):
    monkeypatch.setattr(_recurrent, "FOLD_EMBEDDING", False)
    x, y = reviews
    _epoch(benchmark, _model("embedding", "LSTM", 500), x, y)


@pytest.mark.parametrize("cell", ["SimpleRNN", "GRU"])
@pytest.mark.benchmark(group="Embedding + SimpleRNN / GRU, 20,000 x 100")
def test_embedding_rnn_fit_epoch(benchmark, reviews, cell):
    x, y = reviews
    vocab = 200 if cell == "SimpleRNN" else 500
    _epoch(benchmark, _model("embedding", cell, vocab), np.where(x < vocab, x, 2), y)


@pytest.mark.parametrize("cell", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.benchmark(group="predict 5,000 sequences, batch 64")
def test_embedding_rnn_predict(benchmark, reviews, cell):
    x, _ = reviews
    m = _model("embedding", cell, 500)
    m.predict(x[:5000], batch_size=BATCH, verbose=0)
    benchmark.pedantic(lambda: m.predict(x[:5000], batch_size=BATCH, verbose=0),
                       rounds=5, iterations=1)
