"""``levelset init``: a working project (settings, catalog, scorecards) in one command."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from core.errors import InputError, Problem
from engine.cli.app import EXIT_OK, app
from engine.cli.local import fail_input
from engine.cli.output import stdout

GITHUB_API = "https://api.github.com"
DISCOVER_CRON = "30 2 * * *"


def _interactive(yes: bool) -> bool:
    return not yes and sys.stdin.isatty() and sys.stdout.isatty()


@app.command()
def init(
    directory: Annotated[Path, typer.Option("--dir", help="Project directory to write.")
                         ] = Path("."),
    catalog: Annotated[Path | None, typer.Option(
        "--catalog", help="A Backstage catalog (catalog-info.yaml, a directory or a Location "
        "file) to copy into DIR/catalog/.")] = None,
    github_org: Annotated[str | None, typer.Option(
        "--github-org", help="GitHub organisation: collect from its repositories (and, without "
        "--catalog, discover the catalog from them).")] = None,
    github_url: Annotated[str, typer.Option(
        "--github-url", help="GitHub REST API root; GitHub Enterprise: https://HOST/api/v3.")
                          ] = GITHUB_API,
    token_env: Annotated[str, typer.Option(
        "--token-env", help="Environment variable holding the GitHub token.")] = "GITHUB_TOKEN",
    prometheus_url: Annotated[str | None, typer.Option(
        "--prometheus-url", help="Prometheus base URL to collect availability and latency "
        "from.")] = None,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Ask nothing; overwrite files an earlier init wrote.")] = False,
) -> None:
    """Write DIR/levelset.yaml, DIR/catalog/ and DIR/scorecards/ for the sources asked for.

    On a terminal, asks for what the options do not give. The scorecards are the shipped
    ones without the rules on sources that are not configured, so everything validates.
    Then: levelset collect --config DIR/levelset.yaml; levelset serve --config DIR/levelset.yaml.
    """
    if _interactive(yes):
        if catalog is None and github_org is None:
            answer = typer.prompt("Backstage catalog path (empty: discover from GitHub)",
                                  default="", show_default=False)
            catalog = Path(answer) if answer else None
        if github_org is None:
            github_org = typer.prompt("GitHub organisation (empty: no GitHub)", default="",
                                      show_default=False) or None
            if github_org:
                github_url = typer.prompt("GitHub API URL", default=github_url)
                token_env = typer.prompt("Environment variable holding the token",
                                         default=token_env)
        if prometheus_url is None:
            prometheus_url = typer.prompt("Prometheus URL (empty: no Prometheus)", default="",
                                          show_default=False) or None
    if catalog is None and github_org is None:
        raise fail_input([Problem("--catalog", None, "give a Backstage catalog (--catalog PATH) "
                                  "or a GitHub organisation to discover (--github-org ORG)")])
    if catalog is not None and not catalog.exists():
        raise fail_input([Problem(str(catalog), None, "catalog path does not exist")])
    settings_file = directory / "levelset.yaml"
    if settings_file.exists() and not yes and not (
            _interactive(yes) and typer.confirm(f"{settings_file} exists: overwrite?")):
        raise fail_input([Problem(str(settings_file), None, "already exists (--yes to write "
                                  "over what an earlier init wrote)")])
    collectors: dict[str, Any] = {}
    if github_org:
        collectors["github"] = {"base_url": github_url, "org": github_org, "token_env": token_env}
    if prometheus_url:
        collectors["prometheus"] = {"url": prometheus_url}
    directory.mkdir(parents=True, exist_ok=True)
    console = stdout()
    services = _write_catalog(directory / "catalog", catalog, collectors.get("github"))
    console.print(f"catalog: {services} service(s) in {directory / 'catalog'}", markup=False)
    _write_scorecards(directory / "scorecards", set(collectors))
    settings_file.write_text(settings_text(directory, collectors, discover=catalog is None),
                             encoding="utf-8")
    console.print(f"settings: {settings_file} (sources: {', '.join(collectors) or 'none'})",
                  markup=False)
    _check(settings_file)
    if github_org:
        console.print(f"GitHub token: export {token_env}=... (scopes: docs/facts.md)",
                      markup=False)
    console.print(f"next: levelset collect --config {settings_file}", markup=False)
    console.print(f"      levelset serve --config {settings_file}", markup=False)
    raise typer.Exit(EXIT_OK)


def settings_text(directory: Path, collectors: dict[str, Any], *, discover: bool) -> str:
    """The settings file; a catalog discovered from GitHub is discovered again every night."""
    database = (directory.resolve() / "levelset.db").as_posix()
    document: dict[str, Any] = {"database_url": f"sqlite:///{database}", "catalog": "catalog/",
                                "scorecards": "scorecards/", "collectors": collectors}
    if discover:
        document["schedule"] = {"discover": DISCOVER_CRON}
    return ("# Levelset settings (written by levelset init). Every key can be overridden by "
            "LEVELSET_<KEY>;\n# tokens are never read from this file, only from the "
            "environment variables named here.\n"
            + yaml.safe_dump(document, sort_keys=False, width=100))


def _write_catalog(target: Path, source: Path | None, github: dict[str, Any] | None) -> int:
    from engine.catalog import load_catalog

    target.mkdir(parents=True, exist_ok=True)
    if source is not None:
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target / source.name)
    elif github is not None:
        from engine.cli.discover import discover_or_exit

        discover_or_exit(github, target, generate=True)
    return len(load_catalog(target).services)


def _write_scorecards(target: Path, configured: set[str]) -> None:
    from engine.starter import starter_scorecards

    target.mkdir(parents=True, exist_ok=True)
    console = stdout()
    cards = starter_scorecards(configured)
    if not cards:
        console.print(f"scorecards: none shipped with this installation; write yours in {target}",
                      markup=False)
    for card in cards:
        path = target / f"{card.name}.yaml"
        if card.text is None:
            path.unlink(missing_ok=True)
            console.print(f"scorecard {card.name}: left out (every rule reads a source not "
                          "configured)", markup=False)
            continue
        path.write_text(card.text, encoding="utf-8")
        left_out = f", {len(card.dropped)} rule(s) on sources not configured left out" \
            if card.dropped else ""
        console.print(f"scorecard {card.name}: {path}{left_out}", markup=False)


def _check(settings_file: Path) -> None:
    """What init wrote must validate; say so, or say what does not."""
    from engine.loading import load_scorecards
    from engine.settings import load_settings
    from engine.vocabulary import vocabulary

    try:
        settings = load_settings(settings_file)
    except InputError as error:
        raise fail_input(error.problems) from None
    cards = load_scorecards(settings.scorecards,
                            vocabulary(settings.collector_settings, settings.custom_facts))
    if cards.problems:
        raise fail_input(cards.problems)
