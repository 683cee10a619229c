"""A model as nncore ``.npz`` bytes, and back.

This is how a wrapper's model crosses a process boundary (joblib's worker
processes, Dask workers, ``pickle.dumps`` of a fitted estimator): the bytes
are exactly a ``model.save("m.npz")`` file -- architecture as JSON, weights,
compile configuration, optimizer state, dropout streams -- so what arrives is
the same model, ready to predict or to resume training, and no Python object
of the model is ever pickled.  Reading goes through ``load_model``'s checks
(``allow_pickle=False``, validated members).

``save_model``/``load_model`` work on paths (they write atomically through a
temporary file), so the bytes pass through a private temporary folder that
is removed at once.
"""
import os
import shutil
import tempfile

from nncore.saving.model_io import load_model, save_model

_FILE = "model.npz"


def model_to_bytes(model):
    """The bytes of ``model.save(...)`` for ``model`` (a Sequential)."""
    folder = tempfile.mkdtemp(prefix="nncore-transport-")
    try:
        path = os.path.join(folder, _FILE)
        save_model(model, path)
        with open(path, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def model_from_bytes(data, custom_objects=None):
    """The model whose ``.npz`` bytes are ``data`` (see ``model_to_bytes``)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"model_from_bytes: expected bytes, got {type(data).__name__}")
    folder = tempfile.mkdtemp(prefix="nncore-transport-")
    try:
        path = os.path.join(folder, _FILE)
        with open(path, "wb") as f:
            f.write(data)
        return load_model(path, custom_objects=custom_objects)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
