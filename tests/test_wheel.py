"""The source distribution carries what the wheel is compiled from.

``python -m build`` makes the sdist first and then builds the wheel *from the
sdist*; before MANIFEST.in the sdist held only Cython's generated ``.c`` files,
``setup.py`` found no ``.pyx`` to compile, and the "wheel" was a pure-Python
``py3-none-any`` one without kernels.  Building a real sdist takes minutes, so
this applies MANIFEST.in's rules with setuptools' own template reader to the
files of the checkout (the whole build is checked by hand, docs/building_wheels.md).
"""
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SRC = REPO / "src_cython"

pytestmark = pytest.mark.skipif(not (REPO / "setup.py").exists() or not SRC.is_dir(),
                                reason="needs the source checkout")


def _sdist_files():
    """The files MANIFEST.in adds to the sdist (beyond what setuptools adds itself)."""
    filelist = pytest.importorskip("setuptools._distutils.filelist",
                                   reason="setuptools' bundled distutils is not available")
    fl = filelist.FileList()
    # the kernel sources and the top-level files are the candidates that matter
    candidates = [p for p in SRC.rglob("*") if p.is_file()] + \
        [p for p in REPO.iterdir() if p.is_file()]
    fl.set_allfiles([str(p.relative_to(REPO)) for p in candidates])
    manifest = REPO / "MANIFEST.in"
    assert manifest.exists(), "MANIFEST.in is missing: the sdist would lack the .pyx sources"
    for line in manifest.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            fl.process_template_line(line)
    return {pathlib.PurePath(f).as_posix() for f in fl.files}


def test_sdist_carries_every_kernel_source_and_no_generated_c():
    files = _sdist_files()
    sources = sorted(p.relative_to(REPO).as_posix() for pattern in ("*.pyx", "*.pxd", "*.h")
                     for p in SRC.glob(pattern))
    # hand-written C: a .c file with no .pyx of the same name (Cython's
    # output always has one); setup.py compiles nn_level.c per CPU level
    handwritten = sorted(p.relative_to(REPO).as_posix() for p in SRC.glob("*.c")
                         if not p.with_suffix(".pyx").exists())
    assert "src_cython/nn_level.c" in handwritten
    assert any(s.endswith(".pyx") for s in sources)
    missing = [s for s in sources + handwritten if s not in files]
    assert not missing, f"not in the sdist: {missing}"
    generated = [f for f in files if f.startswith("src_cython/") and f.endswith(".c")
                 and (REPO / f).with_suffix(".pyx").exists()]
    assert not generated, f"Cython's generated C in the sdist: {generated}"


def test_cibuildwheel_config_is_portable_and_copies_what_the_suite_reads():
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python >= 3.11")
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["cibuildwheel"]
    # a wheel must not be built for the build machine's CPU only
    assert cfg["environment"]["NNCORE_PORTABLE"] == "1"
    # the suite runs from copies of these, outside the source tree: each must exist
    missing = [p for p in cfg["test-sources"] if not (REPO / p).exists()]
    assert not missing, f"test-sources name paths the checkout lacks: {missing}"
    assert "tests" in cfg["test-sources"] and "tests" in cfg["test-command"]
    # and every top-level folder the tests read (REPO / "<name>") is copied
    read = set()
    for test in (REPO / "tests").glob("*.py"):
        if test.name != "test_wheel.py":
            read.update(re.findall(r'REPO / "([^"/]+)"', test.read_text()))
    # (the tests of the source tree itself skip outside it)
    uncopied = sorted(p for p in read if p not in cfg["test-sources"]
                      and p not in ("nncore", "src_cython", "setup.py"))
    assert not uncopied, f"tests read {uncopied}, which cibuildwheel does not copy"
