"""What a new user meets before any training: the package name (an unrelated
``nncore`` exists on PyPI), importing from the repository folder, and the
build recipe of docs/README.md."""
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

import nncore

REPO = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"

pytestmark = pytest.mark.skipif(not PYPROJECT.exists(), reason="needs the source checkout")


def _project_name():
    text = PYPROJECT.read_text()
    section = text[text.index("[project]"):]
    return re.search(r'^name\s*=\s*"([^"]+)"', section, re.M).group(1)


def test_distribution_name_is_not_the_unrelated_pypi_nncore():
    name = _project_name()
    assert name != "nncore"          # pip install nncore gives someone else's package
    assert name == "nncore-keras"
    # the import name is still nncore (the package folder, in a checkout; a
    # wheel's test run copies tests/ without it, so that the wheel is imported)
    if (REPO / "setup.py").exists():
        assert (REPO / "nncore" / "__init__.py").exists()
    else:
        assert pathlib.Path(nncore.__file__).parent.name == "nncore"


def test_readme_says_which_name_to_install_and_which_not():
    readme = (REPO / "README.md").read_text()
    assert "nncore-keras" in readme
    assert "pip install nncore`" in readme and "unrelated" in readme
    # the two set-up commands still install this source tree
    assert "pip install -q '.[test]'" in readme and ".venv/bin/nncore-train" in readme


def test_installed_metadata_uses_the_new_name_when_installed():
    from importlib import metadata
    try:
        dist = metadata.distribution("nncore-keras")
    except metadata.PackageNotFoundError:
        pytest.skip("running from a source tree without an installed nncore-keras")
    assert dist.version == nncore.__version__


def test_build_recipe_installs_the_build_tools_first():
    for page in (REPO / "README.md", REPO / "docs" / "README.md"):
        text = page.read_text()
        i = text.index("setup.py build_ext --inplace")
        assert "pip install cython" in text[:i], page.name


@pytest.mark.skipif(not (REPO / "nncore" / "__init__.py").exists(),
                    reason="needs the source checkout's nncore/ folder (a wheel's test "
                           "run copies tests/ alone)")
def test_importing_an_unbuilt_source_tree_explains_itself(tmp_path):
    # what `python -c "import nncore"` in the repository root meets after
    # `pip install .`: the source folder first on sys.path, no compiled kernels
    src = tmp_path / "checkout"
    shutil.copytree(REPO / "nncore", src / "nncore",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    proc = subprocess.run([sys.executable, "-c", "import nncore"], cwd=src,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0
    msg = proc.stderr.strip().splitlines()[-1]
    assert msg.startswith("ImportError: nncore's compiled kernels are missing")
    assert "pip install ." in msg and "another folder" in msg and "build_ext --inplace" in msg
