from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from engine.api.app import ThreadDispatcher, create_app
from engine.jobs import run_evaluation
from engine.settings import Settings
from tests.conftest import TOKEN

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def evaluated(settings: Settings) -> Settings:
    run_evaluation(settings, trigger="cli", now=T0)
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=4))
    return settings


@pytest.fixture
def client(evaluated: Settings) -> Iterator[TestClient]:
    dispatcher = ThreadDispatcher(evaluated)
    with TestClient(create_app(evaluated, dispatcher)) as test_client:
        yield test_client
    dispatcher.shutdown()
