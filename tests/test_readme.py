"""The README's Python examples run as written (with the real splade-tiny from the offline cache)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README should show at least one Python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
    assert "fever" in capsys.readouterr().out  # the decoded intersection names the shared token
