"""Open Dependabot and code scanning alerts: one sweep of the organisation per run.

``GET /orgs/{org}/dependabot/alerts`` and ``GET /orgs/{org}/code-scanning/alerts`` (state
open, 100 a page) list the open alerts of every repository of the organisation, each with its
repository; they are counted per repository and severity. The pages go out with the ETag
cache, so an unchanged organisation answers 304 on later runs, which costs no rate limit.

A repository the listing names no alert for has none open, except for Dependabot alerts
when GraphQL says they are not enabled for it (unknown, with a note). When the token may not
read the organisation's alerts (HTTP 403/404, or an owner that is a user), the repositories
of that owner are read one by one (``GET /repos/{owner}/{repo}/...``), as the collection's
notes say; there a 403 or 404 leaves that repository's alerts unknown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from github import GithubException

from collectors.github.client import RepositoryFailed, RestReader, SourceFailed
from collectors.github.graphql import RepositoryRead

SEVERITIES = ("critical", "high", "medium", "low")

KINDS: dict[str, tuple[str, str, Callable[[dict[str, Any]], Any]]] = {
    "dependabot": ("dependabot", "dependabot alerts",
                   lambda a: (a.get("security_advisory") or {}).get("severity")),
    "code_scanning": ("code-scanning", "code scanning alerts",
                      lambda a: (a.get("rule") or {}).get("security_severity_level")),
}


def count(alerts: list[dict[str, Any]], kind: str) -> dict[str, int]:
    severity = KINDS[kind][2]
    counts = dict.fromkeys(SEVERITIES, 0)
    for alert in alerts:
        level = severity(alert)
        if level in counts:
            counts[level] += 1
    counts["total"] = len(alerts)
    return counts


class AlertSweep:
    """Fills ``facts["alerts"]`` of repositories already read; notes go to ``notes``."""

    def __init__(self, rest: RestReader) -> None:
        self.rest = rest
        self.notes: list[str] = []

    def fill(self, reads: dict[str, tuple[RepositoryRead, str]]) -> None:
        """``reads``: lower-case slug -> (its read, the first service that uses it)."""
        by_owner: dict[str, list[str]] = defaultdict(list)
        for key in reads:
            by_owner[key.partition("/")[0]].append(key)
        for read, _ in reads.values():
            read.facts["alerts"] = {"dependabot": None, "code_scanning": None}
        try:
            for owner, keys in by_owner.items():
                for kind in KINDS:
                    self._sweep(owner, kind, {k: reads[k] for k in keys})
        except SourceFailed as error:
            self.notes.append(f"alerts not read: {error}; left unknown")

    def _sweep(self, owner: str, kind: str, reads: dict[str, tuple[RepositoryRead, str]]
               ) -> None:
        path, what, _ = KINDS[kind]
        try:
            alerts = list(self.rest.pages(f"/orgs/{owner}/{path}/alerts",
                                          f"{what} (organisation)", {"state": "open"},
                                          raise_status=(403, 404)))
        except GithubException as error:
            self.notes.append(f"{what}: the token cannot read the alerts of organisation "
                              f"{owner} (HTTP {error.status}); read per repository")
            for read, service in reads.values():
                self._one(read, service, kind)
            return
        except RepositoryFailed as error:
            self.notes.append(f"{what} of organisation {owner}: {error}; left unknown")
            return
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for alert in alerts:
            name = (alert.get("repository") or {}).get("full_name")
            if isinstance(name, str):
                grouped[name.lower()].append(alert)
        for key, (read, service) in reads.items():
            listed = grouped.get(key, [])
            # Dependabot off, or not known to be on with nothing listed: unknown, not 0.
            if kind == "dependabot" and read.dependabot_enabled is not True and not listed:
                if read.dependabot_enabled is False:
                    self.notes.append(f"{service}: {what}: not enabled for the repository; "
                                      "left unknown")
                continue
            read.facts["alerts"][kind] = count(listed, kind)

    def _one(self, read: RepositoryRead, service: str, kind: str) -> None:
        path, what, _ = KINDS[kind]
        try:
            alerts = list(self.rest.pages(f"/repos/{read.slug}/{path}/alerts", what,
                                          {"state": "open"}, raise_status=(403, 404)))
        except GithubException as error:
            # 403: the token may not read alerts; 404: the feature is off. Unknown either way.
            self.notes.append(f"{service}: {what}: HTTP {error.status}; left unknown")
            return
        except RepositoryFailed as error:
            self.notes.append(f"{service}: {error}; left unknown")
            return
        read.facts["alerts"][kind] = count(alerts, kind)
