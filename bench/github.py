"""Collect GitHub facts for a generated organisation behind the loopback stand-in.

    python bench/github.py [--repositories 2000] [--latency 0.15] [--runs 2]

Every answer of the stand-in (tests/realparts/github.py) is delayed by ``--latency`` seconds,
like a distant API. The first run starts with an empty ETag cache; the later runs are
unchanged runs with the cache the first one filled. For each run it prints the wall time,
the requests sent, and the rate-limit cost: points of the GraphQL queries as GitHub computes
them plus the REST requests GitHub counts (304 answers are free).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# bench/ itself off the path: this file's name would shadow PyGithub's package
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from collectors.github.collector import GitHubCollector  # noqa: E402
from core.service import Service  # noqa: E402
from tests.realparts.github import FakeRepository, GitHubStandIn, days_ago  # noqa: E402
from tests.realparts.httpserver import Reply, Request  # noqa: E402

PROTECTION = {
    "required_status_checks": {"strict": True, "contexts": ["ci/build"],
                               "checks": [{"context": "ci/build", "app_id": None}]},
    "enforce_admins": {"enabled": True},
    "required_pull_request_reviews": {"dismiss_stale_reviews": True,
                                      "require_code_owner_reviews": False,
                                      "required_approving_review_count": 1},
    "allow_force_pushes": {"enabled": False},
    "allow_deletions": {"enabled": False},
}
SEVERITIES = ["critical", "high", "medium", "low"]


def fleet(count: int, seed: int) -> list[FakeRepository]:
    rng = random.Random(seed)
    repositories = []
    for index in range(count):
        files = ["README.md", "src/main.py"]
        files += [f for f in ("LICENSE", ".github/CODEOWNERS", "Dockerfile", "SECURITY.md",
                              ".github/dependabot.yml", ".github/workflows/ci.yml")
                  if rng.random() < 0.6]
        repositories.append(FakeRepository(
            f"acme/svc-{index:05d}", visibility=rng.choice(["private", "internal"]),
            topics=rng.sample(["python", "go", "tier-1", "tier-2", "payments"], 2),
            languages={"Python": rng.randint(1000, 90000), "Shell": rng.randint(10, 900)},
            files=files, protection=PROTECTION if rng.random() < 0.7 else None,
            pull_requests_created=[days_ago(rng.uniform(0, 30)) for _ in range(rng.randint(0, 3))],
            last_commit_at=days_ago(rng.uniform(0, 200)),
            # about one open alert for every four repositories, of each kind
            dependabot_alerts=[rng.choice(SEVERITIES)] if rng.random() < 0.25 else [],
            code_scanning_alerts=[rng.choice(SEVERITIES)] if rng.random() < 0.25 else [],
            release=(f"v1.{index % 50}.0", days_ago(rng.uniform(1, 90)))
            if rng.random() < 0.5 else None,
        ))
    return repositories


def with_latency(stand_in: GitHubStandIn, latency: float) -> None:
    answer = stand_in.server.respond

    def delayed(request: Request) -> Reply:
        reply = answer(request)
        reply.delay = max(reply.delay, latency)
        return reply

    stand_in.server.respond = delayed


def cost(stand_in: GitHubStandIn) -> int:
    """Rate-limit points used so far: GraphQL points plus counted REST requests."""
    if hasattr(stand_in, "points_used"):
        return int(stand_in.points_used())
    return stand_in.limit - stand_in.remaining  # the REST-only stand-in


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repositories", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    logging.getLogger("collectors").setLevel(logging.ERROR)
    os.environ["LEVELSET_BENCH_GITHUB_TOKEN"] = "ghp_bench"
    stand_in = GitHubStandIn(fleet(args.repositories, args.seed), rate_limit=10_000_000)
    with_latency(stand_in, args.latency)
    services = [Service(name=f"svc-{i:05d}", owner="team-a", lifecycle="production")
                for i in range(args.repositories)]
    collector = GitHubCollector({"base_url": stand_in.base_url, "org": "acme",
                                 "token_env": "LEVELSET_BENCH_GITHUB_TOKEN",
                                 "timeout_seconds": 60})
    rows: list[dict[str, Any]] = []
    with stand_in.server.running():
        for run in range(1, args.runs + 1):
            before = cost(stand_in)
            started = time.perf_counter()
            result = collector.collect(services)
            took = time.perf_counter() - started
            rows.append({"run": "first" if run == 1 else "unchanged",
                         "seconds": round(took, 1), "requests": result.requests,
                         "not_modified": result.not_modified,
                         "cost": cost(stand_in) - before,
                         "collected": len(result.facts), "failed": len(result.failures)})
            print(json.dumps(rows[-1]), flush=True)
    print(f"{args.repositories} repositories, {args.latency * 1000:.0f} ms per request")


if __name__ == "__main__":
    main()
