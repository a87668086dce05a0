"""Provenance of a benchmark result: the commit, the machine, the threads, the versions, the command.

Every JSON under benchmarks/results/ carries it under a ``"provenance"`` key:

    >>> record = provenance(["--quick"])
    >>> sorted(record) == sorted(KEYS) and record["command"].endswith("--quick")
    True

``python benchmarks/provenance.py`` prints the record of the current checkout and machine.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: distributions whose versions are recorded when installed (the engines' peers included)
PACKAGES = (
    "sparsearch",
    "numpy",
    "scipy",
    "numba",
    "torch",
    "transformers",
    "tokenizers",
    "sentence-transformers",
    "huggingface_hub",
    "safetensors",
    "datasets",
    "accelerate",
    "bm25s",
    "faiss-cpu",
    "pytrec-eval-terrier",
    "qdrant-edge-py",
    "pyterrier-pisa",
    "python-terrier",
    "bmp",
    "pyseismic-lsr",
    "threadpoolctl",
)
#: environment variables that set thread counts, recorded when set
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "RAYON_NUM_THREADS",
    "TOKENIZERS_PARALLELISM",
)
KEYS = (
    "commit",
    "dirty",
    "cpu_model",
    "logical_cpus",
    "usable_cpus",
    "threads",
    "versions",
    "command",
    "cwd",
    "platform",
    "timestamp_utc",
)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def cpu_model() -> str:
    """The CPU's "model name" from /proc/cpuinfo (``platform.processor()`` where it is missing)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def threads() -> dict[str, Any]:
    """Thread counts of the libraries this process has already imported (none is imported here)."""
    out: dict[str, Any] = {}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        out["torch"] = torch.get_num_threads()
        out["torch_interop"] = torch.get_num_interop_threads()
    if "numba" in sys.modules:
        out["numba"] = sys.modules["numba"].get_num_threads()
    if "numpy" in sys.modules:
        try:
            from threadpoolctl import threadpool_info

            out["numpy_blas"] = [
                {k: pool.get(k) for k in ("internal_api", "num_threads", "version")}
                for pool in threadpool_info()
            ]
        except ImportError:
            pass
    env = {name: os.environ[name] for name in THREAD_ENV if name in os.environ}
    if env:
        out["env"] = env
    return out


def versions() -> dict[str, str]:
    """Python and the installed versions of PACKAGES (missing ones left out)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def _relative(path: str | Path, to: Path | None = None) -> str:
    """``path`` relative to ``to`` (default: the working directory) when it lies inside it."""
    try:
        return str(Path(path).absolute().relative_to(to or Path.cwd()))
    except ValueError:
        return str(path)


def command(argv: list[str] | None = None) -> str:
    """The command line that reran this process: interpreter, script and ``argv``
    (default ``sys.argv[1:]``), shell-quoted, paths relative to the working directory."""
    args = sys.argv[1:] if argv is None else list(argv)
    script = _relative(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return shlex.join([_relative(sys.executable), *([script] if script else []), *args])


def provenance(argv: list[str] | None = None) -> dict[str, Any]:
    """Where, when and how a result was produced; ``argv`` as in :func:`command`."""
    commit = _git("rev-parse", "HEAD")
    # uncommitted changes to the code; results files a benchmark is writing do not count
    status = _git("status", "--porcelain", "--", ".", ":(exclude)benchmarks/results")
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "commit": commit.strip() if commit else None,
        "dirty": bool(status.strip()) if status is not None else None,
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "threads": threads(),
        "versions": versions(),
        "command": command(argv),
        "cwd": _relative(Path.cwd(), REPO),  # relative to the repository root when inside it
        "platform": platform.platform(),
        "timestamp_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(provenance(), indent=1))
