"""Every script in examples/ runs to the end on a slice of Fashion-MNIST and
reports sensible accuracies."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import child_env

REPO = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))
DATA = REPO.parent / "shared" / "data" / "fashion-mnist"

ACCURACY = re.compile(r"accuracy:\s*([0-9]*\.[0-9]+)")


def _data_dir():
    env = os.environ.get("NNCORE_DATA_DIR")
    for cand in ([pathlib.Path(env)] if env else []) + [DATA]:
        if (cand / "train-images-idx3-ubyte.gz").exists():
            return cand
    return None


def test_there_are_examples():
    names = {p.name for p in EXAMPLES}
    assert {"ch7_fashion_mnist.py", "walkthrough_backprop.py"} <= names


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    data = _data_dir()
    if data is None:
        pytest.skip(f"Fashion-MNIST files not found in {DATA} (or $NNCORE_DATA_DIR); "
                    "the examples need the real data set")
    env = child_env(NNCORE_DATA_DIR=str(data), NNCORE_EXAMPLE_SAMPLES="2000",
                    NNCORE_EXAMPLE_EPOCHS="2", NNCORE_EXAMPLE_VERBOSE="0",
                    NNCORE_HOME=str(tmp_path / "home"), MPLBACKEND="Agg")
    # run from tmp_path: checkpoints and plots land there, not in the repo
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    accs = [float(a) for a in ACCURACY.findall(proc.stdout)]
    assert accs, f"no 'accuracy: <number>' line printed:\n{proc.stdout[-2000:]}"
    assert all(0.5 < a <= 1.0 for a in accs), accs
    assert not list(REPO.glob("best-model*.npz"))
    if script.name == "ch7_fashion_mnist.py":
        assert (tmp_path / "best-model.npz").exists()
        tags = set(re.findall(r"^\[(7-\d)", proc.stdout, re.M))
        assert tags == {"7-1", "7-2", "7-3"}
    if script.name == "ch7_sklearn_compare.py":
        assert [p.name for p in tmp_path.iterdir()] == [], "wrote into the current folder"
        assert len(accs) == 2     # SGDClassifier's and the network's scores
    if script.name == "walkthrough_backprop.py":
        m = re.search(r"max \|weight difference\| between the two: (\S+)", proc.stdout)
        assert m and float(m.group(1)) < 1e-4
