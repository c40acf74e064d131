"""``levelset doctor``: is this project ready to grade? One line per problem, with the fix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from core.errors import CollectorError
from core.redaction import redact
from engine.cli.app import EXIT_BELOW, EXIT_OK, ConfigOpt, app
from engine.cli.output import stderr, stdout
from engine.cli.server import load_settings_or_exit
from engine.settings import Settings


@dataclass(frozen=True)
class Finding:
    where: str
    what: str
    fix: str | None = None  # None: all is well

    def line(self) -> str:
        """Shown to people: endpoints are named without their user info."""
        return redact(f"error: {self.where}: {self.what}; fix: {self.fix}" if self.fix
                      else f"ok: {self.where}: {self.what}")


@app.command()
def doctor(config: ConfigOpt = None) -> None:
    """Check that collecting and grading can work, and say how to fix what cannot.

    Checks the token of each source and whether its scopes or permissions let it read every
    fact the rules read, that every endpoint answers, that every rule's source is configured,
    and how many services each scorecard applies to. Exit 0 when all is well, 1 when there
    are problems (one line each, with the fix), 2 when the settings cannot be read.
    """
    settings = load_settings_or_exit(config)
    findings = list(diagnose(settings, config or Path("levelset.yaml")))
    problems = [f for f in findings if f.fix]
    for finding in findings:
        if finding.fix:
            stderr().print(finding.line(), markup=False)
        else:
            stdout().print(finding.line(), markup=False)
    summary = f"{len(problems)} problem(s)" if problems else "no problems"
    stdout().print(summary, markup=False)
    raise typer.Exit(EXIT_BELOW if problems else EXIT_OK)


def diagnose(settings: Settings, config: Path) -> list[Finding]:
    from engine.catalog import load_catalog
    from engine.loading import load_scorecards
    from engine.vocabulary import vocabulary

    schemas = vocabulary(settings.collector_settings, settings.custom_facts)
    cards = load_scorecards(settings.scorecards, schemas)
    findings = [Finding(str(p.file), f"{p.message}" if p.line is None else
                        f"line {p.line}: {p.message}", f"levelset validate --config {config}")
                for p in cards.problems]
    catalog = load_catalog(settings.catalog)
    if not catalog.services:
        findings.append(Finding(str(settings.catalog), "no services in the catalog",
                                "point catalog: at a Backstage catalog, or run levelset "
                                "discover --generate"))
    findings += _database(settings, config)
    facts_read = _facts_read(cards.scorecards.values())
    for name in settings.collectors:
        findings += CHECKS[name](settings.collectors[name], facts_read.get(name, {}))
    findings += _rules_on_unconfigured(cards.scorecards.values(), settings, config)
    findings += _coverage(cards.scorecards.values(), catalog.services, settings, schemas)
    return findings


def _database(settings: Settings, config: Path) -> list[Finding]:
    from engine.cli.database import database_problem, sqlite_file

    path = sqlite_file(settings.database_url)
    if path is not None and not path.exists():
        return [Finding(str(path), "no database yet (levelset collect or serve creates it)")]
    problem = database_problem(settings, config)
    if problem is None:
        return [Finding("database", "reachable and migrated")]
    return [Finding(problem.file, problem.message.split(": run ")[0],
                    f"levelset migrate --config {config}")]


def _facts_read(cards: Any) -> dict[str, dict[str, list[str]]]:
    """namespace -> fact path -> the rules reading it (``scorecard/rule``)."""
    found: dict[str, dict[str, list[str]]] = {}
    for card in cards:
        for rule in card.rules:
            for ref in rule.expression.references:
                if len(ref.path) > 1:
                    found.setdefault(ref.path[0], {}).setdefault(
                        ".".join(ref.path[1:]), []).append(f"{card.name}/{rule.name}")
    return found


def _github(section: dict[str, Any], facts: dict[str, list[str]]) -> list[Finding]:
    from engine.githubrest import GitHubReader
    from engine.permissions import GITHUB, github_permission

    org = section.get("org")
    try:
        reader = GitHubReader(section)
    except CollectorError as error:
        env = section.get("token_env") or "GITHUB_TOKEN"
        return [Finding("github", str(error), f"export {env}=<token> (scopes: docs/facts.md)")]
    with reader:
        if not reader.token:
            out = [Finding("github", "no token: anonymous access, 60 requests an hour, public "
                           "repositories only", "set collectors.github.token_env")]
        else:
            out = []
        try:
            info = reader.token_info(org)
        except CollectorError as error:
            return [*out, Finding("github", str(error), "check collectors.github.base_url "
                                  "and the network")]
        if info.status == 401:
            return [*out, Finding("github", "GitHub rejected the token (HTTP 401)",
                                  "create a new token and export it")]
        if info.status != 200:
            return [*out, Finding("github", f"{reader.config.base_url}: HTTP {info.status} "
                                  f"for {'/orgs/' + org + '/repos' if org else '/rate_limit'}",
                                  "check collectors.github.base_url and org")]
        out.append(Finding("github", f"{reader.config.base_url} reachable"))
        needed: dict[Any, list[str]] = {}
        for path, rules in facts.items():
            needed.setdefault(github_permission(path), []).extend(rules)
        if info.scopes is not None:  # a classic token says what it may do
            for permission, rules in needed.items():
                if not permission.classic & info.scopes:
                    scopes = " or ".join(sorted(permission.classic))
                    out.append(Finding("github", f"the token lacks the {scopes} scope that "
                                       f"{', '.join(sorted(set(rules)))} need (private "
                                       "repositories)", f"add the {scopes} scope to the token"))
            if not any(f.fix for f in out[1:]):
                out.append(Finding("github", f"token scopes {', '.join(sorted(info.scopes)) or 'none'}"
                                   " cover the facts the rules read"))
            return out
        out += _probe(reader, org, needed, GITHUB)
        return out


def _probe(reader: Any, org: str | None, needed: dict[Any, list[str]], table: Any
           ) -> list[Finding]:
    """Fine-grained tokens and Apps list no scopes: read what each fact needs from one
    repository, and report what is refused."""
    if not org:
        return []
    try:
        repository = next(iter(reader.repositories(org)), None)
    except CollectorError as error:
        return [Finding("github", str(error), "give the token read access to the "
                        "organisation's repositories (Metadata: read)")]
    if repository is None:
        return [Finding("github", f"organisation {org} has no repository the token can see",
                        "give the token access to the repositories")]
    out = []
    name, branch = repository["full_name"], repository.get("default_branch", "main")
    for permission, rules in needed.items():
        if permission.probe is None:
            continue
        response = reader.get(f"/repos/{name}{permission.probe.format(branch=branch)}")
        if response.status_code in (401, 403):
            out.append(Finding("github", f"the token cannot read {permission.prefix.rstrip('.')}"
                               f" of {name} (HTTP {response.status_code}), which "
                               f"{', '.join(sorted(set(rules)))} need",
                               f"grant the token {permission.fine_grained}"))
    if not out:
        out.append(Finding("github", f"the token reads every fact the rules need (checked on "
                           f"{name})"))
    return out


def _prometheus(section: dict[str, Any], facts: dict[str, list[str]]) -> list[Finding]:
    import httpx

    url = str(section.get("url", "http://localhost:9090")).rstrip("/")
    try:
        response = httpx.get(f"{url}/api/v1/query", params={"query": "vector(1)"}, timeout=10)
    except httpx.HTTPError as error:
        return [Finding("prometheus", f"cannot reach {url}: {error}",
                        "check collectors.prometheus.url and the network")]
    if response.status_code != 200:
        return [Finding("prometheus", f"{url}/api/v1/query: HTTP {response.status_code}",
                        "check collectors.prometheus.url (and token_env if it needs a token)")]
    return [Finding("prometheus", f"{url} reachable")]


def _aws(section: dict[str, Any], facts: dict[str, list[str]]) -> list[Finding]:
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return [Finding("aws", "boto3 is not installed", "pip install boto3")]
    regions = section.get("regions") or ["us-east-1"]
    try:
        sts = boto3.client("sts", region_name=regions[0],
                           endpoint_url=section.get("endpoint_url"))
        identity = sts.get_caller_identity()
    except (BotoCoreError, ClientError) as error:
        return [Finding("aws", f"no usable credentials or endpoint: {error}",
                        "set AWS credentials (AWS_PROFILE, or a role) with the read-only "
                        "permissions in docs/facts.md")]
    return [Finding("aws", f"credentials of {identity.get('Arn', 'an identity')} accepted")]


CHECKS = {"github": _github, "prometheus": _prometheus, "aws": _aws}


def _rules_on_unconfigured(cards: Any, settings: Settings, config: Path) -> list[Finding]:
    from engine.cli.local import unconfigured_sources

    return [Finding(f"{p.file}:{p.line}" if p.line else p.file, p.message.split(": it can")[0],
                    "configure the source, or drop the rule")
            for p in unconfigured_sources(cards, settings, config)]


def _coverage(cards: Any, services: Any, settings: Settings, schemas: Any) -> list[Finding]:
    from engine.evaluation import FactContext, applies
    from rules.functions import bind

    now = datetime.now(UTC)
    context = bind(now)
    out = []
    for card in cards:
        count = sum(1 for service in services.values()
                    if applies(card, FactContext(service, None, schemas, context, now))[0])
        if count:
            out.append(Finding(f"scorecard {card.name}",
                               f"applies to {count} of {len(services)} service(s)"))
        elif services:
            out.append(Finding(f"scorecard {card.name}", "applies to no service of the catalog",
                               f"check its filter in {card.path}"))
    return out


__all__ = ["diagnose", "doctor"]
