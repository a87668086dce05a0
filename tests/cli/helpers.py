"""What the CLI's bad-input tests share: writing input files and running the CLI in-process.

The contract they check: bad input never shows a traceback. Every CLI command answers a bad file
or flag with one line, ``sparsearch CMD: error: ...`` (naming the file, and the line where there
is one), and exit code 2; and commands never write into a folder that holds anything but their
own output.
"""

from __future__ import annotations

from pathlib import Path

from sparsearch.cli import main

MODEL = "rasyosef/splade-tiny"  # never loaded by the cases below: they fail before the model
GOOD = '{"_id": "1", "title": "t", "text": "a b"}\n'


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """Exit code and stderr lines of ``sparsearch ARGV`` run in-process (argparse exits too)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as done:
        code = done.code
    return code, capsys.readouterr().err.strip().splitlines()


def assert_one_line_error(code: int, err: list[str], command: str, *words: str) -> str:
    """Exit 2, no traceback, one ``sparsearch COMMAND: error:`` line holding every word."""
    assert code == 2, err
    assert not any("Traceback" in line for line in err), err
    assert len(err) == 1, err
    assert err[0].startswith(f"sparsearch {command}: error: "), err
    for word in words:
        assert word in err[0], (word, err[0])
    return err[0]


def beir_folder(
    root: Path,
    corpus=GOOD,
    queries='{"_id": "q1", "text": "a"}\n',
    qrels="query-id\tcorpus-id\tscore\nq1\t1\t1\n",
) -> Path:
    write(root / "corpus.jsonl", corpus)
    write(root / "queries.jsonl", queries)
    write(root / "qrels" / "test.tsv", qrels)
    return root
