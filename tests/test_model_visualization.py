"""keras.utils.plot_model / model_to_dot: the book's 8-2 cells draw the CNN.

The DOT text is checked node by node against the model (and against what
summary() prints); PNGs are written and read back with each renderer this
environment has (Graphviz through pydot, and matplotlib), so a blank or
truncated picture fails.
"""
import os
import re

import numpy as np
import pytest

import nncore as keras
from nncore.utils import model_visualization as mv


def book_cnn():
    # chapter 8-2's model
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, (3, 3), activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(100, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])


def _nodes_and_edges(text):
    nodes = re.findall(r'^"([^"]+)" \[label=<(.*)>, fontname', text, re.M)
    edges = re.findall(r'^"([^"]+)" -> "([^"]+)"', text, re.M)
    return nodes, edges


def test_dot_text_of_the_book_cnn_has_a_node_per_layer_and_the_chain_of_edges():
    model = book_cnn()
    text = mv.dot_text(model, show_shapes=True, show_layer_names=True)
    nodes, edges = _nodes_and_edges(text)
    names = [l.name for l in model.layers]
    assert [n for n, _ in nodes] == names
    assert edges == list(zip(names, names[1:]))
    assert "rankdir=TB;" in text and "dpi=200;" in text and "splines=ortho;" in text
    summary = []
    model.summary(print_fn=summary.append, line_length=120)
    for (name, label), layer in zip(nodes, model.layers):
        assert f"<b>{name} ({type(layer).__name__})</b>" in label
        out = re.search(r"Output shape: <b>\(([^)]*)\)</b>", label).group(1)
        inp = re.search(r"Input shape: <b>\(([^)]*)\)</b>", label).group(1)
        assert f"({out})" == str(layer.output_shape)
        # the shape summary() prints for this layer
        assert re.search(rf"{name} \({type(layer).__name__}\)\s*│ \({re.escape(out)}\)",
                         summary[0])
        assert f"({inp})" == str(layer.input_shape)
    labels = dict(nodes)
    assert "Output shape: <b>(None, 26, 26, 32)</b>" in labels["conv2d" if "conv2d" in labels
                                                              else names[0]]
    assert "Input shape: <b>(None, 13, 13, 32)</b>" in labels[names[2]]


def test_dot_text_options_follow_keras_layout():
    model = book_cnn()
    plain = mv.dot_text(model, show_layer_names=False)
    nodes, _ = _nodes_and_edges(plain)
    # class names only, no shape/dtype/activation rows
    assert [re.search(r"<b>(.*?)</b>", l).group(1) for _, l in nodes] == \
        ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]
    labels = "".join(l for _, l in nodes)
    assert "shape" not in labels and "Activation" not in labels and "dtype" not in labels
    full = mv.dot_text(model, show_dtype=True, show_layer_activations=True,
                       show_trainable=True, rankdir="LR", dpi=300)
    nodes, _ = _nodes_and_edges(full)
    labels = [l for _, l in nodes]
    assert "Activation: <b>relu</b>" in labels[0] and "Activation: <b>softmax</b>" in labels[4]
    assert "Activation" not in labels[1]               # pooling has no activation
    assert all("Output dtype: <b>float32</b>" in l for l in labels)
    assert "Trainable" in labels[0] and "Trainable" not in labels[2]   # Flatten: no weights
    model.layers[0].trainable = False
    assert "Non-trainable" in mv.dot_text(model, show_trainable=True)
    assert "rankdir=LR;" in full and "dpi=300;" in full


def test_functional_model_starts_at_its_input_layer():
    inp = keras.Input(shape=(8,))
    hidden = keras.layers.Dense(4, activation="relu", name="hidden")(inp)
    out = keras.layers.Dense(3, name="out")(hidden)
    model = keras.Model(inp, out)
    nodes, edges = _nodes_and_edges(mv.dot_text(model, show_shapes=True))
    assert [n for n, _ in nodes] == [inp.layer.name, "hidden", "out"]
    assert edges == [(inp.layer.name, "hidden"), ("hidden", "out")]
    assert "InputLayer" in nodes[0][1] and "Input shape" not in nodes[0][1]
    assert "Output shape: <b>(None, 8)</b>" in nodes[0][1]


