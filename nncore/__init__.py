"""nncore: a small, fast CPU neural-network engine with a Keras-compatible API.

    import nncore as keras          # the one change a Keras notebook needs

    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(100, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train / 255.0, y_train, epochs=5, validation_split=0.2)

Kernels are compiled (Cython + OpenMP, ``nncore._ext``); each has a readable
NumPy twin in ``nncore.ops`` and ``nncore.backend`` switches between them.
"""
__version__ = "0.1.0"


def _check_built():
    # Importing the source tree (e.g. `python -m ...` from the repository
    # root) finds nncore/ without its compiled kernels: say so plainly.
    import importlib.util
    import os
    if importlib.util.find_spec("nncore._ext.gemm") is None:
        here = os.path.dirname(os.path.abspath(__file__))
        raise ImportError(
            f"nncore's compiled kernels are missing in {here}. This is an unbuilt "
            "source checkout (run from the repository root, it hides an installed "
            "nncore): install it (pip install .) and run from another folder, or "
            "build in place with: pip install cython setuptools && "
            "python setup.py build_ext --inplace (see README.md)")


_check_built()

from nncore import (activations, backend, callbacks, config, datasets, initializers,
                    layers, losses, metrics, models, ops, optimizers, preprocessing,
                    regularizers, saving, utils, wrappers)
from nncore._info import get_num_threads, set_num_threads, show_config
from nncore.layers import Input
from nncore.models import Model, Sequential
from nncore.saving import load_model

__all__ = ["Sequential", "Model", "Input", "layers", "models", "optimizers", "losses",
           "metrics", "callbacks", "datasets", "utils", "backend", "config",
           "activations", "initializers", "regularizers", "saving", "ops",
           "wrappers", "preprocessing", "show_config", "set_num_threads", "get_num_threads", "load_model",
           "__version__"]
