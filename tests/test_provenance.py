"""benchmarks/provenance.py: every benchmark result records where and how it was produced."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def provenance_module():
    spec = importlib.util.spec_from_file_location(
        "benchmarks_provenance", REPO / "benchmarks" / "provenance.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_record_names_the_commit_machine_versions_and_command(provenance_module):
    record = provenance_module.provenance(["--docs", "10", "--out", "a b"])
    assert sorted(record) == sorted(provenance_module.KEYS)
    assert re.fullmatch(r"[0-9a-f]{40}", record["commit"])
    assert isinstance(record["dirty"], bool)
    assert record["cpu_model"].strip()
    assert record["logical_cpus"] == os.cpu_count() >= record["usable_cpus"] >= 1
    versions = record["versions"]
    assert versions["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    import numpy

    assert versions["numpy"] == numpy.__version__
    assert {"scipy", "numba"} <= set(versions)
    assert "no-such-package" not in versions
    assert record["command"].endswith("--docs 10 --out 'a b'")  # shell-quoted, ready to rerun
    assert "python" in record["command"].split()[0]
    stamp = datetime.fromisoformat(record["timestamp_utc"])
    assert stamp.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - stamp) < timedelta(minutes=5)
    json.dumps(record)  # goes into the results JSON as is


def test_thread_counts_only_for_libraries_already_imported(provenance_module, monkeypatch):
    import numba
    import numpy  # noqa: F401

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    threads = provenance_module.threads()
    assert "torch" not in threads and "torch" not in sys.modules  # never imports torch itself
    assert threads["numba"] == numba.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert provenance_module.threads()["env"]["OMP_NUM_THREADS"] == "1"


def test_argv_defaults_to_this_process_arguments(provenance_module, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(REPO / "benchmarks" / "search.py"), "--quick"])
    monkeypatch.chdir(REPO)
    command = provenance_module.command()
    assert command.endswith(" benchmarks/search.py --quick")
