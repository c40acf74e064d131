"""The loopback GitHub stand-in, plus what ``doctor`` reads: for classic tokens, the
``X-OAuth-Scopes`` header GitHub sends. CODEOWNERS texts are the repositories' ``contents``,
which discovery reads through GraphQL."""

from __future__ import annotations

import json

from tests.realparts.github import FakeRepository, GitHubStandIn, days_ago
from tests.realparts.httpserver import Reply, Request

BACKSTAGE = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
  description: {description}
  annotations:
    github.com/project-slug: acme/{name}
spec: {{type: service, lifecycle: production, owner: {owner}}}
"""


class SetupStandIn(GitHubStandIn):
    def __init__(self, repositories: list[FakeRepository], *,
                 scopes: dict[str, str] | None = None) -> None:
        super().__init__(repositories)
        self.scopes = scopes or {}  # token -> X-OAuth-Scopes (classic tokens)

    def _answer(self, request: Request) -> Reply:
        # GitHub takes both schemes: "Bearer" (plain HTTP clients), "token" (PyGithub)
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        token = token.strip() if scheme.lower() in ("bearer", "token") else ""
        if token == "revoked":
            return Reply(401, json.dumps({"message": "Bad credentials"}).encode(),
                         {"Content-Type": "application/json"})
        reply = super()._answer(request)
        if token in self.scopes:
            reply.headers["X-OAuth-Scopes"] = self.scopes[token]
        return reply


PROTECTED = {"required_pull_request_reviews": {"required_approving_review_count": 1,
                                               "require_code_owner_reviews": True,
                                               "dismiss_stale_reviews": True},
             "enforce_admins": {"enabled": True}, "allow_force_pushes": {"enabled": False},
             "allow_deletions": {"enabled": False}}


def acme() -> SetupStandIn:
    """An organisation half on Backstage: checkout has a catalog-info.yaml; billing has only
    a CODEOWNERS; scratch has neither; an archived repository is left alone."""
    return SetupStandIn([
        FakeRepository("acme/checkout", files=["README.md", ".github/CODEOWNERS",
                                               "catalog-info.yaml", ".github/workflows/ci.yml"],
                       protection=PROTECTED, last_commit_at=days_ago(2),
                       release=("v2.0.0", days_ago(5)),
                       contents={".github/CODEOWNERS": "* @acme/payments\n"},
                       catalog_info=BACKSTAGE.format(name="checkout", owner="payments",
                                                     description="Takes the money.")),
        FakeRepository("acme/billing", files=["README.md", ".github/CODEOWNERS"],
                       last_commit_at=days_ago(30), dependabot_alerts=["high"],
                       contents={".github/CODEOWNERS": "# owners\n*  @acme/finance @jo\n"}),
        FakeRepository("acme/scratch", files=["notes.txt"], last_commit_at=days_ago(400)),
        FakeRepository("acme/old", archived=True, files=["README"]),
    ], scopes={"ghp_classic_full": "repo, read:org", "ghp_classic_thin": "read:org"})
