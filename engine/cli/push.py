"""``levelset push``: custom facts from a shell or a CI step, without curl."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from core.errors import InputError, Problem
from engine.cli.app import EXIT_OK, app
from engine.cli.local import fail_input, fail_unreachable
from engine.cli.output import stdout

DEFAULT_API = "http://127.0.0.1:8000"  # where `levelset serve` listens by default


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_value(text: str) -> Any:
    """A JSON scalar (``81.5``, ``true``, ``"text"``, ``null``); a bare word that is not JSON
    is a string. Arrays and objects are refused: ``ValueError``."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)  # NaN, Infinity: strings
    except ValueError:
        return text
    if isinstance(value, list | dict):
        raise ValueError("a value is a JSON scalar (a number, true, false, null or a string), "
                         "not an array or an object")
    return value


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` arguments as facts; every problem found at once (``InputError``)."""
    facts: dict[str, Any] = {}
    problems = []
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        key = key.strip()
        if not equals or not key:
            problems.append(Problem(assignment, None, "give KEY=VALUE (e.g. coverage=81.5)"))
            continue
        if key in facts:
            problems.append(Problem(assignment, None, f'"{key}" is given twice'))
            continue
        try:
            facts[key] = parse_value(text)
        except ValueError as error:
            problems.append(Problem(assignment, None, str(error)))
    if problems:
        raise InputError(problems)
    return facts


@app.command()
def push(
    service: Annotated[str, typer.Argument(metavar="SERVICE", help="The service (its catalog name).")],
    assignments: Annotated[list[str], typer.Argument(
        metavar="KEY=VALUE...", help="Facts to push: a JSON scalar (81.5, true, \"text\") or a "
        "bare word, which is a string.")],
    api: Annotated[str, typer.Option(
        "--api", help="The Levelset server's base URL, with or without /api/v1. Sends "
        "LEVELSET_API_TOKEN as the bearer token.")] = DEFAULT_API,
    evaluate: Annotated[bool, typer.Option(
        "--evaluate", help="Also grade the service now (otherwise at the next run).")] = False,
) -> None:
    """Push custom facts for SERVICE to a Levelset server (merged into its custom facts).

    Exit codes: 0 stored; 2 refused (bad KEY=VALUE, unknown service, a value that is not of
    its declared type, a missing or read-only token: the server's reason is printed); 3 the
    server cannot be reached or fails.
    """
    from engine.api.client import Unreachable, push_facts

    try:
        facts = parse_assignments(assignments)
        answer = push_facts(api, service=service, facts=facts, evaluate=evaluate)
    except InputError as error:
        raise fail_input(error.problems) from None
    except Unreachable as error:
        raise fail_unreachable(error.problems) from None
    stored = answer.get("facts")
    names = ", ".join(facts) if not isinstance(stored, dict) else ", ".join(
        f"{key}={json.dumps(stored.get(key, value))}" for key, value in facts.items())
    console = stdout()
    console.print(f"stored for {service}: {names}", markup=False)
    run = answer.get("run")
    if isinstance(run, dict) and run.get("url"):
        console.print(f"evaluation started: run {run.get('run_id')} ({run['url']})", markup=False)
    raise typer.Exit(EXIT_OK)


__all__ = ["parse_assignments", "parse_value", "push"]
