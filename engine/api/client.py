"""Reading a stored result from a Levelset server (``levelset gate --api URL``)."""

from __future__ import annotations

import os
from urllib.parse import quote

import httpx

from core.errors import InputError, Problem
from engine.api.paths import service_segment
from engine.evaluation import RuleStatus
from engine.gate import GatedRule, GateVerdict


def _token() -> str | None:
    return os.environ.get("LEVELSET_READ_TOKEN") or os.environ.get("LEVELSET_API_TOKEN")


def remote_verdict(
    api: str, *, service: str, scorecard: str, min_level: str, timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> GateVerdict:
    """The gate verdict from the server's stored result (same output as local mode).

    ``service`` is the catalog name: ``team-x/svc`` (or ``team-x:svc``) outside the default
    namespace, asked for as ``team-x:svc``."""
    url = f"{api.rstrip('/')}/api/v1/services/{quote(service_segment(service), safe=':')}/" \
          "scorecards/" \
          f"{quote(scorecard, safe='')}"
    token = _token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.get(url, headers=headers)
    except httpx.HTTPError as error:
        raise InputError([Problem("--api", None, f"cannot reach {api}: {error}")]) from None
    if response.status_code != 200:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        option = "--api" if response.status_code in (401, 403) or response.status_code >= 500 \
            else "--service/--scorecard"
        raise InputError([Problem(option, None, f"{url}: HTTP {response.status_code}: {detail}")])
    body = response.json()
    return GateVerdict.build(
        service=body["service"], scorecard=body["scorecard"], required=min_level,
        current=body["level"], score=body["score"], levels=body["levels"],
        rules=[GatedRule(r["name"], r["title"], r["level"], RuleStatus(r["status"]), r["message"],
                         r["remediation"]) for r in body["rules"]],
    )
