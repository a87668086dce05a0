"""`sparsearch collection create / ingest / search / info`: a thin shell over ``Collection`` (on
the tiny random BERT) and, for a URL, over the HTTP ``Client`` (one test against a real server).
What the CLI prints is what the library returns; bad input is one error line with exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparsearch.cli import main
from sparsearch.collection import Collection
from sparsearch.server.client import Client
from tests.cli.helpers import assert_one_line_error, run_cli, write
from tests.conftest import TINY_DOCS, write_tiny_beir
from tests.server.conftest import API_KEY, ServerProcess

JSONL_DOCS = [
    {"doc": f"j{i}", "body": text, "lang": "en" if i % 2 == 0 else "fr", "year": 2000 + i}
    for i, (_, text) in enumerate(list(TINY_DOCS.values())[:8])
]
DEV_DOCS = ["d1", "d4", "d5"]  # the documents judged in the BEIR folder's dev split


def _jsonl(path: Path, rows: list[dict]) -> Path:
    return write(path, "".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture(scope="module")
def collection(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collection made by the CLI: 8 JSONL documents, then the dev split of a BEIR folder."""
    root = tmp_path_factory.mktemp("cli-collection")
    path = root / "col"
    create = ["collection", "create", path, "--model", tiny_model_dir]
    assert main([str(a) for a in [*create, "--schema", "lang=keyword", "year=integer"]]) == 0
    docs = _jsonl(root / "docs.jsonl", JSONL_DOCS)
    ingest = ["collection", "ingest", path, "--no-progress"]
    jsonl = ["--jsonl", docs, "--id-field", "doc", "--text-field", "body"]
    assert main([str(a) for a in [*ingest, *jsonl, "--batch", "3"]]) == 0
    beir = write_tiny_beir(root / "beir")
    write(
        beir / "qrels" / "dev.tsv",
        "query-id\tcorpus-id\tscore\n" + "q\td1\t1\nq\td4\t1\nq\td5\t2\n",
    )
    assert main([str(a) for a in [*ingest, "--beir", beir, "--split", "dev"]]) == 0
    return path


def test_ingest_stores_texts_and_the_other_fields_as_payloads(collection: Path) -> None:
    with Collection.open(collection) as col:
        assert col.count() == len(JSONL_DOCS) + len(DEV_DOCS)
        assert col.info()["config"]["payload_schema"] == {"lang": "keyword", "year": "integer"}
        j1, d4 = col.get(["j1", "d4"])
    assert (j1.text, j1.payload) == (JSONL_DOCS[1]["body"], {"lang": "fr", "year": 2001})
    title, text = TINY_DOCS["d4"]
    assert (d4.text, d4.payload) == (f"{title} {text}", {"title": title})


@pytest.mark.parametrize(
    "options",
    [[], ["-k", "2"], ["--filter", '{"must": [{"key": "lang", "match": {"value": "en"}}]}']],
)
def test_search_prints_what_the_library_returns(collection: Path, options, capsys) -> None:
    code = main(["collection", "search", str(collection), "the weather today", "--json", *options])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    flt = json.loads(options[1]) if "--filter" in options else None
    k = int(options[1]) if "-k" in options else 10
    with Collection.open(collection) as col:
        want = col.search("the weather today", k, filter=flt)
    assert printed == {"query": "the weather today", "hits": [h.to_dict() for h in want]}
    assert want and (flt is None or all(h.payload["lang"] == "en" for h in want))


def test_search_explains_in_a_table(collection: Path, capsys) -> None:
    assert main(["collection", "search", str(collection), "sunny weather", "--explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    with Collection.open(collection) as col:
        top = col.search("sunny weather", explain=True)[0]
    assert lines[0].split()[:3] == ["1", f"{top.score:.4f}", str(top.id)]
    assert top.explanation is not None
    first = top.explanation["sparse"]["tokens"][0]
    assert lines[1].split()[0] == first["token"]
    assert lines[1].endswith(f"= {first['contribution']:.3f}")


def test_info_prints_the_collection_info(collection: Path, capsys) -> None:
    assert main(["collection", "info", str(collection)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["documents"] == len(JSONL_DOCS) + len(DEV_DOCS)
    assert sorted(info["payload_fields"]) == ["lang", "title", "year"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["create", "{tmp}/new", "--model", "m", "--schema", "lang"], ["--schema", "FIELD=TYPE"]),
        (["create", "{col}", "--model", "m"], ["already holds a collection"]),
        (["info", "{tmp}/none"], ["not a collection"]),
        (["search", "{col}", "q", "--filter", "{bad"], ["--filter is not JSON"]),
        (["ingest", "{col}", "--jsonl", "{tmp}/no-id.jsonl"], ["no-id.jsonl:2", "'id'"]),
        (["ingest", "{col}", "--jsonl", "{tmp}/no-id.jsonl", "--split", "x"], ["--beir"]),
        (["ingest", "{col}", "--beir", "{tmp}"], ["corpus.jsonl", "cannot read"]),
        (["info", "http://127.0.0.1:9/other/x"], ["/collections/NAME"]),
        (["info", "http://127.0.0.1:9/collections/x"], ["ConnectError", "127.0.0.1:9"]),
    ],
)
def test_bad_input_is_one_error_line(collection: Path, tmp_path: Path, argv, words, capsys):
    _jsonl(tmp_path / "no-id.jsonl", [{"id": "a", "text": "b"}, {"text": "no id"}])
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{col}", str(collection)) for a in argv]
    code, err = run_cli(["collection", *argv], capsys)
    assert_one_line_error(code, err, "collection", *words)


# ---------------------------------------------------------------------------- over HTTP
@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A ``sparsearch serve`` subprocess with an API key: (URL, key file)."""
    server = ServerProcess(tmp_path / "root", api_key=API_KEY).start()
    key = write(tmp_path / "key", API_KEY + "\n")
    try:
        yield server.url, key
    finally:
        server.stop()
    assert server.unexpected_errors() == []


@pytest.mark.real_model
def test_a_url_goes_through_the_client(server, tmp_path: Path, capsys) -> None:
    base, key = server
    url = f"{base}/collections/notes"
    docs = _jsonl(tmp_path / "docs.jsonl", JSONL_DOCS)
    keyed = ["--api-key-file", str(key)]
    create = ["create", url, "--model", "rasyosef/splade-tiny", "--schema", "lang=keyword"]
    assert main(["collection", *create, *keyed]) == 0
    ingest = ["ingest", url, "--jsonl", str(docs), "--id-field", "doc", "--text-field", "body"]
    assert main(["collection", *ingest, "--no-progress", *keyed]) == 0
    capsys.readouterr()
    assert main(["collection", "search", url, "sunny weather", "-k", "3", "--json", *keyed]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert main(["collection", "info", url, *keyed]) == 0
    info = json.loads(capsys.readouterr().out)
    with Client(base, api_key=key.read_text().strip()) as client:
        col = client.collection("notes")
        assert printed["hits"] == [h.to_dict() for h in col.search("sunny weather", k=3)]
        assert info["documents"] == col.count() == len(JSONL_DOCS)
        assert col.get(["j2"])[0].payload == {"lang": "en", "year": 2002}
    code, err = run_cli(["collection", "info", url], capsys)  # no key
    assert_one_line_error(code, err, "collection", "401", "API key")
