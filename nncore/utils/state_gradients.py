"""plot_state_gradients: how far back in a sequence the loss still reaches.

After a backward pass (``fit``, ``train_on_batch`` or ``keras.utils.trace``)
every recurrent layer (SimpleRNN, LSTM, GRU) holds
``layer.state_gradient_norms``: ``||dL/dh_t||`` for each time step ``t``,
summed over the batch.  Plotted against ``t`` on a log scale, a straight line
falling towards ``t = 0`` is the vanishing gradient: each step back multiplies
the gradient by about the same factor, and the first words of a review stop
influencing the weights at all.

    keras.utils.trace(model, x_batch, y_batch)          # one backward, nothing applied
    fig = keras.utils.plot_state_gradients(
        {"SimpleRNN": rnn_model.layers[0], "LSTM": lstm_model.layers[0]})
    fig.savefig("gradient_flow.png")
"""
from __future__ import annotations

import numpy as np


def _norms_of(item, label):
    """The 1-D array of norms from a recurrent layer or an array-like."""
    if hasattr(item, "cell") or hasattr(item, "state_gradient_norms"):
        norms = getattr(item, "state_gradient_norms", None)
        if norms is None:
            raise ValueError(
                f"plot_state_gradients: layer '{getattr(item, 'name', label)}' has no "
                "state_gradient_norms yet: run a backward pass first, e.g. "
                "keras.utils.trace(model, x_batch, y_batch) or model.train_on_batch(x, y)")
        item = norms
    a = np.asarray(item, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"plot_state_gradients: {label!r} must be a recurrent layer or a "
                         f"1-D array of per-step norms, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"plot_state_gradients: {label!r} holds negative or non-finite "
                         "norms")
    return a


def _as_series(norms, labels):
    """[(label, 1-D array)] from a layer, an array, a list of them or a dict."""
    if isinstance(norms, dict):
        items = list(norms.items())
    elif isinstance(norms, (list, tuple)) and norms and not np.isscalar(norms[0]):
        items = [(None, n) for n in norms]
    else:
        items = [(None, norms)]
    if labels is not None:
        labels = [labels] if isinstance(labels, str) else list(labels)
        if len(labels) != len(items):
            raise ValueError(f"plot_state_gradients: {len(labels)} labels for "
                             f"{len(items)} series")
        items = [(lab, n) for lab, (_, n) in zip(labels, items)]
    out = []
    for k, (lab, n) in enumerate(items):
        if lab is None:
            lab = getattr(n, "name", None) or f"series {k}"
        out.append((str(lab), _norms_of(n, lab)))
    return out


def plot_state_gradients(norms, labels=None, ax=None, log_scale=True,
                         title="Gradient reaching each time step"):
    """Plot ``||dL/dh_t||`` against the time step ``t`` (needs matplotlib).

    Args:
        norms: a recurrent layer after a backward pass (its
            ``state_gradient_norms`` are plotted), a 1-D array of norms, a
            list of those, or a dict ``{label: layer or array}``.
        labels: names for the curves (default: the dict's keys or the
            layers' names).
        ax: an existing matplotlib Axes to draw into.
        log_scale: a logarithmic y axis (default), where a vanishing gradient
            is a straight line.
        title: the axes' title.

    Returns:
        The matplotlib Figure; its axes hold one line per series, in order,
        with the norms as the line's y data (t = 0, 1, ... as x).

    Example::

        keras.utils.trace(model, x[:64], y[:64])
        fig = keras.utils.plot_state_gradients(model.layers[1])
        fig.savefig("gradient_flow.png")
    """
    series = _as_series(norms, labels)
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plot_state_gradients needs matplotlib: pip install "
                          "'nncore-keras[plot]' (or pip install matplotlib)") from None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    for lab, a in series:
        # a norm of exactly 0 cannot be drawn on a log axis: it is left as a gap
        y = np.where(a > 0, a, np.nan) if log_scale else a
        ax.plot(np.arange(len(a)), y, label=lab)
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("time step t (0 = first word)")
    ax.set_ylabel("||dL/dh_t||")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig
