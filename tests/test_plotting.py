"""utils.plot_history: train vs validation curves, rendered to a PNG file."""
import sys

import numpy as np
import pytest

import nncore as keras


def _history():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model.fit(x, y, epochs=3, validation_split=0.25, verbose=0)


def test_plot_history_renders_png(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    history = _history()
    fig = keras.utils.plot_history(history, metrics=("loss", "accuracy"))
    out = tmp_path / "curves.png"
    fig.savefig(out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    axes = fig.axes
    assert len(axes) == 2
    for ax, key in zip(axes, ("loss", "accuracy")):
        lines = ax.get_lines()
        assert len(lines) == 2                       # train and validation
        np.testing.assert_allclose(lines[0].get_ydata(), history.history[key])
        np.testing.assert_allclose(lines[1].get_ydata(), history.history["val_" + key])
        assert ax.get_ylabel() == key


def test_plot_history_unknown_metric_is_a_clear_error():
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="accuracy.*not in the history"):
        keras.utils.plot_history({"loss": [1.0, 0.5]}, metrics=("accuracy",))


def test_plot_history_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"nncore-keras\[plot\]"):
        keras.utils.plot_history({"loss": [1.0]})
