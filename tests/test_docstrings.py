"""help() on nncore's public API shows real documentation.

Walks every public name of the Keras-named modules (``nncore.*``,
``nncore.layers.*``, ``nncore.optimizers.*``, ...) and checks that each class,
function, method and property has a docstring of more than a token line; the
classes and methods a chapter-7 reader meets first must also document their
arguments and show an example.
"""
import inspect
import pathlib

import pytest

import nncore

MODULES = ["nncore", "nncore.layers", "nncore.optimizers", "nncore.losses",
           "nncore.datasets.fashion_mnist", "nncore.datasets.mnist", "nncore.utils.teaching",
           "nncore.utils.progbar",
           "nncore.metrics", "nncore.callbacks", "nncore.models", "nncore.datasets",
           "nncore.utils"]

MIN_CLASS_OR_FUNCTION = 40       # characters: at least a real sentence
MIN_MEMBER = 12


def _module(name):
    import importlib
    return importlib.import_module(name)


def _public_objects():
    seen = set()
    for modname in MODULES:
        mod = _module(modname)
        names = getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")]
        for name in names:
            obj = getattr(mod, name)
            if inspect.ismodule(obj) or not callable(obj):
                continue
            if not getattr(obj, "__module__", "").startswith("nncore"):
                continue
            key = (modname, name)
            if key not in seen:
                seen.add(key)
                yield f"{modname}.{name}", obj


def _members(cls):
    """Public methods and properties that nncore defines for ``cls`` (own or inherited)."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("nncore"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_"):
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property) or inspect.isfunction(value):
                yield name, getattr(cls, name) if not isinstance(value, property) else value


PUBLIC = sorted(_public_objects(), key=lambda kv: kv[0])


def test_the_walk_finds_the_api():
    names = {n for n, _ in PUBLIC}
    for expected in ("nncore.Sequential", "nncore.layers.Dense", "nncore.optimizers.Adam",
                     "nncore.callbacks.EarlyStopping", "nncore.utils.to_categorical",
                     "nncore.losses.SparseCategoricalCrossentropy", "nncore.show_config",
                     "nncore.Input"):
        assert expected in names
    assert len(PUBLIC) > 60


@pytest.mark.parametrize("qualname,obj", PUBLIC, ids=[n for n, _ in PUBLIC])
def test_public_name_has_a_docstring(qualname, obj):
    # a class's own docstring: inspect.getdoc would hand back the base
    # class's text (help() on Conv2D showing Layer's), which says nothing
    # about this class
    if inspect.isclass(obj):
        doc = inspect.cleandoc(obj.__dict__.get("__doc__") or "")
    else:
        doc = inspect.getdoc(obj) or ""
    assert len(doc) >= MIN_CLASS_OR_FUNCTION, f"{qualname}: docstring missing or too short: {doc!r}"
    if inspect.isclass(obj):
        missing = []
        for name, member in _members(obj):
            mdoc = inspect.getdoc(member) or ""
            if len(mdoc) < MIN_MEMBER:
                missing.append(name)
        assert not missing, f"{qualname}: members without a docstring: {missing}"


# What a chapter-7 reader calls help() on first: arguments and an example.
TEACHING = [
    nncore.Sequential, nncore.layers.Dense, nncore.layers.Dropout, nncore.layers.Flatten,
    nncore.Input, nncore.optimizers.SGD, nncore.optimizers.Adam, nncore.optimizers.RMSprop,
    nncore.optimizers.Adagrad, nncore.Model.compile, nncore.Model.fit,
    nncore.Model.evaluate, nncore.Model.predict, nncore.Model.save,
    nncore.Sequential.summary, nncore.callbacks.EarlyStopping,
    nncore.callbacks.ModelCheckpoint, nncore.datasets.fashion_mnist.load_data,
    nncore.utils.plot_history, nncore.utils.to_categorical,
]


@pytest.mark.parametrize("obj", TEACHING, ids=[o.__qualname__ for o in TEACHING])
def test_first_contact_docs_have_arguments_and_an_example(obj):
    doc = inspect.getdoc(obj)
    assert "Args:" in doc, f"{obj.__qualname__}: no Args: section"
    assert "Example" in doc, f"{obj.__qualname__}: no example"


def test_optimizer_docs_show_their_update_rule():
    for cls, piece in ((nncore.optimizers.SGD, "momentum"), (nncore.optimizers.Adam, "beta_1"),
                       (nncore.optimizers.RMSprop, "rho"), (nncore.optimizers.Adagrad, "g²")):
        doc = inspect.getdoc(cls)
        assert "<-" in doc and piece in doc, cls.__name__


def test_help_renders_the_docstring():
    import pydoc
    text = pydoc.render_doc(nncore.layers.Dense, renderer=pydoc.plaintext)
    assert "units: number of outputs" in text
    assert "units: 'int'" in text or "units: int" in text      # type hints show too


def test_py_typed_marker_is_shipped():
    pkg = pathlib.Path(nncore.__file__).parent
    assert (pkg / "py.typed").is_file()
    repo = pkg.parent
    pyproject = repo / "pyproject.toml"
    if pyproject.exists():            # source checkout: the marker is declared as package data
        assert "py.typed" in pyproject.read_text()
