"""A stand-in source defined entirely in the tests: an inventory service that answers how
many replicas each service runs, behind a bearer token. It owns its settings, facts, catalog
annotation, collector and doctor checks, as every source does; a fixture registers it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import requests

from collectors import CollectionResult, Collector, CollectorConfig, FactSource
from collectors.base import FactsRead, Finding, SourceDoctor, read_secret, utcnow
from core.errors import CollectorError
from core.schema import FactSchema, FactType, facts
from core.service import Service, ServiceLink
from tests.realparts.httpserver import LocalHTTPServer, Reply, Request


class InventoryConfig(CollectorConfig):
    url: str
    token_env: str | None = None
    token_file: Path | None = None


NAME = ServiceLink("inventory.example/name", example="payments")

INVENTORY = FactSource(
    name="inventory", title="Inventory", settings=InventoryConfig,
    schema=FactSchema("inventory", "replicas from the inventory service",
                      facts(("replicas", FactType.INT, "replicas running", "GET /services/{name}"))),
    link=NAME,
    collector="tests.collectors.inventory:InventoryCollector",
    doctor="tests.collectors.inventory:InventoryDoctor",
)


def _get(config: InventoryConfig, path: str) -> requests.Response:
    token = read_secret(env=config.token_env, file=config.token_file, what="inventory token")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(config.url.rstrip("/") + path, headers=headers, timeout=5)


class InventoryCollector(Collector):
    source = INVENTORY

    config: InventoryConfig

    def collect(self, services: Sequence[Service]) -> CollectionResult:
        result = CollectionResult(source=self.name, started_at=utcnow())
        for service in services:
            try:
                response = _get(self.config, f"/services/{NAME.value(service, service.name)}")
            except (CollectorError, requests.RequestException) as error:
                result.failures[service.name] = str(error)
                continue
            result.requests += 1
            if response.status_code == 200:
                result.facts[service.name] = {"replicas": response.json().get("replicas")}
            else:
                result.failures[service.name] = f"HTTP {response.status_code}"
        result.finished_at = utcnow()
        return result


class InventoryDoctor(SourceDoctor):
    def check(self, settings: InventoryConfig, facts_read: FactsRead) -> list[Finding]:
        try:
            response = _get(settings, "/health")
        except CollectorError as error:
            return [Finding("inventory", str(error), f"export {settings.token_env}=<token>")]
        except requests.RequestException as error:
            return [Finding("inventory", f"cannot reach {settings.url}: {type(error).__name__}",
                            "check collectors.inventory.url")]
        if response.status_code != 200:
            rules = ", ".join(sorted({r for rs in facts_read.values() for r in rs}))
            return [Finding("inventory", f"HTTP {response.status_code}, so {rules} cannot be "
                            "graded", "give the token read access to the inventory")]
        return [Finding("inventory", f"{settings.url} reachable; {len(facts_read)} fact(s) read")]

    def credentials(self) -> list[str]:
        return ["A token that may read /services."]


class InventoryServer:
    """The inventory itself: replicas per service name, for one accepted token."""

    def __init__(self, token: str, replicas: dict[str, int]) -> None:
        self.token, self.replicas = token, replicas
        self.server = LocalHTTPServer(self._answer)

    @property
    def url(self) -> str:
        return self.server.url

    def _answer(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, b'{"message": "no"}', {"Content-Type": "application/json"})
        if request.path == "/health":
            return Reply(200, b"{}", {"Content-Type": "application/json"})
        name = request.path.removeprefix("/services/")
        if name not in self.replicas:
            return Reply(404, b"{}", {"Content-Type": "application/json"})
        return Reply(200, json.dumps({"replicas": self.replicas[name]}).encode(),
                     {"Content-Type": "application/json"})
