"""How fast the API answers while a long evaluation runs (run by hand).

    python bench/api_during_run.py [--seconds 20] [--items 1500]

Serves the sample project with one costly rule (two nested comprehensions over a list of
``--items`` numbers for every service) twice: evaluating in the server's own process
(``evaluation.isolated: false``) and in the evaluation process (the default). Each time it
triggers a run and reads ``GET /api/v1/services/ledger`` back to back for ``--seconds``,
then prints the latency percentiles of those reads and whether the run was still going.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "fixtures" / "sample"
TOKEN = "bench-write-token-0123456789"
COSTLY = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata: {name: costly}
spec:
  levels: [Bronze]
  rules:
    - {name: pairs, level: Bronze,
       expression: 'custom.items.all(x, custom.items.all(y, x + y >= 0))'}
"""


def with_items(directory: Path, items: int) -> None:
    facts = json.loads((SAMPLE / "facts.json").read_text())
    for service in facts.values():
        service["custom"] = {"items": list(range(items))}
    (directory / "facts.json").write_text(json.dumps(facts))


def project(directory: Path, *, isolated: bool) -> Path:
    shutil.copytree(SAMPLE, directory)
    (directory / "scorecards" / "costly.yaml").write_text(COSTLY)
    with_items(directory, 3)
    settings = yaml.safe_load((directory / "levelset.yaml").read_text())
    settings["evaluation"] = {"isolated": isolated, "timeout_seconds": 3600}
    (directory / "levelset.yaml").write_text(yaml.safe_dump(settings))
    return directory / "levelset.yaml"


def measure(config: Path, seconds: float, items: int) -> dict[str, float]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "LEVELSET_API_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "engine", "serve", "--config", str(config), "--port", str(port),
         "--no-scheduler", "--no-evaluate-on-start"],
        cwd=config.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/v1"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(headers=auth, timeout=300) as client:
            for _ in range(300):
                try:
                    client.get(url.replace("/api/v1", "/healthz"))
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            first = client.post(f"{url}/runs").json()["run_id"]  # a quick first grading
            while client.get(f"{url}/runs/{first}").json()["status"] == "running":
                time.sleep(0.2)
            with_items(config.parent, items)  # the next run reads the costly facts
            run = client.post(f"{url}/runs").json()["run_id"]
            latencies = []
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                started = time.perf_counter()
                client.get(f"{url}/services/ledger").raise_for_status()
                latencies.append(time.perf_counter() - started)
            still_running = client.get(f"{url}/runs/{run}").json()["status"] == "running"
    finally:
        server.terminate()
        server.wait(timeout=30)
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {"requests": len(latencies), "p50_ms": cuts[49] * 1000, "p95_ms": cuts[94] * 1000,
            "max_ms": max(latencies) * 1000, "run_still_going": float(still_running)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--items", type=int, default=3000)
    args = parser.parse_args()
    for isolated in (False, True):
        with tempfile.TemporaryDirectory() as directory:
            config = project(Path(directory) / "project", isolated=isolated)
            figures = measure(config, args.seconds, args.items)
        where = "evaluation process" if isolated else "server process"
        print(f"evaluating in the {where}: {figures['requests']:.0f} reads in {args.seconds:g} s, "
              f"p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, "
              f"max {figures['max_ms']:.1f} ms; run still going at the end: "
              f"{'yes' if figures['run_still_going'] else 'no'}")


if __name__ == "__main__":
    main()
