"""Shared test set-up.

* Point the dataset loader at the real Fashion-MNIST files shipped beside the
  checkout (``../shared/data/fashion-mnist``) unless NNCORE_DATA_DIR is set.
* Keep every test away from the user's ~/.nncore cache.
* Restore global state (backend, threads, floatx) after each test.
"""
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_FMNIST = REPO.parent / "shared" / "data" / "fashion-mnist"


def fashion_mnist_dir():
    """The folder holding the four Fashion-MNIST .gz files, or None."""
    env = os.environ.get("NNCORE_DATA_DIR")
    for cand in ([pathlib.Path(env)] if env else []) + [SHARED_FMNIST]:
        if (cand / "train-images-idx3-ubyte.gz").exists():
            return cand
    return None


if "NNCORE_DATA_DIR" not in os.environ and fashion_mnist_dir() is not None:
    os.environ["NNCORE_DATA_DIR"] = str(SHARED_FMNIST)


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory, monkeypatch):
    import nncore
    from nncore import backend, config
    monkeypatch.setenv("NNCORE_HOME", str(tmp_path_factory.mktemp("nncore_home")))
    threads = nncore.get_num_threads()
    yield
    backend.set_backend("cython")
    config.set_floatx("float32")
    nncore.set_num_threads(threads)


@pytest.fixture(scope="session")
def fmnist():
    """Real Fashion-MNIST ((x_train, y_train), (x_test, y_test)), loaded once."""
    if fashion_mnist_dir() is None:
        pytest.skip("real Fashion-MNIST files not found (set NNCORE_DATA_DIR)")
    import nncore
    return nncore.datasets.fashion_mnist.load_data()


def child_env(**extra):
    """Environment for a Python subprocess that must import the *same* nncore
    as this test run (the installed package in CI, an in-place build in
    development) -- never whatever ``nncore/`` folder happens to be in its cwd."""
    import nncore
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(nncore.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [pkg_parent, env.get("PYTHONPATH", "")] if p)
    env["PYTHONSAFEPATH"] = "1"      # no cwd / script dir at the front of sys.path
    env.update({k: str(v) for k, v in extra.items()})
    return env
