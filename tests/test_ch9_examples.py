"""The chapter-9 examples run as a learner runs them, on a generated imdb.npz
in Keras's format; their best-*.keras checkpoints load back with the weights
the training ended with; the gradient-flow picture plots the layers' own
||dL/dh_t|| and shows SimpleRNN's gradient fading faster than LSTM's."""
import importlib.util
import pathlib

import numpy as np
import pytest

import nncore as keras

# the generated imdb.npz is not the official file: load_data says so, rightly
pytestmark = pytest.mark.filterwarnings("ignore:.*SHA-256 differs:RuntimeWarning")

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _example(name):
    path = EXAMPLES / name
    if not path.exists():
        pytest.skip("examples/ is not part of an installed package")
    spec = importlib.util.spec_from_file_location(name[:-3], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def offline(monkeypatch):
    """No real data and no network: imdb.load_data may only find what the test writes."""
    from test_datasets import _closed_port_url
    monkeypatch.delenv("NNCORE_DATA_DIR", raising=False)
    monkeypatch.setenv("NNCORE_DATASET_MIRRORS", _closed_port_url())
    monkeypatch.setenv("MPLBACKEND", "Agg")


def _check_checkpoints(run, out, names):
    """Each best-*.keras file holds the weights of the best validation epoch;
    with a validation loss that fell every epoch that is the final model, so
    the loaded model predicts and evaluates as the trained one.  Returns how
    many files were compared that closely."""
    compared = 0
    for name in names:
        path = out / name
        assert path.exists(), name
        model, history, x_val, y_val = run[name]
        loaded = keras.models.load_model(str(path))
        assert loaded.count_params() == model.count_params()
        val_loss = history.history["val_loss"]
        if int(np.argmin(val_loss)) != len(val_loss) - 1:
            continue          # an earlier epoch was the best: only its file is comparable
        np.testing.assert_allclose(loaded.predict(x_val, verbose=0),
                                   model.predict(x_val, verbose=0), rtol=1e-5, atol=1e-6)
        got = loaded.evaluate(x_val, y_val, verbose=0)
        want = model.evaluate(x_val, y_val, verbose=0)
        np.testing.assert_allclose(got, want, rtol=1e-5)
        # and it is what the file says the best epoch scored
        assert abs(got[0] - min(val_loss)) < 1e-4
        compared += 1
    return compared


def test_ch9_2_runs_and_its_checkpoints_round_trip(tmp_path, offline, capsys):
    mod = _example("ch9_2_simple_rnn.py")
    out = tmp_path / "out"
    run = mod.main(["--synthetic", "--samples", "200", "--epochs", "2", "--verbose", "0",
                    "--out", str(out)])
    text = capsys.readouterr().out
    assert "Total params: 1,681" in text and "Total params: 3,409" in text
    assert (out / "imdb.npz").exists()          # the generated file, in Keras's format
    assert _check_checkpoints(run, out, ("best-simplernn-model.keras",
                                         "best-embedding-model.keras")) >= 1
    # the one-hot model saw 200-wide one-hot words, the second one word indices
    assert run["best-simplernn-model.keras"][2].shape[1:] == (100, 200)
    assert run["best-embedding-model.keras"][2].shape[1:] == (100,)


def test_ch9_3_runs_and_its_checkpoints_round_trip(tmp_path, offline, capsys):
    mod = _example("ch9_3_lstm_gru.py")
    out = tmp_path / "out"
    run = mod.main(["--synthetic", "--samples", "160", "--epochs", "2", "--verbose", "0",
                    "--out", str(out)])
    text = capsys.readouterr().out
    for count in ("8,809", "9,353", "8,633"):
        assert f"Total params: {count}" in text, count
    assert "[9-3 best-2rnn-model.keras] test loss:" in text
    assert _check_checkpoints(run, out, ("best-lstm-model.keras", "best-dropout-model.keras",
                                         "best-2rnn-model.keras", "best-gru-model.keras")) >= 2


def test_ch9_example_says_where_to_put_imdb_npz(tmp_path, offline, monkeypatch):
    mod = _example("ch9_2_simple_rnn.py")
    monkeypatch.setenv("NNCORE_DATA_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as info:
        mod.main(["--epochs", "1", "--verbose", "0", "--out", str(tmp_path / "out")])
    msg = str(info.value)
    assert "imdb.npz" in msg and "NNCORE_DATA_DIR" in msg and "--synthetic" in msg


def _png_pixels(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    import matplotlib.image
    return matplotlib.image.imread(str(path))


def test_gradient_flow_picture(tmp_path, offline):
    pytest.importorskip("matplotlib", reason="the picture needs matplotlib")
    mod = _example("ch9_gradient_flow.py")
    norms = mod.main(["--out", str(tmp_path)])
    img = _png_pixels(tmp_path / "ch9_gradient_flow.png")
    h, w = img.shape[:2]
    assert (w, h) == (700, 400)
    # something is drawn: a good share of the pixels are not white
    not_white = np.any(img[..., :3] < 0.9, axis=-1).mean()
    assert 0.02 < not_white < 0.6, not_white
    # the per-step factor of the gradient, last step back to the first:
    # SimpleRNN's fades faster than LSTM's on this fixed seed
    decay = {k: (n[0] / n[-1]) ** (1 / (len(n) - 1)) for k, n in norms.items()}
    assert decay["SimpleRNN"] < decay["LSTM"], decay
    assert norms["SimpleRNN"][0] < 1e-3 * norms["LSTM"][0]


def test_plot_state_gradients_draws_the_layers_own_norms():
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 30, 4)).astype("float32")
    y = rng.integers(0, 2, 16).astype("float32")
    layers = {}
    for cell in ("SimpleRNN", "LSTM"):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input(shape=(30, 4)), getattr(keras.layers, cell)(5),
                                  keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="rmsprop", loss="binary_crossentropy")
        with pytest.raises(ValueError, match="no state_gradient_norms yet"):
            keras.utils.plot_state_gradients(model.layers[0])
        model.train_on_batch(x, y)
        layers[cell] = model.layers[0]
    fig = keras.utils.plot_state_gradients(layers)
    lines = fig.axes[0].get_lines()
    assert [l.get_label() for l in lines] == ["SimpleRNN", "LSTM"]
    for line, layer in zip(lines, layers.values()):
        assert layer.state_gradient_norms.shape == (30,)
        np.testing.assert_array_equal(line.get_ydata(), layer.state_gradient_norms)
        np.testing.assert_array_equal(line.get_xdata(), np.arange(30))
    assert fig.axes[0].get_yscale() == "log"
    # arrays and labels work too; bad input is named
    fig = keras.utils.plot_state_gradients([[1.0, 2.0], [0.5, 3.0]], labels=["a", "b"],
                                           log_scale=False)
    assert [l.get_label() for l in fig.axes[0].get_lines()] == ["a", "b"]
    with pytest.raises(ValueError, match="1-D array"):
        keras.utils.plot_state_gradients(np.ones((2, 3)))
    with pytest.raises(ValueError, match="2 labels for 1 series"):
        keras.utils.plot_state_gradients([1.0, 2.0], labels=["a", "b"])
    import matplotlib.pyplot as plt
    plt.close("all")
