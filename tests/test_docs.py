"""The docs quote the kernels' source; the quotes must still be true.

Every line of a ```cython block in docs/*.md (minus its trailing comment and
lines abbreviated with "...") must appear, up to spacing, in src_cython/.
A kernel edited without its quote fails here rather than misleading a
reader."""
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
