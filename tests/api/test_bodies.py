"""Request bodies: bounded before they are read, strict JSON, and every error answered as JSON."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.api.bodies import strict_json
from engine.settings import Settings, load_settings
from tests.api.conftest import AUTH
from tests.conftest import write_config

FACTS = "/api/v1/services/payments/facts"
JSON = {**AUTH, "content-type": "application/json"}


def custom_facts(client: TestClient) -> dict[str, object]:
    shown = client.get(FACTS).json()
    return next((s["facts"] for s in shown if s["source"] == "custom"), {})


@pytest.mark.parametrize(("body", "loc", "message"), [
    ('{"facts": {"a": "\\ud800"}}', ["body", "facts", "a"], "unpaired surrogate \\ud800"),
    ('{"facts": {"x\\udfff": 1}}', ["body", "facts", "x\ufffd"], "surrogate \\udfff in the key"),
    ('{"facts": {"a": ["ok", "\\udc00\\ud800"]}}', ["body", "facts", "a", 1], "\\udc00"),
    ('{"facts": {"a": NaN}}', ["body", "facts", "a"], "NaN is not a finite number"),
    ('{"facts": {"a": Infinity}}', ["body", "facts", "a"], "Infinity is not a finite number"),
    ('{"facts": {"a": -Infinity}}', ["body", "facts", "a"], "-Infinity is not a finite"),
    ('{"facts": {"a": 1e400}}', ["body", "facts", "a"], "Infinity is not a finite number"),
    ('{"facts": ' + "[" * 300 + "]" * 300 + "}", ["body", "facts", *[0] * 31],
     "nested deeper than 32 levels"),
    ('{"facts": ' + "[" * 950 + "]" * 950 + "}", ["body", "facts", *[0] * 31],
     "nested deeper than 32 levels"),
    ('{"facts": ' + "[" * 100_000 + "]" * 100_000 + "}", ["body"], "nested deeper than 32"),
    ('{"facts": {"a": 1' + "0" * 5000 + "}}", ["body"], "more than 4300 digits"),
    ('{"facts": {"a": 1', ["body", 17], "JSON decode error"),
])
def test_bad_json_is_refused_with_422_naming_it_and_nothing_is_stored(
    client: TestClient, body: str, loc: list[object], message: str
) -> None:
    before = custom_facts(client)
    response = client.post(FACTS, content=body.encode("utf-8", "surrogatepass"), headers=JSON)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    [error] = response.json()["detail"][:1]
    assert error["loc"] == loc and message in error["msg"], error
    assert custom_facts(client) == before
    assert client.get(FACTS).status_code == 200


def test_a_body_that_is_not_utf8_is_refused(client: TestClient) -> None:
    response = client.post(FACTS, content=b'{"facts": {"a": "\xed\xa0\x80"}}', headers=JSON)
    assert response.status_code == 422
    assert "not UTF-8" in response.json()["detail"][0]["msg"]


def test_every_flaw_is_listed_with_its_path() -> None:
    with pytest.raises(Exception) as raised:
        strict_json(b'{"a": NaN, "b": {"c": "\\ud83d"}, "d": [1, Infinity]}')
    locs = [(e["loc"], e["msg"]) for e in raised.value.detail]  # type: ignore[attr-defined]
    assert locs == [(["body", "a"], "NaN is not a finite number"),
                    (["body", "b", "c"], "unpaired surrogate \\ud83d is not Unicode text"),
                    (["body", "d", 1], "Infinity is not a finite number")]


def test_clean_json_at_the_depth_limit_and_paired_surrogates_are_stored(client: TestClient) -> None:
    nested = "[" * 30 + "]" * 30  # with the body's object and "facts": 32 levels
    body = '{"facts": {"deep": ' + nested + ', "emoji": "\\ud83d\\ude00", "n": 1e308}}'
    response = client.post(FACTS, content=body, headers=JSON)
    assert response.status_code == 201, response.text
    assert response.json()["facts"]["emoji"] == "\U0001f600"
    assert response.json()["invalid"] == {}


def test_run_trigger_body_is_parsed_strictly_too(client: TestClient) -> None:
    response = client.post("/api/v1/runs", content='{"service": "\\ud800"}', headers=JSON)
    assert response.status_code == 422 and "surrogate" in response.text


@pytest.fixture
def small_limit(evaluated: Settings, sample: Path) -> Iterator[TestClient]:
    config = write_config(sample, evaluated.database_url, api={"max_body_bytes": 2048})
    with TestClient(create_app(load_settings(config))) as client:
        yield client


def test_a_body_over_the_limit_is_refused_with_413_json(small_limit: TestClient) -> None:
    big = '{"facts": {"a": "' + "x" * 3000 + '"}}'
    response = small_limit.post(FACTS, content=big, headers=JSON)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "detail": "the request body is larger than 2048 bytes (api.max_body_bytes)"}
    # Counted as it streams when no Content-Length is given (chunked), and on any route.
    chunks = iter([b'{"facts": {"a": "', b"x" * 1500, b"x" * 1500, b'"}}'])
    response = small_limit.post(FACTS, content=chunks, headers=JSON)
    assert response.status_code == 413 and "2048 bytes" in response.json()["detail"]
    assert small_limit.request("GET", "/healthz", content=b"x" * 3000).status_code == 413
    assert small_limit.post(FACTS, content='{"facts": {"a": 1}}', headers=JSON).status_code == 201


def test_max_body_bytes_is_checked_on_load(sample: Path) -> None:
    from core.errors import SettingsError

    config = write_config(sample, "sqlite:///x.db", api={"max_body_bytes": 10})
    with pytest.raises(SettingsError, match=r"api\.max_body_bytes"):
        load_settings(config)


def test_every_error_is_json(evaluated: Settings) -> None:
    app = create_app(evaluated)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        for method, url, status in [("GET", "/nope", 404), ("PUT", "/healthz", 405),
                                    ("GET", "/api/v1/services/a/b/c", 404), ("GET", "/redoc", 404),
                                    ("GET", "/api/v1/services", 200), ("GET", "/boom", 500)]:
            response = client.request(method, url)
            assert response.status_code == status, (url, response.text)
            assert response.headers["content-type"] == "application/json", url
            assert "detail" in response.json() or status == 200
        assert "secret" not in client.get("/boom").text
