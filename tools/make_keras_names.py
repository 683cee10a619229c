"""Write nncore/_keras_names.json: the public names of Keras 3's namespaces.

nncore answers a Keras name it lacks with "not in nncore yet" (nncore/_not_yet.py)
and a misspelt one with Python's "did you mean".  To tell the two apart it
needs Keras's own list of names, taken once from an installed Keras 3 and
committed, so nncore and its tests never need TensorFlow or Keras.

Run with a Python that has Keras 3 (here: the TensorFlow venv):

    /work/tfvenv/bin/python tools/make_keras_names.py

Rerun when moving to a newer Keras and commit the JSON.
"""
import json
import os
import pathlib
import types

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

NAMESPACES = ("layers", "callbacks", "optimizers", "utils", "datasets", "preprocessing",
              "losses", "metrics", "activations", "initializers", "regularizers", "models",
              "saving", "applications", "ops")

OUT = pathlib.Path(__file__).resolve().parents[1] / "nncore" / "_keras_names.json"


def public_names(module):
    names = {}
    for name in dir(module):
        if name.startswith("_") or name == "src":    # keras.src: internals, not API
            continue
        value = getattr(module, name)
        names[name] = "module" if isinstance(value, types.ModuleType) else "name"
    return names


def main():
    table = {"keras_version": keras.__version__,
             "top_level": public_names(keras),
             "namespaces": {ns: public_names(getattr(keras, ns)) for ns in NAMESPACES}}
    text = json.dumps(table, indent=1, sort_keys=True) + "\n"
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, OUT)         # atomic: never a half-written table
    counts = {ns: len(v) for ns, v in table["namespaces"].items()}
    print(f"Keras {keras.__version__}: wrote {OUT} {counts}")


if __name__ == "__main__":
    main()
