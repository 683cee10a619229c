"""Pictures of a model: ``keras.utils.plot_model`` and ``keras.utils.model_to_dot``.

The book's chapter 8 draws its CNN with::

    keras.utils.plot_model(model, show_shapes=True, to_file="cnn-architecture.png", dpi=300)

Keras draws the graph through pydot and Graphviz's ``dot`` program and, when
they are missing, only prints "You must install pydot/graphviz".  nncore uses
them too when both are installed (``pip install pydot`` and Graphviz from the
system's package manager), so the picture is Keras's; without them it draws
the same boxes and arrows with matplotlib, the book's own plotting library,
so the notebook cell still shows a picture.  Which renderer drew is said once.

What a box shows is read from the layer's public surface only -- class name,
``name``, ``input_shape`` / ``output_shape``, ``dtype``, the ``activation`` of
``get_config()``, ``trainable`` and ``weights`` -- so a new layer kind draws
with no edit here.
"""
from __future__ import annotations

import html
import io
import numbers
import os
import shutil
import sys

from nncore.saving.atomic import atomic_write

#: the file types plot_model writes, by the extension of ``to_file``
FORMATS = ("png", "svg", "pdf", "dot")

_announced = set()      # renderers already named to the user (say it once)


# ----------------------------------------------------------------- the graph

class _Box:
    """One layer's box: the title row, an optional activation row and the
    cells of the bottom row (shapes, dtype, trainable)."""

    def __init__(self, key, title, activation, cells):
        self.key, self.title, self.activation, self.cells = key, title, activation, cells


def _shape_text(shape):
    # as Keras prints a shape tuple: "(None, 26, 26, 32)"
    return "?" if shape is None else str(tuple(shape))


def _activation_of(layer):
    try:
        act = layer.get_config().get("activation")
    except Exception:       # a layer whose config cannot be read still draws
        act = None
    if act is None:
        return None
    if isinstance(act, dict):            # a serialized activation object
        act = act.get("config", {}).get("name") or act.get("class_name")
    return getattr(act, "__name__", None) or str(act)


def _box(layer, key, show_shapes, show_dtype, show_layer_names,
         show_layer_activations, show_trainable, is_input):
    cls = type(layer).__name__
    title = f"{layer.name} ({cls})" if show_layer_names else cls
    activation = _activation_of(layer) if show_layer_activations else None
    cells = []
    if show_shapes:
        if not is_input:
            cells.append(("Input shape", _shape_text(getattr(layer, "input_shape", None))))
        cells.append(("Output shape", _shape_text(getattr(layer, "output_shape", None))))
    if show_dtype:
        dtype = getattr(layer, "dtype", None)
        cells.append(("Output dtype", str(getattr(dtype, "name", dtype)) if dtype else "?"))
    if show_trainable and getattr(layer, "weights", None):
        cells.append(("Trainable", None) if layer.trainable else ("Non-trainable", None))
    return _Box(key, title, activation, cells)


def _graph(model, options):
    """(boxes, edges) for ``model``: one box per layer, edges along the data flow.

    A Sequential model draws its layers only (Keras does not draw its implicit
    input); a functional model ``keras.Model(inputs, outputs)`` starts at the
    InputLayer that ``keras.Input`` made.  Every model nncore runs is a chain
    of one-input layers, so the edges join each layer to the next.
    """
    if not getattr(model, "built", False):
        raise ValueError("This model has not yet been built. Build the model first by "
                         "calling `build()` or by calling the model on a batch of data.")
    # a functional model's layers start with its InputLayer (as Keras 3's
    # do); a Sequential's are the computing layers only
    layers = list(model.layers)
    first_is_input = bool(layers) and type(layers[0]).__name__ == "InputLayer"
    boxes, keys = [], set()
    for i, layer in enumerate(layers):
        key = layer.name
        while key in keys:       # names are unique in a model; stay safe anyway
            key += "_"
        keys.add(key)
        boxes.append(_box(layer, key, is_input=(i == 0 and first_is_input), **options))
    edges = [(boxes[i].key, boxes[i + 1].key) for i in range(len(boxes) - 1)]
    return boxes, edges


# ----------------------------------------------------------------- DOT text

