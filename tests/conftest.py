"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_BACKSTAGE = ROOT / "tests" / "fixtures" / "backstage-examples"


@pytest.fixture
def root() -> Path:
    return ROOT
