"""Every fenced Python block of the README and of docs/*.md runs as written.

The blocks of one file share a namespace and run in order. They run in a fresh working folder
beside a link to ../shared, so the documented relative paths (``../shared/data/...``) resolve and
whatever a block writes (a saved model, ``runs/``) stays out of the checkout. The vectors cache is
a fresh folder too, so no block leans on an earlier run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
NEEDS_SHARED = re.compile(r"\.\./shared|rasyosef/|sentence-transformers/")


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), re.S | re.M)


def doc_params() -> list:
    params = []
    for path in DOCS:
        blocks = python_blocks(path)
        if blocks:
            marks = [pytest.mark.real_model] if NEEDS_SHARED.search("".join(blocks)) else []
            params.append(pytest.param(path, id=path.name, marks=marks))
    return params


def test_the_docs_show_python():
    assert {p.values[0].name for p in doc_params()} >= {"README.md", "engine.md", "evaluation.md"}


@pytest.mark.parametrize("path", doc_params())
def test_python_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    from tests.conftest import SHARED

    work = tmp_path / "work"
    work.mkdir()
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED.resolve())
    monkeypatch.chdir(work)
    monkeypatch.setenv("SPARSEARCH_CACHE", str(tmp_path / "cache"))
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    for number, block in enumerate(python_blocks(path), 1):
        try:
            exec(compile(block, f"{path.name} block {number}", "exec"), namespace)
        except Exception as err:  # name the block that failed
            raise AssertionError(f"{path.name}, Python block {number} failed: {err!r}") from err
    if path.name == "README.md":  # the decoded intersection names the shared token
        assert "fever" in capsys.readouterr().out
