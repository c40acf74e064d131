"""Render Slack Block Kit messages as a picture: docs/report.png, shown in docs/notifications.md.

    .venv/bin/pip install -e '.[docs]'          # Playwright (Python); no browser download
    apt-get install -y chromium                 # Debian's headless browser
    .venv/bin/python scripts/render_report.py [tests/reports/golden/weekly.json] [docs/report.png]

Reads a JSON list of messages (``{"channel"?, "text", "blocks"}``, what ``levelset report
slack --dry-run`` prints and what the golden test file holds), draws the block types the
report uses (header, section with text and fields, context, divider, and buttons) as Slack
shows them, and screenshots the page with Debian's chromium. ``--html`` writes the page
instead, for a look in any browser.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = ROOT / "tests" / "reports" / "golden" / "weekly.json"
DEFAULT_OUTPUT = ROOT / "docs" / "report.png"
CHROMIUM = "/usr/bin/chromium"

STYLE = """
body { font-family: "Lato", "Helvetica Neue", Arial, sans-serif; background: #fff; margin: 0;
       color: #1d1c1d; font-size: 15px; line-height: 1.46668; }
.channel { padding: 10px 20px; border-bottom: 1px solid #ddd; font-weight: 900; }
.message { display: flex; padding: 8px 20px; }
.avatar { width: 36px; height: 36px; border-radius: 4px; background: #4a154b; color: #fff;
          font-weight: 900; text-align: center; line-height: 36px; margin-right: 8px;
          flex-shrink: 0; }
.body { flex: 1; min-width: 0; max-width: 760px; }
.sender { font-weight: 900; } .app { font-size: 10px; background: #eee; padding: 1px 3px;
          border-radius: 2px; color: #616061; margin-left: 4px; }
.header { font-size: 18px; font-weight: 900; margin: 6px 0 4px; }
.section { margin: 4px 0; display: flex; gap: 12px; }
.section .text { flex: 1; white-space: pre-wrap; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: 4px 16px; margin-top: 4px; }
.field { white-space: pre-wrap; }
.context { color: #616061; font-size: 13px; margin: 4px 0; white-space: pre-wrap; }
.divider { border: 0; border-top: 1px solid #ddd; margin: 10px 0; }
.button { display: inline-block; border: 1px solid #bbb; border-radius: 4px; padding: 2px 10px;
          font-weight: 700; font-size: 13px; margin: 4px 6px 4px 0; }
.button.primary { background: #007a5a; color: #fff; border-color: #007a5a; }
a { color: #1264a3; text-decoration: none; }
code { font-family: Monaco, Menlo, Consolas, monospace; font-size: 12px; color: #e01e5a;
       background: #f8f8f8; border: 1px solid #ddd; border-radius: 3px; padding: 0 2px; }
.unknown { color: #999; font-style: italic; }
"""


def mrkdwn(text: str) -> str:
    """Slack's mrkdwn as HTML: escapes, links, *bold*, _italic_, ~strike~, `code`."""
    text = html.unescape(text)  # Slack's own escapes (&amp; &lt; &gt;) first
    links: list[str] = []

    def link(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        links.append(f'<a href="{html.escape(target)}">{html.escape(label or target)}</a>')
        return f"\x00{len(links) - 1}\x00"

    text = re.sub(r"<([^<>]+)>", link, text)
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"<b>\1</b>", text)
    text = re.sub(r"(?<![\w_])_([^_\n]+)_(?![\w_])", r"<i>\1</i>", text)
    text = re.sub(r"(?<![\w~])~([^~\n]+)~(?![\w~])", r"<s>\1</s>", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: links[int(m.group(1))], text)


def text_of(element: dict[str, Any]) -> str:
    if element.get("type") == "mrkdwn":
        return mrkdwn(element.get("text", ""))
    return html.escape(element.get("text", ""))


def block_html(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "header":
        return f'<div class="header">{text_of(block["text"])}</div>'
    if kind == "divider":
        return '<hr class="divider">'
    if kind == "context":
        return '<div class="context">' + " ".join(text_of(e) for e in block["elements"]) + "</div>"
    if kind == "section":
        text = f'<div class="text">{text_of(block["text"])}</div>' if "text" in block else ""
        fields = "".join(f'<div class="field">{text_of(f)}</div>' for f in block.get("fields", []))
        grid = f'<div class="fields">{fields}</div>' if fields else ""
        accessory = button_html(block["accessory"]) if "accessory" in block else ""
        return f'<div class="section"><div style="flex:1">{text}{grid}</div>{accessory}</div>'
    if kind == "actions":
        return "<div>" + "".join(button_html(e) for e in block["elements"]) + "</div>"
    return f'<div class="unknown">[{html.escape(str(kind))} block]</div>'


def button_html(element: dict[str, Any]) -> str:
    style = " primary" if element.get("style") == "primary" else ""
    return f'<span class="button{style}">{text_of(element["text"])}</span>'


def page(messages: list[dict[str, Any]]) -> str:
    parts = [f"<!doctype html><meta charset='utf-8'><style>{STYLE}</style>"]
    channel = None
    for message in messages:
        if message.get("channel") and message.get("channel") != channel:
            channel = message["channel"]
            parts.append(f'<div class="channel">{html.escape(channel)}</div>')
        blocks = "".join(block_html(block) for block in message["blocks"])
        parts.append('<div class="message"><div class="avatar">L</div><div class="body">'
                     '<span class="sender">Levelset</span><span class="app">APP</span>'
                     f"{blocks}</div></div>")
    return "\n".join(parts)


def screenshot(document: str, output: Path, width: int = 860) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory) / "report.html"
        source.write_text(document, encoding="utf-8")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            view = browser.new_page(viewport={"width": width, "height": 100},
                                    device_scale_factor=2)
            view.goto(source.as_uri())
            output.parent.mkdir(parents=True, exist_ok=True)
            view.screenshot(path=str(output), full_page=True)
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("messages", nargs="?", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--html", action="store_true", help="Write the HTML page instead.")
    args = parser.parse_args()
    messages = json.loads(args.messages.read_text(encoding="utf-8"))
    document = page(messages)
    if args.html:
        args.output.write_text(document, encoding="utf-8")
    else:
        screenshot(document, args.output)
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
