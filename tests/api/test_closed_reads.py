"""With reads closed, an anonymous caller learns only up or down; the docs page needs no CDN."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.settings import Settings, load_settings
from tests.api.conftest import AUTH
from tests.conftest import READ_TOKEN, write_config

READ = {"Authorization": f"Bearer {READ_TOKEN}"}


def closed_app(sample: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("LEVELSET_READ_TOKEN", READ_TOKEN)
    config = write_config(sample, database_url, api={"read_token_required": True})
    return TestClient(create_app(load_settings(config)))


def test_anonymous_health_is_only_up_or_down_when_reads_are_closed(
    evaluated: Settings, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with closed_app(sample, evaluated.database_url, monkeypatch) as client:
        anonymous = client.get("/healthz")
        assert anonymous.status_code == 200 and anonymous.json() == {"status": "ok"}
        wrong = client.get("/healthz", headers={"Authorization": "Bearer wrong"})
        assert wrong.json() == {"status": "ok"}
        for token in (READ, AUTH):
            detailed = client.get("/healthz", headers=token).json()
            assert detailed["database"] == "ok" and detailed["last_run"]["status"] == "complete"


def test_anonymous_health_when_down_is_503_and_nothing_else(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable = f"sqlite:///{tmp_path / 'missing' / 'levelset.db'}"
    with closed_app(sample, unreachable, monkeypatch) as client:
        anonymous = client.get("/healthz")
        assert anonymous.status_code == 503 and anonymous.json() == {"status": "unavailable"}
        detailed = client.get("/healthz", headers=READ)
        assert detailed.status_code == 503
        assert detailed.json() == {"status": "unavailable", "database": "unreachable",
                                   "last_run": None}


def test_open_reads_show_health_details_to_anyone(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["database"] == "ok" and health["last_run"]["status"] == "complete"


def test_docs_page_loads_nothing_from_another_host(
    evaluated: Settings, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with closed_app(sample, evaluated.database_url, monkeypatch) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "http" not in policy
        references = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)""", page.text)
        assert len(references) >= 4, references
        for reference in references:
            assert reference.startswith("/"), reference
            assert client.get(reference).status_code == 200, reference  # no token needed
        assert '"validatorUrl": null' in page.text  # no badge fetched from the online validator
        assert client.get("/redoc").status_code == 404  # the one docs page is /docs
