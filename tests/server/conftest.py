"""Real ``sparsearch serve`` subprocesses for the server tests.

A :class:`ServerProcess` runs ``python -m sparsearch.cli serve ROOT --port 0 --port-file F`` on
127.0.0.1, waits until ``/healthz`` answers, and is stopped (or ``kill -9``-ed) by the test.
Its stdout and stderr go to ``server.log`` in its folder, so a test can also check that the
server logged no unexpected error. Fixtures:

- ``start_server``: a factory, ``start_server(root, *flags, api_key=None)``; every server it
  started is stopped after the test;
- ``module_server(tmp_path_factory, *flags, api_key=None)``: the body of a module-scoped
  fixture (each test module starts the server it needs, with its own limits);
- ``keyed_server``: a module's server that wants :data:`API_KEY` on every call but
  ``/healthz``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HF_CACHE

MODEL = "rasyosef/splade-tiny"
DENSE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
API_KEY = "server-test-key-0123456789"
START_TIMEOUT = 120.0


class ServerProcess:
    """One ``sparsearch serve`` subprocess over ``root`` (see the module docstring)."""

    def __init__(self, root: Path, *flags: str, api_key: str | None = None) -> None:
        self.root = Path(root)
        self.flags = [str(flag) for flag in flags]
        self.api_key = api_key
        self.folder = self.root.parent / f"{self.root.name}-server"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = self.folder / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.starts = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ServerProcess:
        """Start the server and wait until ``/healthz`` answers (a fresh port each time)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        port_file = self.folder / f"port-{self.starts}"
        argv = [sys.executable, "-m", "sparsearch.cli", "serve", str(self.root)]
        argv += ["--port", "0", "--port-file", str(port_file), *self.flags]
        if self.api_key is not None:
            key_file = self.folder / "api-key"
            key_file.write_text(self.api_key + "\n")
            argv += ["--api-key-file", str(key_file)]
        env = dict(os.environ)
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        if HF_CACHE.is_dir():
            env.setdefault("HF_HUB_OFFLINE", "1")
            env.setdefault("HF_HUB_CACHE", str(HF_CACHE))
        with open(self.log, "ab") as out:
            out.write(f"---- start {self.starts}: {' '.join(argv)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.port = None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"the server exited ({self.proc.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"the server did not start in {START_TIMEOUT} s:\n{self.log_tail()}")
            if self.port is None and port_file.exists():  # written atomically (tmp + rename)
                self.port = int(port_file.read_text())
            if self.port is not None and self.healthy():
                return self
            time.sleep(0.05)

    def healthy(self, timeout: float = 5.0) -> bool:
        """Whether ``/healthz`` answers 200 now (urllib: no client set-up cost per call)."""
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=timeout) as answer:
                return answer.status == 200 and json.load(answer) == {"status": "ok"}
        except (OSError, ValueError):
            return False

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # ------------------------------------------------------------------ calls
    @property
    def url(self) -> str:
        assert self.port is not None, "not started"
        return f"http://127.0.0.1:{self.port}"

    def client(self, key: str | None | bool = True, timeout: float = 120.0) -> httpx.Client:
        """An HTTP client; ``key=True`` sends the server's API key, a string sends that one."""
        headers = {}
        if key is True:
            key = self.api_key
        if isinstance(key, str):
            headers["api-key"] = key
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, n: int = 4000) -> str:
        return self.log_text()[-n:]

    def unexpected_errors(self) -> list[str]:
        """The log lines of errors the server did not expect (500s, crashes in the app)."""
        markers = ("unexpected error", "Exception in ASGI application", "server error on")
        return [line for line in self.log_text().splitlines() if any(m in line for m in markers)]


@pytest.fixture()
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``start_server(root=None, *flags, api_key=None)``: a started server, stopped afterwards."""
    started: list[ServerProcess] = []

    def start(root: Path | None = None, *flags: Any, api_key: str | None = None) -> ServerProcess:
        server = ServerProcess(root or tmp_path / f"root{len(started)}", *flags, api_key=api_key)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def module_server(
    tmp_path_factory: pytest.TempPathFactory, *flags: str, api_key: str | None = None
) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("server") / "root", *flags, api_key=api_key)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that wants :data:`API_KEY`, one per module."""
    yield from module_server(tmp_path_factory, api_key=API_KEY)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``{"type", "message", "field"?}`` of an error answer, checked for shape."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["type"], str) and isinstance(error["message"], str), error
    assert set(error) <= {"type", "message", "field"}, error
    assert "Traceback" not in response.text and 'File "' not in response.text, response.text
    return error


def scifact_docs(data: Path, n: int, chars: int = 200, skip: int = 0) -> list[tuple[str, str]]:
    """``n`` SciFact test documents as (id, text), texts cut to ``chars`` characters (the server
    tests run on 2 shared cores: short texts keep the real model fast)."""
    from sparsearch.eval import load_beir

    texts = load_beir(data / "scifact", "test").doc_texts()
    return [(doc_id, texts[doc_id][:chars]) for doc_id in list(texts)[skip : skip + n]]
