"""What each GitHub fact needs the token to allow: the one table ``levelset doctor`` checks
against and ``docs/facts.md`` prints (scripts/gen_facts_doc.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Permission:
    prefix: str  # the facts it covers: a fact path, or the start of one ("alerts.dependabot.")
    classic: frozenset[str]  # classic token: any one of these scopes
    fine_grained: str  # fine-grained token or App: the repository permission
    probe: str | None = None  # REST path under /repos/{repo} that needs it (doctor reads it)


# Classic tokens: public repositories need no scope; private ones need `repo` for everything.
REPO = frozenset({"repo"})
SECURITY = frozenset({"repo", "security_events"})

PERMISSIONS: tuple[Permission, ...] = (
    Permission("branch_protection.", REPO, "Administration: read",
               "/branches/{branch}/protection"),
    Permission("alerts.dependabot.", SECURITY, "Dependabot alerts: read", "/dependabot/alerts"),
    Permission("alerts.code_scanning.", SECURITY, "Code scanning alerts: read",
               "/code-scanning/alerts"),
    Permission("pull_requests.", REPO, "Pull requests: read", "/pulls"),
    Permission("", REPO, "Contents: read, Metadata: read"),  # files, metadata, releases
)


def permission_of(path: str) -> Permission:
    """The permission a ``github`` fact (``branch_protection.enabled``) needs."""
    return next(p for p in PERMISSIONS if path.startswith(p.prefix))


def credential_rows() -> list[str]:
    """The table of docs/facts.md: per group of facts, the scopes and permissions it needs."""
    rows = ["| Facts | Classic token (any of) | Fine-grained token or GitHub App |",
            "|---|---|---|"]
    for permission in PERMISSIONS:
        facts = f"`github.{permission.prefix}*`" if permission.prefix else "every other fact"
        classic = ", ".join(f"`{s}`" for s in sorted(permission.classic))
        rows.append(f"| {facts} | {classic} | {permission.fine_grained} |")
    return [*rows, "", "Classic tokens need no scope for public repositories. `levelset doctor` "
            "reads the scopes of a classic token (`X-OAuth-Scopes`), and for a fine-grained "
            "token tries each read on one repository, and names what is missing."]