def _html_label(box):
    # Keras's layout: a black title row, a white activation row, then one
    # row of cells (shapes, dtype, trainable) side by side
    span = max(1, len(box.cells))
    e = html.escape
    rows = [f'<tr><td colspan="{span}" bgcolor="black"><font point-size="16" '
            f'color="white"><b>{e(box.title)}</b></font></td></tr>']
    if box.activation is not None:
        rows.append(f'<tr><td bgcolor="white" colspan="{span}"><font point-size="14">'
                    f'Activation: <b>{e(box.activation)}</b></font></td></tr>')
    cells = []
    for label, value in box.cells:
        if value is None:       # the trainable flag: a coloured cell
            colour = "forestgreen" if label == "Trainable" else "firebrick"
            cells.append(f'<td bgcolor="{colour}"><font point-size="14" color="white">'
                         f'<b>{label}</b></font></td>')
        else:
            cells.append(f'<td bgcolor="white"><font point-size="14">{label}: '
                         f'<b>{e(value)}</b></font></td>')
    if cells:
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return ('<<table border="0" cellborder="1" bgcolor="black" cellpadding="10">'
            + "".join(rows) + "</table>>")


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _graph_attributes(rankdir, dpi, splines):
    return [("rankdir", rankdir), ("concentrate", "true"), ("dpi", dpi), ("splines", splines)]


def _node_attributes(box):
    return [("label", _html_label(box)), ("fontname", "Helvetica"), ("border", 0),
            ("margin", 0)]


def dot_text(model, show_shapes=False, show_dtype=False, show_layer_names=True,
             rankdir="TB", dpi=200, show_layer_activations=False, show_trainable=False,
             splines="ortho"):
    """The Graphviz DOT source of the model's picture (no pydot needed)."""
    boxes, edges = _graph(model, dict(
        show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
        show_layer_activations=show_layer_activations, show_trainable=show_trainable))
    lines = ["digraph G {"]
    lines += [f"{k}={v};" for k, v in _graph_attributes(rankdir, dpi, splines)]
    lines.append("node [shape=record];")
    for b in boxes:
        attrs = ", ".join(f"{k}={v}" for k, v in _node_attributes(b))
        lines.append(f"{_quote(b.key)} [{attrs}];")
    for a, b in edges:
        lines.append(f"{_quote(a)} -> {_quote(b)} [penwidth=2];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _pydot_graph(pydot, boxes, edges, rankdir, dpi, splines):
    # built node by node (not parsed from dot_text: pydot's parser is slow
    # and noisy), with the same attributes
    dot = pydot.Dot(graph_type="digraph")
    for k, v in _graph_attributes(rankdir, dpi, splines):
        dot.set(k, v)
    dot.set_node_defaults(shape="record")
    for b in boxes:
        dot.add_node(pydot.Node(_quote(b.key), **dict(_node_attributes(b))))
    for a, b in edges:
        dot.add_edge(pydot.Edge(_quote(a), _quote(b), penwidth=2))
    return dot


# ----------------------------------------------------------------- checks

def _check_options(rankdir, dpi, splines, kwargs, who):
    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("Argument `layer_range` is no longer supported.")
    if kwargs:
        raise ValueError(f"{who}: unrecognized keyword arguments: {sorted(kwargs)}")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"{who}: rankdir must be 'TB' (top to bottom) or 'LR' (left "
                         f"to right) (or 'BT', 'RL'), got {rankdir!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not 0 < dpi <= 2400:
        raise ValueError(f"{who}: dpi must be a number in (0, 2400], got {dpi!r}")
    if splines not in ("ortho", "curved", "polyline", "spline", "line", "true", "false",
                       "none", True, False):
        raise ValueError(f"{who}: splines must be one of 'ortho', 'curved', 'polyline', "
                         f"'spline', 'line', got {splines!r}")


def _check_model(model, who):
    if not hasattr(model, "layers") or not hasattr(model, "built"):
        raise TypeError(f"{who}: expected a keras model (Sequential or "
                        f"keras.Model(inputs, outputs)), got {type(model).__name__}")


# ----------------------------------------------------------------- renderers

def find_graphviz():
    """pydot, if it is installed and Graphviz's ``dot`` program is on the PATH, else None."""
    try:
        import pydot
    except ImportError:
        return None
    if shutil.which("dot") is None:
        return None
    return pydot


def _announce(renderer, why=""):
    if renderer not in _announced:
        _announced.add(renderer)
        print(f"plot_model: drawn with {renderer}{why}", file=sys.stderr)


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True,
                 rankdir="TB", expand_nested=False, dpi=200, subgraph=False,
                 show_layer_activations=False, show_trainable=False, splines="ortho",
                 **kwargs):
    """The model's graph as a ``pydot.Dot`` (needs ``pip install pydot``), as Keras's.

    Args are those of :func:`plot_model`, except that ``show_layer_names``
    defaults to True here (as in Keras).  ``expand_nested`` and ``subgraph``
    are accepted for Keras code; nncore models hold no nested models, so
    there is nothing to expand.

    Example::

        dot = keras.utils.model_to_dot(model, show_shapes=True)
        print(dot.to_string())
    """
    _check_model(model, "model_to_dot")
    _check_options(rankdir, dpi, splines, kwargs, "model_to_dot")
    boxes, edges = _graph(model, dict(
        show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
        show_layer_activations=show_layer_activations, show_trainable=show_trainable))
    try:
        import pydot
    except ImportError:
        raise ImportError("model_to_dot returns a pydot graph: install pydot "
                          "(`pip install pydot`). keras.utils.plot_model draws without "
                          "it (with matplotlib).") from None
    return _pydot_graph(pydot, boxes, edges, rankdir, dpi, splines)


