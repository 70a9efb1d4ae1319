"""Shared fixtures: tiny deterministic fakes, the toy domain, and the shared real-data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The real-data folder: $GUIDE_GEN_DATA, else ../shared/data beside the repository."""
    return Path(os.environ.get("GUIDE_GEN_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data folder {path} is absent (set GUIDE_GEN_DATA to use another)")
    return path


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
