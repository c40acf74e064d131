"""The ``levelset`` command line. Each module adds its commands to ``app``."""

from __future__ import annotations

from engine.cli import (
    collect,  # noqa: F401  (registers collect, facts)
    discover,  # noqa: F401  (registers discover)
    doctor,  # noqa: F401  (registers doctor)
    gate,  # noqa: F401  (registers gate)
    init,  # noqa: F401  (registers init)
    local,  # noqa: F401  (registers validate, evaluate, schema)
    push,  # noqa: F401  (registers push)
    report,  # noqa: F401  (registers report slack)
    server,  # noqa: F401  (registers serve, migrate, runs, prune)
)
from engine.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
