"""Fixtures shared by every test package: paths, a database of each kind, sample inputs."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from collectors import FactSource, register, registry
from engine.settings import Settings, get_settings, load_settings
from engine.storage.database import engine_for, migrate
from tests.fakes import FIXED

ROOT = Path(__file__).resolve().parent.parent
SHARED_BACKSTAGE = ROOT / "tests" / "fixtures" / "backstage-examples"
SAMPLE = Path(__file__).parent / "fixtures" / "sample"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TOKEN = "test-write-token-0123456789"
READ_TOKEN = "test-read-token-0123456789"


def _postgres_available() -> bool:
    try:
        with create_engine(POSTGRES_URL).connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'levelset.db'}"
        migrate(engine_for(url))
        yield url
        engine_for(url).dispose()
        return
    if not _postgres_available():
        # Never skipped: every storage test must run on both databases (scripts/services starts it).
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432: run scripts/services")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    try:
        migrate(engine_for(url))
        yield url
    finally:
        engine_for(url).dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A private copy of the sample catalog, scorecards and facts."""
    target = tmp_path / "sample"
    shutil.copytree(SAMPLE, target)
    return target


def write_config(directory: Path, database_url: str, **extra: object) -> Path:
    import yaml

    document = {
        "environment": "development", "database_url": database_url,
        "catalog": "catalog", "scorecards": "scorecards", "facts": "facts.json", **extra,
    }
    path = directory / "levelset.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture
def settings(
    database_url: str, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    for key in ("LEVELSET_API_TOKEN", "LEVELSET_READ_TOKEN", "LEVELSET_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LEVELSET_API_TOKEN", TOKEN)
    config = write_config(sample, database_url)
    monkeypatch.setenv("LEVELSET_CONFIG", str(config))
    get_settings.cache_clear()
    yield load_settings(config)
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _isolated_settings() -> Iterator[None]:
    """Commands given --config point later get_settings() calls at it; undo that per test."""
    import os

    saved = os.environ.get("LEVELSET_CONFIG")
    get_settings.cache_clear()
    yield
    if saved is None:
        os.environ.pop("LEVELSET_CONFIG", None)
    else:
        os.environ["LEVELSET_CONFIG"] = saved
    get_settings.cache_clear()


@pytest.fixture
def fixed_source() -> Iterator[FactSource]:
    """The fake collector "fixed" (tests/fakes.py), registered for one test only."""
    register(FIXED)
    yield FIXED
    registry.unregister(FIXED.name)
