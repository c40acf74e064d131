"""A source owns everything about itself: one registered in the tests (no file of engine/
names it) is checked by ``levelset doctor`` and collected by ``levelset collect``; the
built-in sources' checks send what their collectors send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from collectors import FactSource, register, registry
from collectors.aws.settings import AwsConfig
from collectors.github.settings import GitHubConfig
from collectors.prometheus.settings import PrometheusConfig
from engine.cli import app
from engine.settings import get_settings
from tests.adoption.standin import SetupStandIn, acme
from tests.collectors.inventory import INVENTORY, InventoryServer
from tests.realparts.aws import fake_credentials, running_moto
from tests.realparts.httpserver import LocalHTTPServer, Reply, Request

CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  annotations: {inventory.example/name: shop}
spec: {type: service, lifecycle: production, owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: payments}
spec: {type: service, lifecycle: production, owner: team-a}
"""

SCORECARD = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata: {name: capacity}
spec:
  levels: [Bronze]
  rules:
    - {name: redundant, level: Bronze, expression: 'inventory.replicas >= 2'}
"""


@pytest.fixture
def inventory_source() -> Iterator[FactSource]:
    register(INVENTORY)
    yield INVENTORY
    registry.unregister(INVENTORY.name)


@pytest.fixture
def inventory() -> Iterator[InventoryServer]:
    server = InventoryServer("inv-token", {"shop": 3, "payments": 1})
    with server.server.running():
        yield server


def project(directory: Path, collectors: dict[str, Any]) -> Path:
    (directory / "catalog-info.yaml").write_text(CATALOG)
    (directory / "scorecards").mkdir(exist_ok=True)
    (directory / "scorecards" / "capacity.yaml").write_text(SCORECARD)
    path = directory / "levelset.yaml"
    path.write_text(yaml.safe_dump({
        "environment": "development", "database_url": f"sqlite:///{directory / 'l.db'}",
        "catalog": "catalog-info.yaml", "scorecards": "scorecards", "collectors": collectors}))
    get_settings.cache_clear()
    return path


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def test_a_source_registered_outside_engine_is_checked_and_collected(
        tmp_path: Path, inventory_source: FactSource, inventory: InventoryServer,
        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("INVENTORY_TOKEN", "inv-token")
    config = project(tmp_path, {"inventory": {"url": inventory.url,
                                              "token_env": "INVENTORY_TOKEN"}})

    checked = cli("doctor", "--config", str(config))
    assert checked.exit_code == 0, checked.output
    assert f"ok: inventory: {inventory.url} reachable; 1 fact(s) read" in checked.stdout

    collected = cli("collect", "--config", str(config))
    assert collected.exit_code == 0, collected.output
    assert inventory.server.count(200) == 3  # the health check, then one read per service
    shown = json.loads(cli("facts", "checkout", "--config", str(config), "--format",
                           "json").stdout)
    assert shown["inventory"]["replicas"] == 3  # read under its annotation's name, "shop"

    monkeypatch.setenv("INVENTORY_TOKEN", "stale")
    refused = cli("doctor", "--config", str(config))
    assert refused.exit_code == 1
    assert ("error: inventory: HTTP 401, so capacity/redundant cannot be graded; fix: give the "
            "token read access to the inventory") in refused.stderr


def test_a_source_that_declares_no_checks_does_not_stop_doctor(
        tmp_path: Path, fixed_source: FactSource):
    config = project(tmp_path, {"fixed": {"value": 2}})
    (tmp_path / "scorecards" / "capacity.yaml").unlink()

    checked = cli("doctor", "--config", str(config))

    assert checked.exit_code == 0, checked.output
    assert "ok: fixed: settings read; the source declares no checks" in checked.stdout


def _prometheus_behind_a_token(request: Request) -> Reply:
    if request.headers.get("authorization") != "Bearer prom-token":
        return Reply(401, b"Unauthorized")
    return Reply(200, b'{"status": "success", "data": {"resultType": "vector", "result": []}}',
                 {"Content-Type": "application/json"})


def test_the_prometheus_check_sends_the_bearer_token_the_collector_sends(
        monkeypatch: pytest.MonkeyPatch):
    server = LocalHTTPServer(_prometheus_behind_a_token)
    checks = registry.get("prometheus").source_doctor()
    assert checks is not None
    monkeypatch.setenv("PROM_TOKEN", "prom-token")
    with server.running():
        with_token = checks.check(PrometheusConfig(url=server.url, token_env="PROM_TOKEN"), {})
        without = checks.check(PrometheusConfig(url=server.url, retries=0), {})
    assert [f.line() for f in with_token] == [f"ok: prometheus: {server.url} reachable"]
    assert [f.line() for f in without] == [
        f"error: prometheus: {server.url}/api/v1/query: HTTP 401 with no token; fix: set "
        "collectors.prometheus.token_env (or token_file) to a token the server accepts"]
    monkeypatch.delenv("PROM_TOKEN")
    [unset] = checks.check(PrometheusConfig(url=server.url, token_env="PROM_TOKEN"), {})
    assert unset.line() == ("error: prometheus: Prometheus token: environment variable "
                            "PROM_TOKEN is not set; fix: export PROM_TOKEN=<token>")


def test_the_aws_check_reads_as_the_assumed_role_in_the_configured_region():
    checks = registry.get("aws").source_doctor()
    assert checks is not None
    role = "arn:aws:iam::123456789012:role/levelset-read"
    with fake_credentials(), running_moto() as endpoint:
        plain = checks.check(AwsConfig(regions=["eu-west-1"], endpoint_url=endpoint), {})
        assumed = checks.check(AwsConfig(regions=["eu-west-1"], endpoint_url=endpoint,
                                         assume_role_arn=role, role_session_name="doctor"), {})
    [plain_line] = [f.line() for f in plain]
    assert plain_line.startswith("ok: aws: credentials of ") and "assumed-role" not in plain_line
    assert plain_line.endswith(" accepted in eu-west-1")
    assert [f.line() for f in assumed] == [
        "ok: aws: credentials of arn:aws:sts::123456789012:assumed-role/levelset-read/doctor "
        "accepted in eu-west-1"]


def test_the_aws_check_names_a_role_it_cannot_assume():
    checks = registry.get("aws").source_doctor()
    assert checks is not None
    with fake_credentials(), running_moto() as endpoint:
        [finding] = checks.check(AwsConfig(regions=["eu-west-1"], endpoint_url=endpoint,
                                           assume_role_arn="not-an-arn", max_attempts=1), {})
    assert finding.fix is not None and "sts:AssumeRole" in finding.fix
    assert finding.what.startswith("cannot assume role not-an-arn: ")


@pytest.fixture
def acme_github(monkeypatch: pytest.MonkeyPatch) -> Iterator[SetupStandIn]:
    stand_in = acme()
    with stand_in.server.running():
        yield stand_in


def github_checks(github: SetupStandIn, token: str, monkeypatch: pytest.MonkeyPatch
                  ) -> list[str]:
    monkeypatch.setenv("DOCTOR_GITHUB_TOKEN", token)
    checks = registry.get("github").source_doctor()
    assert checks is not None
    settings = GitHubConfig(base_url=github.base_url, org="acme", retries=1,
                            token_env="DOCTOR_GITHUB_TOKEN")
    return [f.line() for f in checks.check(settings, {"alerts.dependabot.critical": ["s/r"]})]


def test_the_github_check_retries_like_the_collector(acme_github: SetupStandIn,
                                                     monkeypatch: pytest.MonkeyPatch):
    acme_github.fault("/orgs/acme/repos", Reply(503, b'{"message": "Service unavailable"}'))

    lines = github_checks(acme_github, "ghp_classic_full", monkeypatch)

    assert lines == [f"ok: github: {acme_github.base_url} reachable",
                     "ok: github: token scopes read:org, repo cover the facts the rules read"]
    assert acme_github.requests(path_prefix="/orgs/acme/repos") == 2  # the 503, then its retry


def test_the_github_check_trusts_no_repository_name_from_the_answer(
        acme_github: SetupStandIn, monkeypatch: pytest.MonkeyPatch):
    listing = json.dumps([{"full_name": "../../admin", "default_branch": "main"}]).encode()
    acme_github.fault("/orgs/acme/repos", None, Reply(200, listing,
                                                      {"Content-Type": "application/json"}))

    lines = github_checks(acme_github, "github_pat_fine", monkeypatch)

    assert lines[-1] == ("error: github: organisation acme: GitHub listed a repository without "
                         "a valid full_name or default_branch ('../../admin'); fix: check "
                         "collectors.github.base_url: it may not be a GitHub API")
    assert acme_github.requests(path_prefix="/repos/") == 0
