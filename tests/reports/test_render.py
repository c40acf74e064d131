"""docs/report.png is drawn from the golden report: the drawing knows every block it holds."""

from __future__ import annotations

import importlib.util
import json
import re

from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "reports" / "golden" / "weekly.json"


def test_the_picture_shows_every_block_and_text_of_the_golden_report() -> None:
    spec = importlib.util.spec_from_file_location("render_report", ROOT / "scripts" / "render_report.py")
    assert spec is not None and spec.loader is not None
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    messages = json.loads(GOLDEN.read_text(encoding="utf-8"))
    page = render.page(messages)
    assert 'class="unknown"' not in page  # every block type of the report is drawn
    visible = re.sub(r"<[^>]+>", "", page)
    for message in messages:
        for block in message["blocks"]:
            if block["type"] == "header":
                assert block["text"]["text"] in visible
    assert (ROOT / "docs" / "report.png").stat().st_size > 10_000
