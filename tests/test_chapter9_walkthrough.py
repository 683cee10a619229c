"""docs/chapter9_walkthrough.md: its code blocks run, in order, in one
namespace (each asserts what the text claims), the twin functions it names
exist in nncore/ops/recurrent.py, and its picture is there."""
import pathlib
import re

import pytest

PAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "chapter9_walkthrough.md"


def _page():
    if not PAGE.exists():
        pytest.skip("docs/ is not part of an installed package")
    return PAGE.read_text(encoding="utf-8")


def test_code_blocks_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", _page(), re.S)
    assert len(blocks) >= 5
    ns = {"__name__": "chapter9_walkthrough"}
    for k, code in enumerate(blocks):
        exec(compile(code, f"{PAGE.name} block {k + 1}", "exec"), ns)
    out = capsys.readouterr().out
    assert "Total params: 8,633" in out                  # the GRU model's summary
    assert "padded with a mask == unpadded" in out


def test_named_twin_functions_exist():
    from nncore.ops import recurrent
    names = set(re.findall(r"`recurrent\.(\w+)`", _page()))
    assert {"rnn_forward", "rnn_backward", "_lstm_step_back"} <= names
    missing = [n for n in sorted(names) if not hasattr(recurrent, n)]
    assert not missing, f"the page names functions nncore/ops/recurrent.py lacks: {missing}"


def test_picture_is_there():
    page = _page()
    for img in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page):
        data = (PAGE.parent / img).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, img
