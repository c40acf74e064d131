"""A Component outside the default namespace is reachable at every service path as ns:name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from engine.api.app import ThreadDispatcher, create_app
from engine.api.client import remote_verdict
from engine.api.paths import service_segment, stored_service_name
from engine.jobs import run_evaluation
from engine.settings import Settings
from tests.api.conftest import AUTH, T0

TEAM_X = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: svc
  namespace: team-x
spec:
  type: service
  lifecycle: production
  owner: team-x
"""


@pytest.fixture
def client(settings: Settings, sample: Path) -> Iterator[TestClient]:
    (sample / "catalog" / "team-x.yaml").write_text(TEAM_X)
    run_evaluation(settings, trigger="cli", now=T0)
    dispatcher = ThreadDispatcher(settings)
    with TestClient(create_app(settings, dispatcher)) as test_client:
        yield test_client
    dispatcher.shutdown()


def test_the_path_segment_reads_one_way() -> None:
    assert service_segment("team-x/svc") == "team-x:svc"
    assert service_segment("svc") == "svc"
    for text in ("team-x:svc", "team-x/svc"):
        assert stored_service_name(text) == "team-x/svc"
    assert stored_service_name("default:svc") == "svc"
    assert stored_service_name("svc") == "svc"
    assert stored_service_name("Team_X:svc") == "Team_X:svc"  # not a namespace: left as is


def test_every_service_path_takes_namespace_colon_name(client: TestClient) -> None:
    base = "/api/v1/services/team-x:svc"
    detail = client.get(base)
    assert detail.status_code == 200, detail.text
    assert detail.json()["name"] == "team-x/svc"
    card = client.get(f"{base}/scorecards/readiness")
    assert card.status_code == 200 and card.json()["service"] == "team-x/svc"
    assert client.get(f"{base}/scorecards/readiness/history").status_code == 200
    as_of = client.get(f"{base}/scorecards/readiness/as-of", params={"at": T0.isoformat()})
    assert as_of.status_code == 200, as_of.text
    pushed = client.post(f"{base}/facts", json={"facts": {"on_call": True}}, headers=AUTH)
    assert pushed.status_code == 201 and pushed.json()["service"] == "team-x/svc"
    shown = client.get(f"{base}/facts").json()
    assert [s["facts"] for s in shown if s["source"] == "custom"] == [{"on_call": True}]
    assert client.delete(f"{base}/facts/on_call", headers=AUTH).json()["facts"] == {}
    svg = client.get("/api/v1/badges/team-x:svc/readiness/badge.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert client.get("/api/v1/badges/team-x:svc/readiness/shields.json").status_code == 200
    # The default namespace written out is the plain name; another namespace is another service.
    assert client.get("/api/v1/services/default:payments").json()["name"] == "payments"
    assert client.get("/api/v1/services/team-y:svc").status_code == 404
    assert client.get("/api/v1/services/svc").status_code == 404
    assert client.get("/api/v1/services/team-x%2Fsvc").status_code == 404  # a separator


@pytest.mark.parametrize("written", ["team-x/svc", "team-x:svc"])
def test_a_run_of_one_namespaced_service_takes_either_form(
    client: TestClient, written: str
) -> None:
    accepted = client.post("/api/v1/runs", json={"service": written}, headers=AUTH)
    assert accepted.status_code == 202, accepted.text
    run = client.get(accepted.json()["url"]).json()
    assert run["service"] == "team-x/svc"


def test_gate_api_asks_for_namespace_colon_name() -> None:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.raw_path.decode())
        return httpx.Response(404, json={"detail": 'unknown service "team-x/svc"'})

    for service in ("team-x/svc", "team-x:svc"):
        with pytest.raises(Exception, match="unknown service"):
            remote_verdict("http://levelset", service=service, scorecard="readiness",
                           min_level="Gold", transport=httpx.MockTransport(answer))
    assert asked == ["/api/v1/services/team-x:svc/scorecards/readiness/gate"] * 2
