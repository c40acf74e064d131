"""Open Dependabot and code scanning alerts: one sweep of the organisation per kind and run.

``GET /orgs/{org}/dependabot/alerts`` and ``GET /orgs/{org}/code-scanning/alerts`` (state
open, 100 a page) list the open alerts of every repository of the organisation, each with its
repository; they are counted per repository and severity. The pages go out with the ETag
cache, so an unchanged organisation answers 304 on later runs, which costs no rate limit.

A repository the listing names no alert for has none open, except for Dependabot alerts
when GraphQL says they are not enabled for it (unknown, with a note). When the token may not
read the organisation's alerts (HTTP 403/404, or an owner that is a user), the repositories
of that owner are read one by one (``GET /repos/{owner}/{repo}/...``), as the collection's
notes say; there a 403 or 404 leaves that repository's alerts unknown. An owner with one
repository in the run (a single repository's refresh) is read that way from the start.

The sweep is a unit of its own (:func:`read_alerts`): it reads what the GraphQL batches
passed on (which repositories were read, whether Dependabot is enabled for each) and returns
alert facts per repository, which are merged into the batches' facts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from github import GithubException

from collectors.github.client import RepositoryFailed, RestReader, SourceFailed

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


def read_alerts(rest: RestReader, read: dict[str, dict[str, Any]], kinds: list[str], *,
                per_repository: bool) -> tuple[dict[str, dict[str, Any]], list[str], bool]:
    """The open alerts of ``kinds`` for the repositories ``read`` (lower-case slug -> what
    its batch passed on: ``slug``, ``service``, ``dependabot_enabled``), all of one owner.

    Returns lower-case slug -> ``{kind: counts}`` for the kinds known, the notes, and
    whether the source stopped (the alerts of the rest of the run are left unknown).
    """
    sweep = _Sweep(rest)
    try:
        for kind in kinds:
            if per_repository:
                for key, repository in read.items():
                    sweep.one(key, repository, kind)
            else:
                sweep.organisation(kind, read)
    except SourceFailed as error:
        sweep.notes.append(f"alerts not read: {error}; left unknown")
        return sweep.alerts, sweep.notes, True
    return sweep.alerts, sweep.notes, False


class _Sweep:
    def __init__(self, rest: RestReader) -> None:
        self.rest = rest
        self.notes: list[str] = []
        self.alerts: dict[str, dict[str, Any]] = {}

    def organisation(self, kind: str, read: dict[str, dict[str, Any]]) -> None:
        owner = next(iter(read)).partition("/")[0]
        path, what, _ = KINDS[kind]
        try:
            alerts = list(self.rest.pages(f"/orgs/{owner}/{path}/alerts",
                                          f"{what} (organisation)", {"state": "open"},
                                          raise_status=(403, 404)))
        except GithubException as error:
            self.notes.append(f"{what}: the token cannot read the alerts of organisation "
                              f"{owner} (HTTP {error.status}); read per repository")
            for key, repository in read.items():
                self.one(key, repository, kind)
            return
        except RepositoryFailed as error:
            self.notes.append(f"{what} of organisation {owner}: {error}; left unknown")
            return
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for alert in alerts:
            name = (alert.get("repository") or {}).get("full_name")
            if isinstance(name, str):
                grouped[name.lower()].append(alert)
        for key, repository in read.items():
            listed = grouped.get(key, [])
            enabled = repository.get("dependabot_enabled")
            # Dependabot off, or not known to be on with nothing listed: unknown, not 0.
            if kind == "dependabot" and enabled is not True and not listed:
                if enabled is False:
                    self.notes.append(f"{repository['service']}: {what}: not enabled for the "
                                      "repository; left unknown")
                continue
            self.alerts.setdefault(key, {})[kind] = count(listed, kind)

    def one(self, key: str, repository: dict[str, Any], kind: str) -> None:
        path, what, _ = KINDS[kind]
        service = repository["service"]
        try:
            alerts = list(self.rest.pages(f"/repos/{repository['slug']}/{path}/alerts", what,
                                          {"state": "open"}, raise_status=(403, 404)))
        except GithubException as error:
            # 403: the token may not read alerts; 404: the feature is off. Unknown either way.
            self.notes.append(f"{service}: {what}: HTTP {error.status}; left unknown")
            return
        except RepositoryFailed as error:
            self.notes.append(f"{service}: {error}; left unknown")
            return
        self.alerts.setdefault(key, {})[kind] = count(alerts, kind)