def test_a_new_layer_kind_draws_without_any_edit():
    class Scale(keras.layers.Layer):
        def build(self, input_shape):
            self.input_shape = tuple(input_shape)
            self.output_shape = tuple(input_shape)
            self.built = True

        def forward(self, x, training=False, logits=False):
            return x * 2

    model = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(5), Scale(name="twice")])
    nodes, edges = _nodes_and_edges(mv.dot_text(model, show_shapes=True))
    assert nodes[-1][0] == "twice" and "<b>twice (Scale)</b>" in nodes[-1][1]
    assert "Output shape: <b>(None, 5)</b>" in nodes[-1][1]


def test_unbuilt_model_and_bad_options_are_refused():
    with pytest.raises(ValueError, match="not yet been built"):
        mv.dot_text(keras.Sequential([keras.layers.Dense(3)]))
    with pytest.raises(ValueError, match="rankdir"):
        keras.utils.plot_model(book_cnn(), to_file="x.dot", rankdir="UP")
    with pytest.raises(ValueError, match="unrecognized keyword"):
        keras.utils.plot_model(book_cnn(), to_file="x.dot", show_shape=True)
    with pytest.raises(TypeError, match="expected a keras model"):
        keras.utils.plot_model("model", to_file="x.dot")


def test_bad_extension_and_unwritable_path_leave_no_file(tmp_path):
    model = book_cnn()
    with pytest.raises(ValueError, match=r"unknown picture type '\.jpgg'"):
        keras.utils.plot_model(model, to_file=str(tmp_path / "cnn.jpgg"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        keras.utils.plot_model(model, to_file=str(tmp_path / "no" / "cnn.png"))
    with pytest.raises(IsADirectoryError):
        keras.utils.plot_model(model, to_file=str(tmp_path))
    if os.geteuid() != 0:           # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        with pytest.raises(PermissionError, match="no permission"):
            keras.utils.plot_model(model, to_file=str(locked / "cnn.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["locked"])


def test_a_failing_renderer_leaves_no_partial_file(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(mv, "find_graphviz", lambda: None)

    def broken(*args):
        raise RuntimeError("renderer crashed")
    monkeypatch.setattr(mv, "_draw_matplotlib", broken)
    target = tmp_path / "cnn.png"
    target.write_bytes(b"old picture")
    with pytest.raises(RuntimeError):
        keras.utils.plot_model(book_cnn(), to_file=str(target))
    assert target.read_bytes() == b"old picture"
    assert [p.name for p in tmp_path.iterdir()] == ["cnn.png"]


def test_dot_file_is_the_dot_text(tmp_path):
    model = book_cnn()
    out = tmp_path / "cnn.dot"
    assert keras.utils.plot_model(model, to_file=str(out), show_shapes=True) is None
    assert out.read_text() == mv.dot_text(model, show_shapes=True, show_layer_names=False)


def _read_png(path):
    import matplotlib.image
    return matplotlib.image.imread(str(path))


def _check_png(path, min_height):
    img = _read_png(path)
    assert img.ndim == 3 and img.shape[0] >= min_height and img.shape[1] > 100
    gray = img[..., :3].mean(axis=2)
    # mostly white background, real dark boxes and text
    dark = (gray < 0.3).mean()
    assert 0.02 < dark < 0.6, dark
    assert (gray > 0.9).mean() > 0.3
    return img


def _book_cells(tmp_path, monkeypatch):
    """Chapter 8-2's two cells, run in tmp_path; returns what they returned."""
    monkeypatch.chdir(tmp_path)
    model = book_cnn()
    first = keras.utils.plot_model(model)
    second = keras.utils.plot_model(model, show_shapes=True, to_file="cnn-architecture.png",
                                    dpi=300)
    return first, second


def test_book_cells_with_matplotlib(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(mv, "find_graphviz", lambda: None)
    monkeypatch.setattr(mv, "_announced", set())
    first, second = _book_cells(tmp_path, monkeypatch)
    small = _check_png(tmp_path / "model.png", 300)
    big = _check_png(tmp_path / "cnn-architecture.png", 600)
    assert big.shape[0] > small.shape[0]          # dpi=300 and shape rows: a bigger picture
    err = capsys.readouterr().err
    assert err.count("drawn with matplotlib") == 1       # said once, not per call
    try:
        import IPython.display
    except ImportError:
        assert first is None
    else:
        assert isinstance(second, IPython.display.Image)
        assert second.data == (tmp_path / "cnn-architecture.png").read_bytes()


def test_matplotlib_draws_svg_pdf_and_left_to_right(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(mv, "find_graphviz", lambda: None)
    model = book_cnn()
    keras.utils.plot_model(model, to_file=str(tmp_path / "m.svg"), show_shapes=True)
    assert (tmp_path / "m.svg").read_text().lstrip().startswith("<?xml")
    keras.utils.plot_model(model, to_file=str(tmp_path / "m.pdf"))
    assert (tmp_path / "m.pdf").read_bytes()[:5] == b"%PDF-"
    keras.utils.plot_model(model, to_file=str(tmp_path / "lr.png"), rankdir="LR", dpi=72)
    img = _read_png(tmp_path / "lr.png")
    assert img.shape[1] > img.shape[0]            # left to right: wider than tall


needs_graphviz = pytest.mark.skipif(
    mv.find_graphviz() is None,
    reason="Graphviz path not testable here: needs `pip install pydot` and Graphviz's `dot` "
           "program (apt-get install graphviz)")


@needs_graphviz
def test_book_cells_with_graphviz(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(mv, "_announced", set())
    first, second = _book_cells(tmp_path, monkeypatch)
    _check_png(tmp_path / "model.png", 300)
    _check_png(tmp_path / "cnn-architecture.png", 600)
    assert "drawn with Graphviz" in capsys.readouterr().err


@needs_graphviz
def test_model_to_dot_returns_a_pydot_graph_with_keras_defaults():
    import pydot
    model = book_cnn()
    dot = keras.utils.model_to_dot(model)
    assert isinstance(dot, pydot.Dot)
    assert len(dot.get_nodes()) >= len(model.layers)
    assert len(dot.get_edges()) == len(model.layers) - 1
    # model_to_dot shows layer names by default (plot_model does not)
    assert "conv2d (Conv2D)" in dot.to_string() or \
        f"{model.layers[0].name} (Conv2D)" in dot.to_string()
    svg = dot.create(prog="dot", format="svg")
    assert b"<svg" in svg and b"MaxPooling2D" in svg


def test_same_model_same_picture(tmp_path, monkeypatch):
    # identical inputs give identical files (node ids are layer names, not id())
    pytest.importorskip("matplotlib")
    model = book_cnn()
    a, b = tmp_path / "a.dot", tmp_path / "b.dot"
    keras.utils.plot_model(model, to_file=str(a))
    keras.utils.plot_model(model, to_file=str(b))
    assert a.read_bytes() == b.read_bytes()
    assert np.char.count(a.read_text(), "->") == len(model.layers) - 1


def test_a_broken_graphviz_falls_back_to_matplotlib(tmp_path, monkeypatch, capsys):
    pydot = pytest.importorskip("pydot")
    pytest.importorskip("matplotlib")

    def fail(self, *args, **kwargs):
        raise OSError("dot: cannot load fonts")
    monkeypatch.setattr(pydot.Dot, "create", fail)
    monkeypatch.setattr(mv, "find_graphviz", lambda: pydot)
    monkeypatch.setattr(mv, "_announced", set())
    keras.utils.plot_model(book_cnn(), to_file=str(tmp_path / "m.png"), dpi=72)
    _check_png(tmp_path / "m.png", 200)
    assert "Graphviz's dot failed: dot: cannot load fonts" in capsys.readouterr().err
