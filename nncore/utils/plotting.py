"""plot_history: the training curves a learner looks at after fit().

    history = model.fit(x, y, epochs=20, validation_split=0.2)
    fig = nncore.utils.plot_history(history, metrics=("loss", "accuracy"))
    fig.savefig("curves.png")

The gap between the training and validation curves is what overfitting
looks like; EarlyStopping stops where the validation curve turns up.
"""


def plot_history(history, metrics=("loss",), ax=None):
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plot_history needs matplotlib: pip install 'nncore-keras[plot]' "
                          "(or pip install matplotlib)") from None
    hist = getattr(history, "history", history)
    if not isinstance(hist, dict) or not hist:
        raise ValueError("plot_history: expected a History from fit() (or its .history dict)")
    if isinstance(metrics, str):
        metrics = (metrics,)
    missing = [m for m in metrics if m not in hist]
    if missing:
        raise ValueError(f"plot_history: {missing} not in the history; it has {sorted(hist)}")
    if ax is None:
        fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(ax) if isinstance(ax, (list, tuple)) else [ax]
        fig = axes[0].figure
    for a, m in zip(axes, metrics):
        epochs = range(1, len(hist[m]) + 1)
        a.plot(epochs, hist[m], "o-", label=f"train {m}")
        if "val_" + m in hist:
            a.plot(epochs, hist["val_" + m], "s--", label=f"validation {m}")
        a.set_xlabel("epoch")
        a.set_ylabel(m)
        a.legend()
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig
