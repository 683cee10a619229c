"""Every Keras 3 public name either works in nncore or says "not in nncore yet".

The Keras names come from the committed table nncore/_keras_names.json
(tools/make_keras_names.py wrote it from Keras 3.15), so this runs without
TensorFlow.  A misspelt name must still get Python's plain error with a
"did you mean".
"""
import sys

import pytest

import nncore as keras
from nncore import _not_yet

TABLE = _not_yet.table()
NAMESPACES = ["layers", "callbacks", "optimizers", "utils", "datasets", "preprocessing",
              "losses", "metrics", "activations", "initializers", "regularizers", "models",
              "saving", "applications", "ops"]
CASES = [(ns, name) for ns in NAMESPACES for name in sorted(TABLE["namespaces"][ns])]


def test_table_is_keras_3_and_covers_every_namespace():
    assert TABLE["keras_version"].startswith("3.")
    assert sorted(TABLE["namespaces"]) == sorted(NAMESPACES)
    # spot checks that the table is Keras's API, not nncore's
    assert {"Dense", "LSTM", "Conv2D"} <= set(TABLE["namespaces"]["layers"])
    assert {"pad_sequences", "plot_model"} <= set(TABLE["namespaces"]["utils"])
    assert {"cifar10", "imdb", "fashion_mnist"} <= set(TABLE["namespaces"]["datasets"])
    assert len(CASES) > 800


@pytest.mark.parametrize("ns", NAMESPACES)
def test_every_keras_name_works_or_says_not_in_nncore_yet(ns):
    module = getattr(keras, ns)
    works, not_yet = [], []
    for name in sorted(TABLE["namespaces"][ns]):
        try:
            getattr(module, name)
        except AttributeError as e:
            msg = str(e)
            assert msg.startswith(f"keras.{ns}.{name} is not in nncore yet"), msg
            assert "nncore has: " in msg
            not_yet.append(name)
        else:
            works.append(name)
    if ns in ("layers", "callbacks", "optimizers", "utils", "losses", "metrics", "models",
              "saving", "datasets", "activations", "initializers", "regularizers"):
        assert works, f"nncore.{ns} has none of Keras's names?"
    if ns in ("preprocessing", "applications"):
        assert not_yet


def test_top_level_keras_names_work_or_say_not_in_nncore_yet():
    for name in sorted(TABLE["top_level"]):
        try:
            getattr(keras, name)
        except AttributeError as e:
            assert str(e).startswith(f"keras.{name} is not in nncore yet"), str(e)


@pytest.mark.parametrize("expr,have", [
    ("keras.utils.image_dataset_from_directory", "to_categorical"),
    ("keras.datasets.cifar10", "fashion_mnist"),
    ("keras.losses.Huber", "SparseCategoricalCrossentropy"),
    ("keras.metrics.AUC", "SparseCategoricalAccuracy"),
    ("keras.activations.gelu", "relu"),
    ("keras.applications.VGG16", "no pretrained models"),
    ("keras.preprocessing.image_dataset_from_directory", "nncore has"),
    ("keras.layers.Bidirectional", "LSTM"),
    ("keras.callbacks.BackupAndRestore", "EarlyStopping"),
    ("keras.optimizers.Nadam", "Adam"),
])
def test_the_issues_examples_say_what_nncore_has(expr, have):
    with pytest.raises(AttributeError, match="is not in nncore yet") as info:
        eval(expr, {"keras": keras})
    assert have in str(info.value)


@pytest.mark.parametrize("ns,typo,meant", [
    ("layers", "Dence", "Dense"), ("utils", "to_categorcal", "to_categorical"),
    ("losses", "MeanSquaredErorr", "MeanSquaredError"), ("datasets", "fashion_mnst", "fashion_mnist"),
    ("activations", "relu6x", "relu"), ("callbacks", "EarlyStoping", "EarlyStopping"),
    ("optimizers", "Adma", "Adam"), ("initializers", "GlorotUnifrom", "GlorotUniform"),
])
def test_a_typo_gets_did_you_mean_not_not_yet(ns, typo, meant):
    with pytest.raises(AttributeError) as info:
        getattr(getattr(keras, ns), typo)
    msg = str(info.value)
    assert "not in nncore yet" not in msg
    assert f"module 'nncore.{ns}' has no attribute '{typo}'" in msg
    assert f"Did you mean '{meant}'?" in msg
    assert not hasattr(getattr(keras, ns), typo)


def test_dunder_probes_get_plain_errors():
    assert not hasattr(keras.preprocessing, "__wrapped__")
    assert not hasattr(keras.activations, "__path__")


def test_a_submodule_added_later_just_works(tmp_path, monkeypatch):
    # what chapter 9's nncore/preprocessing/sequence.py will do: no edit to
    # the package's __init__ or to the table is needed
    pkg = keras.preprocessing
    if "sequence" not in _not_yet._public(pkg):
        (tmp_path / "sequence.py").write_text("def pad_sequences(s):\n    return 'padded'\n")
        monkeypatch.setattr(pkg, "__path__", list(pkg.__path__) + [str(tmp_path)])
        monkeypatch.delitem(sys.modules, "nncore.preprocessing.sequence", raising=False)
        try:
            assert keras.preprocessing.sequence.pad_sequences([1]) == "padded"
        finally:
            sys.modules.pop("nncore.preprocessing.sequence", None)
            if "sequence" in vars(pkg):
                delattr(pkg, "sequence")
    else:
        assert callable(keras.preprocessing.sequence.pad_sequences)


def test_a_broken_submodule_shows_its_own_error(tmp_path, monkeypatch):
    pkg = keras.applications
    (tmp_path / "broken_demo.py").write_text("import no_such_module_for_nncore_test\n")
    monkeypatch.setattr(pkg, "__path__", list(pkg.__path__) + [str(tmp_path)])
    try:
        with pytest.raises(ModuleNotFoundError, match="no_such_module_for_nncore_test"):
            keras.applications.broken_demo
    finally:
        sys.modules.pop("nncore.applications.broken_demo", None)


def test_the_generator_script_is_committed_and_names_its_output():
    import pathlib
    script = pathlib.Path(__file__).resolve().parents[1] / "tools" / "make_keras_names.py"
    if not script.exists():
        pytest.skip("tools/ is not part of an installed package")
    text = script.read_text()
    assert "_keras_names.json" in text
    for ns in NAMESPACES:
        assert f'"{ns}"' in text
