"""Secrets out of text: the user info of any URL (``user:token@``) becomes ``***``.

Settings may name endpoints with credentials in them (``https://x-access-token:ghs_...@host``);
errors, logs, stored snapshots and API answers say which endpoint failed, never with what.
One function, ``redact``, is applied at each boundary text crosses: where a collector's
errors are made and handed on (``collectors.collect_all``), where they are stored, and in
every log handler (``install_log_redaction``).
"""

from __future__ import annotations

import logging
import re

HIDDEN = "***"

# A scheme, "//", then user info up to the last "@" before the host ends (a "/", "?", "#",
# whitespace or a quote): "http://a:b@c@host" hides "a:b@c". Without a scheme, "//" alone
# (a scheme-relative URL) is enough.
_USERINFO = re.compile(r"(?P<head>(?:\b[A-Za-z][A-Za-z0-9+.\-]*:)?//)"
                       r"(?P<userinfo>[^/?#\s\"'<>@]*(?:@[^/?#\s\"'<>@]*)*)@"
                       r"(?=[^@/?#\s\"'<>]*(?:[/?#\s\"'<>]|$))")


def redact(text: str) -> str:
    """``text`` with the user info of every URL in it replaced by ``***``; the rest (scheme,
    host, port, path) kept, so the message still says which endpoint it is about."""
    if "@" not in text:
        return text
    return _USERINFO.sub(lambda m: f"{m['head']}{HIDDEN}@", text)


def redact_url(url: str) -> str:
    """One URL for showing: ``https://***@github.example/api/v3``."""
    return redact(url)


class RedactingFormatter(logging.Formatter):
    """Formats as ``inner`` does, then redacts the whole line (message, arguments and any
    traceback alike)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Every handler of ``logger`` (the root by default) and Python's last-resort handler
    redact what they write. Safe to call again: a handler is wrapped once."""
    handlers = list((logger or logging.getLogger()).handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(handler.formatter))
