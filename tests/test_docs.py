"""The docs quote the kernels' source; the quotes must still be true.

Every line of a ```cython block in docs/*.md (minus its trailing comment and
lines abbreviated with "...") must appear, up to spacing, in src_cython/.
A kernel edited without its quote fails here rather than misleading a
reader.

The chapter-8 page's small NumPy blocks must also still run, each on its
own, and print what the page says they print."""
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def _norm(line):
    line = line.split("#", 1)[0]
    return re.sub(r"\s+", " ", line).strip()


def _source_lines():
    files = [p for ext in ("*.pyx", "*.pxd", "*.h") for p in (REPO / "src_cython").glob(ext)]
    return "\n".join(_norm(l) for p in files for l in p.read_text().splitlines())


def _quoted():
    for md in sorted((REPO / "docs").glob("*.md")):
        for block in re.findall(r"```cython\n(.*?)```", md.read_text(), re.S):
            for line in block.splitlines():
                code = _norm(line)
                if code and "..." not in line:
                    yield md.name, code


QUOTES = list(_quoted())
SOURCE = _source_lines()


def test_docs_quote_some_kernel_code():
    assert len(QUOTES) > 20


@pytest.mark.parametrize("doc,code", QUOTES, ids=[f"{d}:{c[:40]}" for d, c in QUOTES])
def test_quoted_kernel_line_exists(doc, code):
    assert code in SOURCE, f"{doc} quotes a line that is not in src_cython/: {code!r}"


# ---------------------------------------------------------------- runnable pages

CH8 = REPO / "docs" / "chapter8_walkthrough.md"

# The chapter-8 page promises that each block of its first part (8-1, the
# backward pass, Winograd) can be pasted on its own.  Run each in a fresh
# namespace, so a block that leans on a name from an earlier one fails here.
# (The 8-2 / 8-3 blocks need the data set and a full training; they are the
# code of examples/ch8_fashion_mnist_cnn.py, which test_examples.py runs.)
_RUN_BLOCKS = r'''
import re, sys, traceback
text = open(sys.argv[1], encoding="utf-8").read()
text = text[:text.index("\n## 8-2")]
blocks = re.findall(r"```python\n(.*?)```", text, re.S)
print("BLOCKS", len(blocks))
for i, code in enumerate(blocks):
    try:
        exec(compile(code, f"<chapter8 block {i}>", "exec"), {"__name__": "__main__"})
    except Exception:
        print(f"BLOCK {i} FAILED:\n{code}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
'''


def test_chapter8_page_blocks_run_on_their_own(tmp_path):
    import subprocess
    import sys
    from conftest import child_env
    # the nncore this test run imports (in CI: the installed one; the
    # checkout there has no compiled kernels)
    env = child_env(MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-c", _RUN_BLOCKS, str(CH8)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    n = int(re.search(r"^BLOCKS (\d+)$", proc.stdout, re.M).group(1))
    assert n >= 10, n
    # a few of the results the page states in its comments
    out = proc.stdout
    for shown in ("[[9. 9. 6.]\n [9. 9. 6.]\n [6. 6. 4.]]",       # asymmetric 'same'
                  "[[1. 2. 1.]\n [2. 4. 2.]\n [1. 2. 1.]]",        # col2im adds
                  "[[0. 1. 1. 0.]\n [0. 0. 0. 0.]\n [0. 0. 1. 0.]\n [1. 0. 0. 0.]]",  # ties
                  "[ 6.5 11. ] [ 6.5 11. ]",                        # 1-D Winograd
                  "PASSED: max relative error"):                    # gradient_check
        assert shown in out, f"the page's block no longer prints {shown!r}"
    # nothing written where the blocks ran (8-1 and the kernels save no files)
    assert list(tmp_path.iterdir()) == []