def _extension(to_file):
    ext = os.path.splitext(to_file)[1][1:].lower()
    if not ext:
        return "png"            # as Keras: no extension means PNG
    if ext not in FORMATS:
        raise ValueError(f"plot_model: cannot write {to_file!r}: unknown picture type "
                         f"'.{ext}'; use one of {', '.join('.' + f for f in FORMATS)}")
    return ext


def _check_destination(to_file):
    folder = os.path.dirname(os.path.abspath(to_file))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"plot_model: cannot write {to_file!r}: folder {folder!r} "
                                "does not exist")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"plot_model: cannot write {to_file!r}: no permission to "
                              f"create files in {folder!r}")
    if os.path.isdir(to_file):
        raise IsADirectoryError(f"plot_model: cannot write {to_file!r}: it is a folder")


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False,
               show_layer_names=False, rankdir="TB", expand_nested=False, dpi=200,
               show_layer_activations=False, show_trainable=False, splines="ortho",
               **kwargs):
    """Draw the model's layers as boxes joined by arrows and write the picture to ``to_file``.

    Uses pydot + Graphviz's ``dot`` (Keras's picture) when both are
    installed, else matplotlib; says once which one drew.

    Args:
        model: a built Sequential or functional model.
        to_file: where to write; the extension picks the type: ``.png``
            (default; no extension means PNG), ``.svg``, ``.pdf`` or ``.dot``
            (the Graphviz source text).  Written atomically: an error leaves
            no partial file.
        show_shapes: show each layer's input and output shape.
        show_dtype: show each layer's output dtype.
        show_layer_names: show ``name (ClassName)`` instead of the class name.
        rankdir: ``"TB"`` draws top to bottom, ``"LR"`` left to right.
        expand_nested: accepted for Keras code (nncore models hold no nested models).
        dpi: resolution of a PNG, in dots per inch.
        show_layer_activations: show the activation of layers that have one.
        show_trainable: mark layers with weights as trainable or not.
        splines: how Graphviz draws the arrows (``"ortho"``: right angles).

    Returns:
        An ``IPython.display.Image`` (``SVG`` for .svg) that Jupyter shows
        below the cell, when IPython is installed; else None (and for .pdf/.dot).

    Example::

        keras.utils.plot_model(model, show_shapes=True, to_file="cnn-architecture.png", dpi=300)
    """
    _check_model(model, "plot_model")
    _check_options(rankdir, dpi, splines, kwargs, "plot_model")
    to_file = os.fspath(to_file)
    ext = _extension(to_file)
    _check_destination(to_file)
    options = dict(show_shapes=show_shapes, show_dtype=show_dtype,
                   show_layer_names=show_layer_names,
                   show_layer_activations=show_layer_activations,
                   show_trainable=show_trainable)
    if ext == "dot":
        data = dot_text(model, rankdir=rankdir, dpi=dpi, splines=splines,
                        **options).encode("utf-8")
    else:
        boxes, edges = _graph(model, options)
        pydot, data = find_graphviz(), None
        if pydot is not None:
            try:
                data = _pydot_graph(pydot, boxes, edges, rankdir, dpi, splines).create(
                    prog="dot", format=ext)
                _announce("Graphviz (pydot + dot)")
            except Exception as e:      # a broken Graphviz install: still draw
                _announce("matplotlib", f" (Graphviz's dot failed: {e})")
        if data is None:
            data = _draw_matplotlib(boxes, edges, rankdir, dpi, ext)
            _announce("matplotlib", " (Keras's Graphviz picture needs `pip install pydot` "
                      "and Graphviz's `dot` program)")
    atomic_write(to_file, lambda f: f.write(data), what="plot_model")
    return _display(to_file, ext)


