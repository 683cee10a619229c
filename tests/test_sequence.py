"""pad_sequences and to_categorical against Keras 3.15 (sequence_golden.json,
made by tests/fixtures/imdb/make_sequence_golden_tf.py with TensorFlow), and
fit/predict on a float64 one-hot array without a second full-size copy."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nncore as keras
from nncore.preprocessing.sequence import pad_sequences

GOLDEN = json.loads((Path(__file__).resolve().parent / "fixtures" / "imdb" /
                     "sequence_golden.json").read_text())


@pytest.mark.parametrize("case", GOLDEN["pad"], ids=lambda c: repr(c["kwargs"]))
@pytest.mark.parametrize("fn", [pad_sequences, keras.utils.pad_sequences,
                                keras.preprocessing.sequence.pad_sequences])
def test_pad_sequences_equals_keras(case, fn):
    out = fn(GOLDEN["sequences"], **case["kwargs"])
    assert str(out.dtype) == case["dtype"]
    np.testing.assert_array_equal(out, np.array(case["result"], dtype=out.dtype))


def test_pad_sequences_object_array_and_value_shapes():
    seqs = np.empty(2, dtype=object)
    seqs[0], seqs[1] = [1, 2, 3], [4]
    np.testing.assert_array_equal(pad_sequences(seqs, maxlen=2), [[2, 3], [0, 4]])
    vec = pad_sequences([np.ones((2, 3)), np.ones((1, 3))], dtype="float32")
    assert vec.shape == (2, 2, 3) and vec[1, 0].sum() == 0 and vec[1, 1].sum() == 3


@pytest.mark.parametrize("kwargs,message", [
    ({"padding": "middle"}, 'Padding type "middle" not understood'),
    ({"truncating": "both"}, 'Truncating type "both" not understood'),
    ({"maxlen": -1}, "maxlen must be None or an integer"),
    ({"value": "x"}, "cannot hold the string value"),
])
def test_pad_sequences_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pad_sequences([[1, 2], [3]], **kwargs)


def test_pad_sequences_non_iterable_and_ragged_values():
    with pytest.raises(ValueError, match="sequence 1 is 5"):
        pad_sequences([[1], 5])
    with pytest.raises(ValueError, match="values of sequence 1 have shape"):
        pad_sequences([np.ones((2, 3)), np.ones((1, 2))])


@pytest.mark.parametrize("case", GOLDEN["categorical"], ids=lambda c: repr(c["x"]))
def test_to_categorical_equals_keras(case):
    out = keras.utils.to_categorical(case["x"], case["num_classes"])
    assert str(out.dtype) == case["dtype"] and list(out.shape) == case["shape"]
    np.testing.assert_array_equal(out, case["result"])


def test_to_categorical_errors():
    with pytest.raises(ValueError, match="negative label -1"):
        keras.utils.to_categorical([0, -1])
    with pytest.raises(ValueError, match="label 3 >= num_classes 3"):
        keras.utils.to_categorical([3], 3)
    with pytest.raises(ValueError, match="labels must be integers"):
        keras.utils.to_categorical([0.5])


def test_book_one_hot_shape():
    seq = pad_sequences([[1, 5, 7], [2, 199]], maxlen=4)
    oh = keras.utils.to_categorical(seq)
    assert oh.shape == (2, 4, 200) and oh.dtype == np.float64
    assert oh[0, 0, 0] == 1 and oh[1, 3, 199] == 1 and oh.sum() == 8


# --------------------------------------------------------------------------
# A float64 input (the book's one-hot array) is converted batch by batch
# --------------------------------------------------------------------------
def _onehot_data(n=4000, steps=10, words=50, seed=0):
    rng = np.random.default_rng(seed)
    seq = rng.integers(0, words, (n, steps))
    x = keras.utils.to_categorical(seq, words)          # float64, as the book's
    y = (seq[:, -1] < words // 2).astype(np.float64)
    return x, y


def _model(fused):
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input(shape=(10, 50)), keras.layers.Flatten(),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="binary_crossentropy",
              metrics=["accuracy"])
    m.use_fused = fused
    return m


def _rnn_model():
    # the book's 9-2 model (one-hot input into SimpleRNN): the layer kind with
    # a step-plan entry, fit's default (use_fused) left on
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input(shape=(10, 50)), keras.layers.SimpleRNN(4),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="binary_crossentropy",
              metrics=["accuracy"])
    return m


@pytest.mark.parametrize("kind", ["dense", "simple_rnn"])
def test_fit_predict_evaluate_float64_input_make_no_full_copy(monkeypatch, kind):
    import tracemalloc

    from nncore.models import data
    monkeypatch.setattr(data, "LAZY_CAST_BYTES", 1 << 20)
    monkeypatch.setattr(data, "PLAN_COPY_BYTES", 1 << 20)
    # 48 MB of float64; 96 MB for the RNN (whose one-hot input now travels as
    # positions, 1 MB, and whose predict chunks stay at a few hundred rows)
    x, y = _onehot_data(n=12000 if kind == "dense" else 24000)
    m = _model(fused=False) if kind == "dense" else _rnn_model()
    m.fit(x[:64], y[:64], epochs=1, verbose=0)      # warm up: build, optimizer slots
    tracemalloc.start()
    try:
        m.fit(x, y, epochs=1, batch_size=64, validation_split=0.2, verbose=0)
        m.evaluate(x, y, verbose=0)
        m.predict(x, verbose=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a float32 copy of x alone would be x.nbytes / 2 (and the old code made
    # it plus a full-size isfinite() mask); what remains is one internal
    # predict chunk of 4096 rows and its layer buffers (~16 MB here, bounded
    # by rows, not by the input: ~330 MB per buffer for the book's 3.2 GB array)
    assert peak < x.nbytes / 2, f"peak {peak:,} bytes for an input of {x.nbytes:,}"


@pytest.mark.parametrize("fused", [False, True])
def test_batchwise_conversion_gives_the_same_training(monkeypatch, fused):
    from nncore.models import data
    x, y = _onehot_data(n=600)
    runs = []
    for limit in (1 << 40, 1):           # whole-array conversion, then per batch
        monkeypatch.setattr(data, "LAZY_CAST_BYTES", limit)
        m = _model(fused)
        h = m.fit(x, y, epochs=2, batch_size=32, validation_split=0.25, verbose=0)
        runs.append((h.history, m.predict(x, verbose=0), m.evaluate(x, y, verbose=0)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]


def test_nan_in_big_float64_input_is_found_in_chunks(monkeypatch):
    from nncore.models import data
    monkeypatch.setattr(data, "_CHECK_CHUNK", 1000)
    x, y = _onehot_data(n=300)
    x[250, 3, 7] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf \(first at index \(250, 3, 7\)\)"):
        _model(False).fit(x, y, verbose=0)


def test_cast_on_read_batches_equal_a_converted_copy():
    # the shuffled-batch path converts row by row into the batch array
    from nncore.models.data import CastOnRead
    rng = np.random.default_rng(3)
    base = rng.standard_normal((50, 4, 3))
    x = CastOnRead(base, np.float32)
    for idx in (rng.permutation(50)[:17], np.array([-1, 0, -50, 49]),
                np.array([], dtype=np.int64), np.arange(50, dtype=np.uint16)):
        got = x[idx]
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, base[idx].astype(np.float32))
    np.testing.assert_array_equal(x[3:9], base[3:9].astype(np.float32))
    with pytest.raises(IndexError):
        x[np.array([0, 50])]


def test_fit_takes_the_step_plan_when_the_converted_copy_is_small(monkeypatch):
    # the book's chapter 7 divides its images by 255.0 (float64): a copy of a
    # few hundred MB buys the compiled loop; only a copy above PLAN_COPY_BYTES
    # (the 1.6 GB of chapter 9's one-hot array) sends fit to the per-batch path
    from nncore.models import data, loop
    monkeypatch.setattr(data, "LAZY_CAST_BYTES", 1 << 20)
    x, y = _onehot_data(n=3000)           # 12 MB of float64, 6 MB as float32
    x *= 0.5            # not one-hot: one-hot rows go as positions (tests below)
    chosen = []
    real = loop.make_stepper
    monkeypatch.setattr(loop, "make_stepper",
                        lambda *a, **k: chosen.append(real(*a, **k)) or chosen[-1])
    for limit, expected in ((1 << 30, loop.PlanStepper), (1 << 20, loop.BatchStepper)):
        monkeypatch.setattr(data, "PLAN_COPY_BYTES", limit)
        _rnn_model().fit(x, y, epochs=1, batch_size=64, verbose=0)
        assert type(chosen[-1]) is expected, (limit, chosen[-1])


# --------------------------------------------------------------------------
# One-hot rows reach a recurrent first layer as the positions of their 1s
# --------------------------------------------------------------------------
def _cell_model(cell, **kw):
    keras.utils.set_random_seed(5)
    m = keras.Sequential([keras.Input(shape=(10, 50)), getattr(keras.layers, cell)(4, **kw),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="binary_crossentropy",
              metrics=["accuracy"])
    return m


@pytest.mark.parametrize("cell,kw", [("SimpleRNN", {}), ("LSTM", {}), ("GRU", {}),
                                     ("GRU", {"go_backwards": True}),
                                     ("LSTM", {"recurrent_dropout": 0.2}),
                                     ("SimpleRNN", {"dropout": 0.3})])
def test_onehot_input_trains_on_positions_as_on_rows(monkeypatch, cell, kw):
    """The same fit, evaluate and predict, bit for bit, whether the float64
    one-hot input goes as positions (OneHotRows) or as rows converted batch
    by batch (CastOnRead, whose kernel finds the 1s in every batch)."""
    from nncore.models import data
    monkeypatch.setattr(data, "LAZY_CAST_BYTES", 1 << 16)
    x, y = _onehot_data(n=700)
    x[3, 4] = 0                           # a row of zeros (a padded step) too
    xv, yv = _onehot_data(n=200, seed=1)
    runs = []
    for depth in (32, 10 ** 9):           # positions; then rows, batch by batch
        monkeypatch.setattr(data, "ONEHOT_MIN_DEPTH", depth)
        m = _cell_model(cell, **kw)
        h = m.fit(x, y, epochs=2, batch_size=32, validation_data=(xv, yv), verbose=0)
        route = m._last_route.reason
        runs.append((h.history, [w.copy() for w in m.get_weights()],
                     m.predict(x, verbose=0), m.evaluate(xv, yv, verbose=0), route))
    assert "positions" in runs[0][4] and "positions" not in (runs[1][4] or "")
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    assert runs[0][3] == runs[1][3]


def test_onehot_rows_are_kept_as_positions_only_when_they_are_one_hot(monkeypatch):
    from nncore.layers._onehot import OneHotBatch
    from nncore.models import data
    monkeypatch.setattr(data, "LAZY_CAST_BYTES", 1 << 10)
    x, _ = _onehot_data(n=40)
    x[5, 2] = 0
    kept = data.as_features(x, np.float32, lazy=True, onehot=True)
    assert isinstance(kept, data.OneHotRows)
    assert kept.positions.shape == (40, 10) and kept.positions[5, 2] == -1
    ones = x.sum(-1) > 0
    np.testing.assert_array_equal(kept.positions[ones], x.argmax(-1)[ones])
    batch = kept[np.array([7, 5, -1])]
    assert isinstance(batch, OneHotBatch) and batch.shape == (3, 10, 50)
    np.testing.assert_array_equal(np.asarray(batch), x[[7, 5, -1]].astype(np.float32))
    np.testing.assert_array_equal(np.asarray(kept.rows(30, 40)[2:4]), x[32:34])
    np.testing.assert_array_equal(np.asarray(kept), x.astype(np.float32))
    # not taken: the first layer does not take positions, or the rows are too
    # narrow to gain
    assert type(data.as_features(x, np.float32, lazy=True)) is data.CastOnRead
    assert type(data.as_features(np.ascontiguousarray(x[:, :, :20]), np.float32, lazy=True,
                                 onehot=True)) is data.CastOnRead
    # nor when one row anywhere is not one-hot: two 1s, a 2, a 0.5
    for r, c, col, v in ((39, 9, 0, 1.0), (0, 0, 3, 2.0), (20, 3, 7, 0.5)):
        bad = x.copy()
        bad[r, c, :] = 0
        bad[r, c, col] = v
        if v == 1.0:
            bad[r, c, col + 1] = 1.0
        assert type(data.as_features(bad, np.float32, lazy=True, onehot=True)) \
            is data.CastOnRead, (r, c, v)
    # and a NaN is then found by the usual check, which names it
    bad = x.copy()
    bad[20, 3, 7] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf \(first at index \(20, 3, 7\)\)"):
        data.as_features(bad, np.float32, lazy=True, onehot=True)


def test_only_a_first_layer_that_takes_positions_gets_them(monkeypatch):
    from nncore.models import data
    monkeypatch.setattr(data, "LAZY_CAST_BYTES", 1 << 16)
    x, y = _onehot_data(n=300)
    m = _model(fused=False)                    # Flatten first: rows
    m.fit(x, y, epochs=1, verbose=0)
    assert "positions" not in (m._last_route.reason or "")
    m = _rnn_model()
    m.fit(x, y, epochs=1, verbose=0)
    assert "positions" in m._last_route.reason
