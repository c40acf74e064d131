"""A real Prometheus server with backfilled history, on 127.0.0.1 and a free port.

History is written as OpenMetrics and turned into blocks with ``promtool`` before the server
starts (blocks added to a running server appear only after a minute). Retention is 60 days
so that the server does not delete the backfill at start-up.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "run scripts/install-prometheus.sh (installs Debian's prometheus package)"
_LISTENING = re.compile(r'msg="Listening on" address=127\.0\.0\.1:(\d+)')


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def handler_requests(self, handler: str) -> int:
        """Requests the server itself counted for one API handler (e.g. ``/api/v1/query``)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            text = response.read().decode()
        total = 0
        pattern = re.compile(r'^prometheus_http_requests_total\{(.*)\} (\S+)$')
        for line in text.splitlines():
            match = pattern.match(line)
            if match and f'handler="{handler}"' in match.group(1):
                total += int(float(match.group(2)))
        return total


def binaries() -> tuple[str, str]:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        raise RuntimeError(f"prometheus and promtool must be on PATH: {INSTALL_HINT}")
    return prometheus, promtool


@dataclass(frozen=True)
class Series:
    """One time series: its name with labels, and a function from sample index to value."""

    name: str
    labels: Mapping[str, str]
    value: Callable[[int], float]

    def text(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels.items())
        return f"{self.name}{{{inner}}}"


def openmetrics(families: Mapping[str, tuple[str, list[Series]]], *, end: int, days: int,
                step: int) -> str:
    """OpenMetrics text: each family declared once, each series sorted by time."""
    count = days * 86400 // step
    start = end - (count - 1) * step
    lines: list[str] = []
    for family, (kind, series_list) in families.items():
        lines.append(f"# TYPE {family} {kind}")
        for series in series_list:
            head = series.text()
            lines.extend(f"{head} {series.value(i):g} {start + i * step}" for i in range(count))
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@contextmanager
def running_prometheus(workdir: Path, history: str, rules: str | None = None,
                       timeout: float = 20.0) -> Iterator[PrometheusServer]:
    prometheus, promtool = binaries()
    data = workdir / "data"
    data.mkdir(parents=True)
    source = workdir / "history.om"
    source.write_text(history)
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q",
         "--max-block-duration=720h", str(source), str(data)],
        check=True, capture_output=True, timeout=120,
    )
    config = "global: {scrape_interval: 15s}\nscrape_configs: []\n"
    if rules is not None:
        (workdir / "alerts.yml").write_text(rules)
        config += "rule_files: [alerts.yml]\n"
    (workdir / "prometheus.yml").write_text(config)
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [prometheus, f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={data}", "--storage.tsdb.retention.time=60d",
             "--web.listen-address=127.0.0.1:0", "--web.enable-lifecycle"],
            stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
        )
    try:
        url = _wait_until_ready(process, log, timeout)
        yield PrometheusServer(url=url, process=process, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(process: subprocess.Popen[bytes], log: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited ({process.returncode}):\n{log.read_text()}")
        if url is None:
            match = _LISTENING.search(log.read_text(errors="replace"))
            if match:
                url = f"http://127.0.0.1:{match.group(1)}"
        if url is not None:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return url
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"prometheus not ready after {timeout}s:\n{log.read_text()}")
