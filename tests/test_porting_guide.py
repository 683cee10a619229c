"""docs/porting_guide.md: its table, applied to the book's TensorFlow code
quoted on the page, gives code that runs on nncore.

Each ```python book block gets the page's substitutions (read from the page
itself, so the test follows the table), then runs on 600 Fashion-MNIST images
(the shipped sample when the real files are absent) for one epoch.
"""
import pathlib
import re

import numpy as np
import pytest

import nncore as keras

GUIDE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "porting_guide.md"


def _guide():
    if not GUIDE.exists():
        pytest.skip("docs/ is not part of an installed package")
    return GUIDE.read_text(encoding="utf-8")


def substitutions(text):
    """(TensorFlow, nncore) pairs from the "Line by line" table, in order."""
    section = text.split("## Line by line", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \| `([^`]*)` \|", section, re.M)


def book_blocks(text):
    return re.findall(r"```python book\n(.*?)```", text, re.S)


def port(code, subs):
    for old, new in subs:
        code = code.replace(old, new)
    return code


def test_table_covers_the_books_tensorflow_lines():
    subs = dict(substitutions(_guide()))
    for line in ("from tensorflow import keras", "import tensorflow as tf",
                 "tf.keras.utils.set_random_seed(42)",
                 "tf.config.experimental.enable_op_determinism()"):
        assert line in subs, line
    # determinism is not a silent no-op call: the line becomes a comment
    assert subs["tf.config.experimental.enable_op_determinism()"].startswith("#")


def test_ported_blocks_name_no_tensorflow():
    text = _guide()
    subs = substitutions(text)
    blocks = book_blocks(text)
    assert len(blocks) >= 3
    assert any("tensorflow" in b for b in blocks)          # the page quotes TF code
    for code in blocks:
        ported = port(code, subs)
        assert "tensorflow" not in ported and "tf." not in ported, ported


@pytest.fixture
def small_fashion_mnist(monkeypatch):
    (x, y), (xt, yt) = keras.datasets.fashion_mnist.load_data()
    small = (x[:600], y[:600]), (xt[:200], yt[:200])
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", lambda *a, **k: small)
    return small


@pytest.mark.parametrize("index", range(3), ids=["7-1", "7-3", "8-2"])
def test_ported_book_block_runs(index, small_fashion_mnist, tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    pytest.importorskip("h5py")              # the book's .keras checkpoints
    pytest.importorskip("matplotlib")        # plot_model without Graphviz
    text = _guide()
    code = port(book_blocks(text)[index], substitutions(text))
    code = re.sub(r"epochs=\d+", "epochs=1", code)       # small data, one epoch
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    exec(compile(code, f"<porting guide block {index}>", "exec"), namespace)
    model = namespace["model"]
    x_val = namespace["val_scaled"]
    probs = model.predict(x_val[:8], verbose=0)
    assert probs.shape == (8, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    written = sorted(p.name for p in tmp_path.iterdir())
    if "plot_model" in code:
        assert {"model.png", "cnn-architecture.png"} <= set(written)
    if "ModelCheckpoint" in code:
        assert any(name.endswith(".keras") for name in written)


def test_seeded_block_repeats_exactly(small_fashion_mnist, tmp_path, monkeypatch):
    # what the guide promises instead of enable_op_determinism(): same seed,
    # same result, at any thread count
    pytest.importorskip("sklearn")
    pytest.importorskip("h5py")
    text = _guide()
    code = re.sub(r"epochs=\d+", "epochs=1", port(book_blocks(text)[1], substitutions(text)))
    monkeypatch.chdir(tmp_path)
    results = []
    for threads in (1, 2, 1):
        keras.set_num_threads(threads)
        ns = {"__name__": "__main__"}
        exec(compile(code, "<porting guide 7-3>", "exec"), ns)
        results.append(np.concatenate([w.ravel() for w in ns["model"].get_weights()]))
    assert np.array_equal(results[0], results[1]) and np.array_equal(results[0], results[2])
