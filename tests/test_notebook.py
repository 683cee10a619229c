"""The chapter-7 notebook runs from top to bottom in a real Jupyter kernel,
and its progress bars render as one updating line per epoch.

Also: docs/chapter7_walkthrough.md and examples/chapter7.ipynb are exactly
what docs/chapter7_cells.py writes, so the page shows code that runs.
Needs the ``notebook`` extra (nbclient, nbformat, ipykernel; also in ``test``).
"""
import importlib.util
import json
import os
import pathlib
import re
import sys
import time

import pytest

from conftest import child_env, fashion_mnist_dir

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "examples" / "chapter7.ipynb"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _cells_module():
    spec = importlib.util.spec_from_file_location("chapter7_cells", REPO / "docs" / "chapter7_cells.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_notebook_and_page_are_generated_from_the_same_cells():
    cells = _cells_module()
    assert NOTEBOOK.read_text(encoding="utf-8") == cells.notebook_json(), \
        "examples/chapter7.ipynb is stale: run python docs/chapter7_cells.py"
    assert cells.MARKDOWN.read_text(encoding="utf-8") == cells.markdown_text(), \
        "docs/chapter7_walkthrough.md is stale: run python docs/chapter7_cells.py"
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    for piece in ("train_test_split", 'activation="sigmoid"', "SGD(", "Adagrad(", "RMSprop(",
                  'optimizer="adam"', "Dropout(0.3)", "save_weights", "load_weights",
                  "load_model", "ModelCheckpoint", "EarlyStopping", "plt.plot",
                  'history.history["val_loss"]'):
        assert piece in code, piece


def rendered(text):
    """What a notebook frontend shows for a stream: each \\r returns to the
    start of the line, so only the text after a line's last \\r remains."""
    return [ANSI.sub("", line.rsplit("\r", 1)[-1]) for line in text.split("\n")]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nbclient = pytest.importorskip("nbclient", reason="needs the notebook extra: "
                                   "pip install 'nncore-keras[notebook]'")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    data = fashion_mnist_dir()
    if data is None:
        pytest.skip("real Fashion-MNIST files not found (set NNCORE_DATA_DIR)")
    tmp = tmp_path_factory.mktemp("notebook")
    cwd, out, home, kernels = (tmp / "cwd", tmp / "out", tmp / "home",
                               tmp / "jupyter" / "kernels" / "nncore-test")
    for d in (cwd, out, kernels):
        d.mkdir(parents=True)
    # a kernel running this interpreter and importing the same nncore as the tests
    env = child_env(NNCORE_DATA_DIR=str(data), NNCORE_NOTEBOOK_OUT=str(out),
                    NNCORE_HOME=str(home), IPYTHONDIR=str(tmp / "ipython"))
    keep = ("PYTHONPATH", "PYTHONSAFEPATH", "NNCORE_DATA_DIR", "NNCORE_NOTEBOOK_OUT",
            "NNCORE_HOME", "OMP_NUM_THREADS", "IPYTHONDIR")
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "nncore test", "language": "python",
        "env": {k: env[k] for k in keep if k in env}}))
    # the kernel spec above, and connection files kept out of the user's home
    jupyter_env = {"JUPYTER_PATH": str(tmp / "jupyter"),
                   "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}
    old = {k: os.environ.get(k) for k in jupyter_env}
    os.environ.update(jupyter_env)
    try:
        nb = nbformat.read(str(NOTEBOOK), as_version=4)
        client = nbclient.NotebookClient(nb, kernel_name="nncore-test", timeout=300,
                                         resources={"metadata": {"path": str(cwd)}})
        t0 = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - t0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb, seconds, cwd, out


def _stdout(cell):
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and o.name == "stdout")


def test_notebook_runs_quickly_and_writes_only_to_its_output_folder(executed):
    nb, seconds, cwd, out = executed
    print(f"chapter-7 notebook executed in {seconds:.1f} s")
    assert seconds < 120
    assert list(cwd.iterdir()) == []                      # nothing in the working folder
    assert {"model.weights.npz", "model-whole.npz", "best-model.npz",
            "adam_curves.png"} <= {p.name for p in out.iterdir()}
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) >= 6                               # the figures were drawn


def test_notebook_reaches_the_books_accuracy(executed):
    nb = executed[0]
    last = _stdout([c for c in nb.cells if c.cell_type == "code"][-1])
    acc = float(re.search(r"test accuracy: ([0-9.]+)", last).group(1))
    assert 0.80 < acc <= 1.0, acc


def test_progress_bar_is_one_updating_line_per_epoch(executed):
    nb = executed[0]
    fits = [c for c in nb.cells if c.cell_type == "code"
            and "epochs=5)" in c.source and "verbose=0" not in c.source]
    assert len(fits) >= 3
    for cell in fits:
        raw = _stdout(cell)
        lines = [l for l in rendered(raw) if l.strip()]
        epochs = [l for l in lines if re.fullmatch(r"Epoch \d/5", l)]
        bars = [l for l in lines if "/step" in l]
        assert [l for l in epochs] == [f"Epoch {i}/5" for i in range(1, 6)], lines
        n_bars = 6 if "evaluate" in cell.source else 5
        assert len(bars) == n_bars, lines                 # one line per epoch (+ evaluate)
        assert all("━" in b and "accuracy:" in b for b in bars)   # verbose="auto" -> bar
        assert len(lines) == 5 + n_bars                   # nothing else, no flood of lines
        # redrawn in place: every bar starts with \r, not on a fresh line each time
        assert raw.count("\r") >= n_bars
        # and not redrawn more than ~20 times a second
        assert raw.count("\r") <= 20 * 5 * 3 + 3 * n_bars
