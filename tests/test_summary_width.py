"""summary() keeps its borders aligned with Korean (wide) layer and model
names: every line of the table is measured in terminal columns."""
import numpy as np
import pytest

import nncore as keras
from nncore.models.summary import display_width, fit_cell


@pytest.mark.parametrize("text,width", [
    ("dense", 5), ("은닉층", 6), ("출력 (Dense)", 12), ("ｆｕｌｌ", 8),  # W and F: 2 columns
    ("e\u0301", 1),                    # e + combining acute: one column
    ("", 0),
])
def test_display_width(text, width):
    assert display_width(text) == width


def test_fit_cell_pads_and_cuts_by_columns():
    assert fit_cell("은닉", 6) == "은닉  "
    assert fit_cell("은닉", 6, "r") == "  은닉"
    cut = fit_cell("은닉층은닉층", 7)
    assert display_width(cut) == 7 and cut.startswith("은닉층") and "…" in cut


def _table_lines(model):
    out = []
    model.summary(line_length=70, print_fn=out.append)
    return out[0].split("\n")


def test_korean_names_keep_the_right_border_in_line():
    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(name="평탄화"),
        keras.layers.Dense(100, activation="relu", name="은닉층"),
        keras.layers.Dense(10, activation="softmax", name="출력층"),
    ], name="패션_모델")
    lines = _table_lines(model)
    assert lines[0] == 'Model: "패션_모델"'
    table = [l for l in lines if l[:1] in "┏┃┡│├└"]
    widths = {display_width(l) for l in table}
    assert widths == {70}, [(display_width(l), l) for l in table]
    assert any("은닉층 (Dense)" in l for l in table)
    # the borders sit in the same columns on every row
    def cols(line):
        return [display_width(line[:i]) for i, ch in enumerate(line) if ch in "┃│┳╇┼┴┬"]
    assert len({tuple(cols(l)) for l in table if l[0] in "┃│"}) == 1


def test_long_wide_name_is_cut_to_the_cell():
    model = keras.Sequential([keras.Input(shape=(4,)),
                              keras.layers.Dense(2, name="아주" * 30)])
    lines = [l for l in _table_lines(model) if l[:1] in "┏┃┡│├└"]
    assert {display_width(l) for l in lines} == {70}
    assert any("…" in l for l in lines)
