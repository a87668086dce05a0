"""The engine's documentation runs: code blocks of docs/engine.md and the docstring examples."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

from sparsearch.index import core, filters

DOC = Path(__file__).resolve().parents[2] / "docs" / "engine.md"


def test_engine_doc_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})


@pytest.mark.parametrize("module", [core, filters])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
