"""What each fact needs the collector's credentials to allow: the one table ``levelset
doctor`` checks against and ``docs/facts.md`` prints (scripts/gen_facts_doc.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Permission:
    prefix: str  # the facts it covers: a fact path, or the start of one ("alerts.dependabot.")
    classic: frozenset[str]  # GitHub classic token: any one of these scopes
    fine_grained: str  # GitHub fine-grained token or App: the repository permission
    probe: str | None = None  # REST path under /repos/{repo} that needs it (doctor reads it)
    summary: str = ""  # for other sources: what the credentials must allow


# Classic tokens: public repositories need no scope; private ones need `repo` for everything.
REPO = frozenset({"repo"})
SECURITY = frozenset({"repo", "security_events"})

GITHUB: tuple[Permission, ...] = (
    Permission("branch_protection.", REPO, "Administration: read",
               "/branches/{branch}/protection"),
    Permission("alerts.dependabot.", SECURITY, "Dependabot alerts: read", "/dependabot/alerts"),
    Permission("alerts.code_scanning.", SECURITY, "Code scanning alerts: read",
               "/code-scanning/alerts"),
    Permission("pull_requests.", REPO, "Pull requests: read", "/pulls"),
    Permission("", REPO, "Contents: read, Metadata: read"),  # files, metadata, releases
)

OTHERS: dict[str, str] = {
    "prometheus": "HTTP access to the Prometheus API (/api/v1/query, /api/v1/rules); a "
                  "bearer token (token_env) when the server asks for one",
    "aws": "read-only IAM: tag:GetResources, s3:GetEncryptionConfiguration, "
           "s3:GetBucketVersioning, s3:GetBucketPublicAccessBlock, rds:DescribeDBInstances, "
           "lambda:ListFunctions, dynamodb:DescribeContinuousBackups (e.g. the "
           "ReadOnlyAccess policy), and sts:AssumeRole when assume_role_arn is set",
}


def github_permission(path: str) -> Permission:
    """The permission a ``github`` fact (``branch_protection.enabled``) needs."""
    return next(p for p in GITHUB if path.startswith(p.prefix))


def describe(namespace: str, path: str) -> str:
    """One cell for docs/facts.md: what the credentials must allow for this fact."""
    if namespace == "github":
        need = github_permission(path)
        classic = " or ".join(f"`{s}`" for s in sorted(need.classic))
        return f"classic token: {classic} (public repositories: none); " \
               f"fine-grained: {need.fine_grained}"
    return OTHERS.get(namespace, "")
