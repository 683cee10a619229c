"""Keras names nncore does not have yet, and the message a learner gets for them.

``keras.layers.BatchNormalization`` or ``keras.losses.Huber`` in a notebook
ported to nncore should say "not in nncore yet" (and what nncore has) rather
than a bare AttributeError; a misspelt name gets Python's plain error with a
"did you mean" instead.

Which names Keras has comes from ``_keras_names.json``: the public names of
Keras 3's namespaces, written once by ``tools/make_keras_names.py`` from an
installed Keras and committed, so nothing here needs Keras or TensorFlow.

Every public nncore namespace ends with::

    def __getattr__(name):
        from nncore import _not_yet
        return _not_yet.module_getattr(__name__, name)

which also imports a submodule added later (``nncore/preprocessing/sequence.py``
answers ``keras.preprocessing.sequence`` with no edit here).
"""
from __future__ import annotations

import difflib
import functools
import importlib
import json
import os
import pkgutil
import sys
import types

_TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_keras_names.json")

#: a word on what a namespace holds, where nncore's differs from Keras's
NOTES = {
    "ops": "nncore.ops holds the readable NumPy twins of nncore's kernels, not Keras's "
           "backend ops; use NumPy for array maths",
    "applications": "nncore has no pretrained models",
}


@functools.lru_cache(maxsize=None)
def table() -> dict:
    """The committed table: {"keras_version", "top_level", "namespaces": {ns: {name: kind}}}."""
    with open(_TABLE, encoding="utf-8") as f:
        return json.load(f)


def keras_names(namespace: str | None) -> frozenset:
    """Keras 3's public names in ``keras.<namespace>`` (``None``: ``keras`` itself)."""
    t = table()
    names = t["top_level"] if namespace is None else t["namespaces"].get(namespace, {})
    return frozenset(names)


def _public(module) -> list:
    have = getattr(module, "__all__", None)
    if have is None:
        # what the module defines, not what it imports (np, other nncore modules)
        have = [n for n, v in vars(module).items()
                if not (isinstance(v, types.ModuleType)
                        and not v.__name__.startswith(module.__name__ + "."))]
    have = set(have)
    if hasattr(module, "__path__"):      # a package: its submodules, imported or not
        have.update(m.name for m in pkgutil.iter_modules(module.__path__))
    return sorted(n for n in have if not n.startswith("_") and n != "annotations")


def attribute_error(module: str, name: str, not_yet, have) -> AttributeError:
    """The AttributeError for ``module.name``: not-in-nncore-yet, a close match, or plain."""
    have = sorted(n for n in have if not n.startswith("_"))
    if name in not_yet:
        keras_path = "keras" + module[len("nncore"):]
        note = NOTES.get(module.partition(".")[2])
        note = f" ({note})" if note else ""
        return AttributeError(
            f"{keras_path}.{name} is not in nncore yet{note}. "
            f"nncore has: {', '.join(have) if have else 'nothing here yet'}")
    close = difflib.get_close_matches(name, have, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return AttributeError(f"module {module!r} has no attribute {name!r}.{hint}")


def module_getattr(module_name: str, name: str):
    """What a namespace's ``__getattr__`` returns or raises for a name it lacks:
    a submodule of that name if there is one, else the not-yet/did-you-mean error."""
    module = sys.modules[module_name]
    if name.startswith("__"):
        # dunder probes (copy, pickle, inspect) get Python's own error, fast
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
    if hasattr(module, "__path__"):
        full = f"{module_name}.{name}"
        try:
            return importlib.import_module(full)
        except ModuleNotFoundError as e:
            if e.name != full:      # the submodule exists but fails inside: show that
                raise
    namespace = module_name.partition(".")[2] or None
    raise attribute_error(module_name, name, keras_names(namespace), _public(module))


def __getattr__(name):
    # LAYERS / CALLBACKS: the hand-written lists this table replaced, kept for
    # code written against them (attribute_error(module, name, LAYERS, have))
    if name in ("LAYERS", "CALLBACKS"):
        return keras_names(name.lower())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
