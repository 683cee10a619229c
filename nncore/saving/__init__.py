"""Saving and loading models, as ``keras.saving``.

The file suffix chooses the format: nncore's own ``.npz`` (the default, below)
or Keras's ``.keras`` / ``.weights.h5`` / legacy ``.h5`` (``keras_files``; needs
h5py).  How files are written (atomically, through symlinks, keeping the
target's mode) and read (safely) is in docs/saving.md.

    model.save("model.npz")                        # everything, one file
    model = nncore.models.load_model("model.npz")  # compiled, ready to resume
    model.save_weights("model.weights.npz")        # weights only
    model.load_weights("model.weights.npz")
    model2 = nncore.models.model_from_json(model.to_json())
    model3 = nncore.models.clone_model(model)      # new, freshly initialised

The file layout is described in ``nncore.saving.model_io`` and
``nncore.saving.format``.  Files are read with ``allow_pickle=False`` and
validated before use; custom classes load only through ``custom_objects`` or
``@nncore.saving.register``.
"""
from nncore.saving.format import FORMAT_VERSION, SUPPORTED_VERSIONS, FormatError
from nncore.saving.model_io import load_model, load_weights, save_model, save_weights
from nncore.saving.serialization import (clone_model, get_registered_objects,
                                         model_from_json, register,
                                         register_keras_serializable)

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "model_from_json",
           "clone_model", "register", "register_keras_serializable",
           "get_registered_objects", "FormatError", "FORMAT_VERSION", "SUPPORTED_VERSIONS"]


def __getattr__(name):
    # a Keras name nncore lacks says "not in nncore yet"; a typo gets "did you mean"
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