def _display(to_file, ext):
    if ext in ("pdf", "dot"):
        return None
    try:
        from IPython import display
    except ImportError:
        return None
    if ext == "svg":
        return display.SVG(filename=to_file)
    return display.Image(filename=to_file)


# ----------------------------------------------------------------- matplotlib

def _draw_matplotlib(boxes, edges, rankdir, dpi, ext):
    """The picture Graphviz would draw, with matplotlib: one box per layer
    (black title row, white rows below), arrows between them; bytes of ``ext``."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError:
        raise ImportError("plot_model needs a renderer: install matplotlib (`pip install "
                          "matplotlib`), or pydot (`pip install pydot`) and Graphviz") from None
    char_w, row_h, gap, pad = 0.09, 0.34, 0.45, 0.15   # inches
    sizes = []
    for b in boxes:
        bottom = "   ".join(f"{label}: {v}" if v is not None else label
                            for label, v in b.cells)
        texts = [b.title] + ([f"Activation: {b.activation}"] if b.activation else []) \
            + ([bottom] if bottom else [])
        width = max(len(t) for t in texts) * char_w + 2 * pad
        sizes.append((texts, width, len(texts) * row_h))
    horizontal = rankdir in ("LR", "RL")
    if horizontal:
        fig_w = sum(w for _, w, _ in sizes) + gap * (len(sizes) + 1)
        fig_h = max(h for *_, h in sizes) + 2 * gap
    else:
        fig_w = max(w for _, w, _ in sizes) + 2 * gap
        fig_h = sum(h for *_, h in sizes) + gap * (len(sizes) + 1)
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, fig_w)
    ax.set_ylim(0, fig_h)
    ax.axis("off")
    places = {}
    pos = gap
    order = list(zip(boxes, sizes))
    if rankdir in ("BT", "RL"):
        order.reverse()
    for b, (texts, w, h) in order:
        if horizontal:
            x0, y0 = pos, (fig_h - h) / 2
            pos += w + gap
        else:
            x0, y0 = (fig_w - w) / 2, fig_h - pos - h
            pos += h + gap
        places[b.key] = (x0, y0, w, h)
        for r, t in enumerate(texts):
            top = y0 + h - r * row_h
            title = r == 0
            ax.add_patch(_rect(x0, top - row_h, w, row_h,
                                         "black" if title else "white"))
            ax.text(x0 + w / 2, top - row_h / 2, t, ha="center", va="center",
                    color="white" if title else "black", fontsize=10 if title else 9,
                    fontweight="bold" if title else "normal", family="sans-serif")
    for a, b in edges:
        xa, ya, wa, ha = places[a]
        xb, yb, wb, hb = places[b]
        if horizontal:
            start, end = ((xa + wa, ya + ha / 2), (xb, yb + hb / 2)) if xa < xb else \
                ((xa, ya + ha / 2), (xb + wb, yb + hb / 2))
        else:
            start, end = ((xa + wa / 2, ya), (xb + wb / 2, yb + hb)) if ya > yb else \
                ((xa + wa / 2, ya + ha), (xb + wb / 2, yb))
        ax.annotate("", xy=end, xytext=start,
                    arrowprops=dict(arrowstyle="-|>", lw=2, color="black"))
    buf = io.BytesIO()
    fig.savefig(buf, format=ext, dpi=dpi, facecolor="white")
    return buf.getvalue()


def _rect(x, y, w, h, colour):
    from matplotlib.patches import Rectangle
    return Rectangle((x, y), w, h, facecolor=colour, edgecolor="black", lw=1)
