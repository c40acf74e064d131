"""`levelset collect` then `levelset evaluate` from stored facts, against the real servers:
Prometheus with backfilled history, moto's AWS server and the GitHub stand-in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from engine.cli import app
from engine.settings import get_settings
from tests.realparts.github import GitHubStandIn
from tests.realparts.httpserver import Reply
from tests.realparts.prometheus import PrometheusServer

CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  annotations:
    github.com/project-slug: acme/checkout
    levelset.dev/aws-service-tag: orders
spec: {type: service, lifecycle: production, owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments
spec: {type: service, lifecycle: production, owner: team-a}
"""

SCORECARD = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata: {name: e2e}
spec:
  levels: [Bronze, Silver, Gold]
  rules:
    - {name: readme, level: Bronze, expression: github.has_readme}
    - {name: reviews, level: Bronze, expression: 'github.branch_protection.required_reviews >= 1'}
    - {name: available, level: Silver, expression: 'prometheus.availability_30d >= 0.99'}
    - {name: alerts, level: Silver, expression: 'prometheus.alert_rules > 0'}
    - {name: backups, level: Gold, expression: 'aws.rds.instances.all(db, db.backup_retention_days >= 7)'}
    - {name: encrypted, level: Gold, expression: 'aws.s3.all_encrypted'}
"""


@pytest.fixture
def config(tmp_path: Path, database_url: str, github: GitHubStandIn, prometheus: PrometheusServer,
           aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "catalog-info.yaml").write_text(CATALOG)
    (tmp_path / "scorecards").mkdir()
    (tmp_path / "scorecards" / "e2e.yaml").write_text(SCORECARD)
    monkeypatch.setenv("E2E_GITHUB_TOKEN", "ghp_e2e_token_value")
    document = {
        "environment": "development",
        "database_url": database_url,
        "catalog": "catalog-info.yaml",
        "scorecards": "scorecards",
        "collectors": {
            "github": {"base_url": github.base_url, "org": "acme", "token_env": "E2E_GITHUB_TOKEN",
                       "max_wait_seconds": 0, "retries": 0, "timeout_seconds": 2},
            "prometheus": {"url": prometheus.url, "service_label": "service"},
            "aws": {"regions": ["eu-west-1", "us-east-1"], "tag_key": "service",
                    "endpoint_url": aws_endpoint},
        },
    }
    path = tmp_path / "levelset.yaml"
    path.write_text(yaml.safe_dump(document))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def rules_of(payload: dict[str, Any], service: str) -> dict[str, str]:
    [result] = [r for r in payload["results"] if r["service"] == service]
    return {rule["name"]: rule["status"] for rule in result["rules"]}


def test_collect_then_evaluate_from_stored_facts(config: Path, github: GitHubStandIn):
    collected = cli("collect", "--config", str(config))
    assert collected.exit_code == 0, collected.output
    for source in ("github", "prometheus", "aws"):
        assert source in collected.stdout

    evaluated = cli("evaluate", "--config", str(config), "--format", "json")
    assert evaluated.exit_code == 0, evaluated.output
    payload = json.loads(evaluated.stdout)
    checkout = rules_of(payload, "checkout")
    assert checkout["readme"] == "pass" and checkout["reviews"] == "pass"
    assert checkout["available"] == "pass" and checkout["alerts"] == "pass"
    # orders' resources: us-east-1 has a database with 1 day of backups and an unencrypted bucket.
    assert checkout["backups"] == "fail" and checkout["encrypted"] == "fail"
    payments = rules_of(payload, "payments")
    assert payments["reviews"] == "fail"  # acme/payments is not protected
    assert payments["available"] == "fail"  # down for every 10th scrape: 0.9
    assert "stored as run" in evaluated.stderr

    shown = json.loads(cli("facts", "checkout", "--config", str(config), "--format", "json").stdout)
    assert set(shown) == {"github", "prometheus", "aws"}
    assert shown["github"]["has_readme"] is True

    # GitHub now fails for every repository: its facts become unknown, never failed, the
    # failure is recorded, the other sources still collect, and the stored history stays.
    github.fail_always("/repos/acme/checkout", Reply(503, b'{"message": "Service unavailable"}'))
    github.fail_always("/repos/acme/payments", Reply(503, b'{"message": "Service unavailable"}'))
    again = cli("collect", "--config", str(config))
    assert again.exit_code == 3, again.output  # a source that failed for every service
    assert "github: checkout:" in again.stderr and "503" in again.stderr
    assert "error: github: failed for every service (2)" in again.stderr
    payload = json.loads(cli("evaluate", "--config", str(config), "--format", "json").stdout)
    checkout = rules_of(payload, "checkout")
    assert checkout["readme"] == "unknown" and checkout["reviews"] == "unknown"
    assert checkout["available"] == "pass"
    [result] = [r for r in payload["results"] if r["service"] == "checkout"]
    readme = next(r for r in result["rules"] if r["name"] == "readme")
    assert "github collection failed" in readme["message"]
    shown = json.loads(cli("facts", "checkout", "--config", str(config), "--format", "json").stdout)
    assert "503" in shown["github"]["$error"]

    history = cli("runs", "--config", str(config))
    assert history.exit_code == 0 and history.stdout.count("complete") == 2, history.stdout


def test_collect_one_source_for_one_service(config: Path, github: GitHubStandIn):
    result = cli("collect", "--config", str(config), "--source", "github", "--service", "payments")
    assert result.exit_code == 0, result.output
    assert "prometheus" not in result.stdout
    assert github.graphql_repositories == ["acme/payments"]
    assert github.requests(path_prefix="/repos/acme/checkout") == 0
    unknown = cli("facts", "checkout", "--config", str(config))
    assert unknown.exit_code == 2 and 'no facts stored for service "checkout"' in unknown.stderr


def test_collect_rejects_an_unknown_source_and_a_missing_section(config: Path, tmp_path: Path):
    assert cli("collect", "--config", str(config), "--source", "gitlab").exit_code == 2
    bare = tmp_path / "bare.yaml"
    bare.write_text("environment: development\ndatabase_url: sqlite:///" + str(tmp_path / "x.db") + "\n")
    result = cli("collect", "--config", str(bare))
    assert result.exit_code == 2 and "no collectors configured" in result.stderr


def test_discover_writes_each_repository_catalog_file(config: Path, tmp_path: Path):
    output = tmp_path / "discovered"
    result = cli("discover", "--config", str(config), "--output", str(output))
    assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(output).as_posix() for p in output.rglob("*.yaml"))
    assert files == ["acme/checkout.yaml", "acme/payments.yaml"]
    assert "2 catalog file(s) from GitHub, 2 service(s)" in result.stdout
    validated = cli("validate", "--catalog", str(output), str(config.parent / "scorecards"))
    assert validated.exit_code == 0, validated.output
