"""Shared fixtures: where the real data and models live (read from ../shared, never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
HF_CACHE = SHARED / "hf-cache"

if HF_CACHE.is_dir():  # tests load real models by hub id from the offline cache
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_CACHE", str(HF_CACHE))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real BEIR datasets; tests that need it fail loudly if it is absent."""
    assert DATA.is_dir(), f"real datasets expected at {DATA}"
    return DATA
