"""The shipped scorecards, cut down to the sources a new project configures.

A rule that reads a source the settings do not configure could never pass, so ``levelset
init`` leaves it out; a level left with no rule is left out too, and a scorecard with no rule
left is not written. Exemptions of rules left out go with them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from collectors import registry
from rules.references import fact_references

SHIPPED = Path(__file__).resolve().parent.parent / "scorecards"


def shipped() -> Path | None:
    """Where the shipped scorecards are: beside the source tree, or (in the container image)
    where ``LEVELSET_SCORECARDS`` points."""
    for candidate in (SHIPPED, Path(os.environ.get("LEVELSET_SCORECARDS") or SHIPPED)):
        if candidate.is_dir() and any(candidate.glob("*.yaml")):
            return candidate
    return None


@dataclass
class Restricted:
    name: str
    text: str | None  # None: nothing left to grade
    dropped: list[str] = field(default_factory=list)  # "rule (reads aws)"


def sources_read(expression: str) -> set[str]:
    """The collector namespaces an expression reads (``github.files`` -> github): the facts
    it reads, as CEL reads them (not a name inside a string or a comment)."""
    namespaces = {*registry.names(), "custom"}
    return {ref.path[0] for ref in fact_references(expression, namespaces)}


def restrict(text: str, configured: set[str]) -> Restricted:
    document: dict[str, Any] = yaml.safe_load(text)
    spec = document["spec"]
    name = document["metadata"]["name"]
    kept, dropped = [], []
    for rule in spec.get("rules", []):
        missing = sorted(sources_read(str(rule.get("expression", ""))) - configured)
        if missing:
            dropped.append(f"{rule['name']} (reads {', '.join(missing)})")
        else:
            kept.append(rule)
    if not kept:
        return Restricted(name, None, dropped)
    spec["rules"] = kept
    used = {rule.get("level") for rule in kept}
    if isinstance(spec.get("levels"), list):
        spec["levels"] = [lv for lv in spec["levels"]
                          if (lv if isinstance(lv, str) else lv.get("name")) in used]
    if spec.get("filter") and sources_read(str(spec["filter"])) - configured:
        spec.pop("filter")
    names = {rule["name"] for rule in kept}
    if spec.get("exemptions"):
        # An exemption without a rule exempts the service from the whole scorecard: it stays.
        spec["exemptions"] = [e for e in spec["exemptions"]
                              if not isinstance(e, dict) or e.get("rule") is None
                              or e.get("rule") in names]
        if not spec["exemptions"]:
            spec.pop("exemptions")
    header = f"# The shipped {name} scorecard."
    if dropped:
        header += ("\n# Left out, as they read sources levelset.yaml does not configure (add "
                   "the source, then the rule):\n" + "\n".join(f"#   - {d}" for d in dropped))
    body = yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)
    return Restricted(name, f"{header}\n{body}", dropped)


def starter_scorecards(configured: set[str], source: Path | None = None) -> list[Restricted]:
    source = source or shipped()
    if source is None:
        return []
    return [restrict(path.read_text(encoding="utf-8"), configured)
            for path in sorted(source.glob("*.yaml"))]
