"""Levelset: scorecards as code, evaluated against facts collected per service."""

__version__ = "0.1.0"
