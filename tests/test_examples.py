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
# chapter 9's scripts need IMDB, not Fashion-MNIST: tests/test_ch9_examples.py
# runs them on a generated imdb.npz
EXAMPLES = sorted(p for p in (REPO / "examples").glob("*.py") if not p.name.startswith("ch9_"))
DATA = REPO.parent / "shared" / "data" / "fashion-mnist"

ACCURACY = re.compile(r"accuracy:\s*([0-9]*\.[0-9]+)")


def _data_dir():
    env = os.environ.get("NNCORE_DATA_DIR")
    for cand in ([pathlib.Path(env)] if env else []) + [DATA]:
        if (cand / "train-images-idx3-ubyte.gz").exists():
            return cand
    return None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# the figures examples/ch8_fashion_mnist_cnn.py saves (8-2's plot_model pictures
# and loss curves, 8-3's filters, histograms and feature maps)
CH8_FIGURES = ("model.png", "cnn-architecture.png", "ch8_loss_curves.png", "ch8_filter_histogram.png", "ch8_filters.png",
               "ch8_untrained_histogram.png", "ch8_untrained_filters.png",
               "ch8_input_image.png", "ch8_feature_maps.png", "ch8_feature_maps2.png")


def _png_size(path):
    """(width, height) of a PNG file, after checking it is one with something drawn.

    An empty matplotlib figure of the sizes used here compresses to under
    2.5 KB; the smallest real one (the 2 x 16 grid of 3x3 filters) is over 3 KB."""
    assert path.exists(), f"{path.name} was not saved"
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG file"
    assert data[12:16] == b"IHDR", f"{path.name}: no PNG header chunk"
    assert len(data) > 2500, f"{path.name} is only {len(data)} bytes: an empty figure?"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _weight_stats(stdout, label):
    """(mean, std) from the ch8 script's '[8-3] <label>: mean M, std S' line."""
    m = re.search(rf"^\[8-3\] {label}: mean (\S+), std (\S+)$", stdout, re.M)
    assert m, f"no '[8-3] {label}: mean .., std ..' line printed"
    return float(m.group(1)), float(m.group(2))


# optional packages a script cannot run without (the figures are optional:
# without matplotlib the scripts say so and skip them)
NEEDS = {"ch7_sklearn_compare.py": ("sklearn",)}
try:
    import matplotlib  # noqa: F401
    HAS_MATPLOTLIB = True
except ImportError:
    HAS_MATPLOTLIB = False


def test_there_are_examples():
    names = {p.name for p in EXAMPLES}
    assert {"ch7_fashion_mnist.py", "walkthrough_backprop.py"} <= names


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    data = _data_dir()
    if data is None:
        pytest.skip(f"Fashion-MNIST files not found in {DATA} (or $NNCORE_DATA_DIR); "
                    "the examples need the real data set")
    out_dir, cwd = tmp_path / "out", tmp_path / "cwd"
    cwd.mkdir()
    env = child_env(NNCORE_DATA_DIR=str(data), NNCORE_EXAMPLE_SAMPLES="2000",
                    NNCORE_EXAMPLE_EPOCHS="2", NNCORE_EXAMPLE_VERBOSE="0",
                    NNCORE_HOME=str(tmp_path / "home"), MPLBACKEND="Agg",
                    NNCORE_EXAMPLE_OUT=str(out_dir))
    # scripts that need an optional package skip (with the reason) without it
    for module in NEEDS.get(script.name, ()):
        pytest.importorskip(module, reason=f"{script.name} needs {module}, which is "
                            "not installed")
    proc = subprocess.run([sys.executable, str(script)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    accs = [float(a) for a in ACCURACY.findall(proc.stdout)]
    assert accs, f"no 'accuracy: <number>' line printed:\n{proc.stdout[-2000:]}"
    assert all(0.5 < a <= 1.0 for a in accs), accs
    # the script writes only into its output folder, never where it is run from
    assert list(cwd.iterdir()) == []
    if script.name == "ch7_fashion_mnist.py":
        # the book's .keras checkpoint, written and loaded back
        assert (out_dir / "best-model.keras").exists()
        assert "[7-3 best-model.keras] validation loss:" in proc.stdout
        assert (out_dir / "ch7_loss_curves.png").exists() == HAS_MATPLOTLIB
        tags = set(re.findall(r"^\[(7-\d)", proc.stdout, re.M))
        assert tags == {"7-1", "7-2", "7-3"}
    if script.name == "ch7_sklearn_compare.py":
        assert len(accs) == 2     # SGDClassifier's and the network's scores
    if script.name == "ch8_fashion_mnist_cnn.py":
        # the book's .keras checkpoint, reloaded; chapter 8-3's feature maps
        assert (out_dir / "best-cnn-model.keras").exists()
        assert "feature maps of layer 0: (1, 28, 28, 32)" in proc.stdout
        assert "feature maps of layer 2: (1, 14, 14, 64)" in proc.stdout
        assert "first filters: (3, 3, 1, 32) (32,)" in proc.stdout
        assert "untrained filters: (3, 3, 1, 32)" in proc.stdout
        # every figure of 8-2 and 8-3 is a real image (width, height in pixels)
        if not HAS_MATPLOTLIB:
            assert not any((out_dir / name).exists() for name in CH8_FIGURES)
            return
        sizes = {name: _png_size(out_dir / name) for name in CH8_FIGURES}
        # the 32 filters as a 2 x 16 grid: a wide strip, for both models
        for name in ("ch8_filters.png", "ch8_untrained_filters.png"):
            w, h = sizes[name]
            assert w > 4 * h, (name, w, h)
        # training moved the first layer's weights away from their initial
        # draw: the trained and the untrained statistics are not the same
        trained = _weight_stats(proc.stdout, "filter weights")
        untrained = _weight_stats(proc.stdout, "untrained filter weights")
        assert abs(trained[1] - untrained[1]) > 1e-4, (trained, untrained)
        assert all(s > 0 for s in (trained[1], untrained[1]))
    if script.name == "walkthrough_backprop.py":
        m = re.search(r"max \|weight difference\| between the two: (\S+)", proc.stdout)
        assert m and float(m.group(1)) < 1e-4


def test_ch7_example_defaults_to_a_temporary_folder(tmp_path):
    """Without NNCORE_EXAMPLE_OUT the files go to a fresh temporary folder
    (checked on the first lines the script prints, then stopped)."""
    data = _data_dir()
    if data is None:
        pytest.skip(f"Fashion-MNIST files not found in {DATA} (or $NNCORE_DATA_DIR)")
    env = child_env(NNCORE_DATA_DIR=str(data), NNCORE_EXAMPLE_SAMPLES="600",
                    NNCORE_EXAMPLE_EPOCHS="1", NNCORE_EXAMPLE_VERBOSE="0",
                    NNCORE_HOME=str(tmp_path / "home"), MPLBACKEND="Agg",
                    TMPDIR=str(tmp_path / "tmp"))
    env.pop("NNCORE_EXAMPLE_OUT", None)
    (tmp_path / "tmp").mkdir()
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "ch7_fashion_mnist.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = re.search(r"^saving files to (.+)$", proc.stdout, re.M)
    assert m and pathlib.Path(m.group(1)).parent == tmp_path / "tmp"
    assert (pathlib.Path(m.group(1)) / "best-model.keras").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "tmp"] or \
        sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]
