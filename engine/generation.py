"""Minimal catalog entities for repositories that have no ``catalog-info.yaml``, and the
names discovery gives repositories (entity names and file names alike).

The owner comes from CODEOWNERS (the owners of the ``*`` rule, else of its first rule);
without one it is ``PLACEHOLDER_OWNER``, which ``levelset validate`` points out.

A repository's name becomes a name Backstage accepts (letters and digits, separated by one
of ``-_.``, at most 63 characters): lower-cased, other characters turned into ``-``, a run
of separators collapsed into one, separators trimmed from both ends. Two repositories whose
names become the same (``foo-`` and ``foo_``) are told apart deterministically: the one whose
name already is the result keeps it, else the first by full name; the others get ``-2``,
``-3``, ... and a note says so.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collectors.github.discovery import Uncatalogued

PLACEHOLDER_OWNER = "unowned-set-spec-owner"
MAX_NAME = 63  # Backstage's limit on metadata.name
FALLBACK_NAME = "repository"  # a name with no letter or digit at all
_OTHER = re.compile(r"[^a-z0-9._-]+")
_SEPARATORS = re.compile(r"[-_.]{2,}")


def codeowner(text: str) -> str | None:
    """The owning team of a CODEOWNERS file: ``@acme/payments`` -> ``payments``, a person
    ``@jo`` -> ``user:jo``; the ``*`` rule wins, else the first rule with an owner."""
    rules = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        owners = [p for p in parts[1:] if p.startswith("@")]
        if owners:
            rules.append((parts[0], owners[0]))
    if not rules:
        return None
    _, owner = next((r for r in rules if r[0] in ("*", "/*", "/")), rules[0])
    handle = owner[1:]
    return handle.split("/", 1)[1] if "/" in handle else f"user:{handle}"


def entity_name(repo: str) -> str:
    """A name Backstage accepts for a repository name (before collisions are resolved):
    ``My--Service`` -> ``my-service``, ``data__pipeline`` -> ``data_pipeline``,
    ``x.-y`` -> ``x-y``, ``foo-`` -> ``foo``."""
    name = _OTHER.sub("-", repo.lower())
    name = _SEPARATORS.sub(lambda run: run.group()[0] if len(set(run.group())) == 1 else "-",
                           name).strip("-_.")
    return name[:MAX_NAME].rstrip("-_.") or FALLBACK_NAME


@dataclass(frozen=True)
class NamedRepository:
    """The name discovery gives a repository, and why it differs from the plain one."""

    name: str
    note: str | None = None


def assign_names(repositories: Mapping[str, str]) -> dict[str, NamedRepository]:
    """A distinct Backstage name for each repository (full name -> repository name).

    The result does not depend on the order given: a name wanted by several repositories
    goes to the one whose lower-cased name is that name, else to the first by full name;
    each other one gets the first free ``<name>-N`` (N from 2), never a name another
    repository wants for itself."""
    wanted = {full: entity_name(name) for full, name in repositories.items()}
    by_name: dict[str, list[str]] = {}
    for full in sorted(wanted, key=lambda f: (f.lower(), f)):
        by_name.setdefault(wanted[full], []).append(full)
    taken = set(by_name)
    named: dict[str, NamedRepository] = {}
    for name, fulls in sorted(by_name.items()):
        exact = [f for f in fulls if repositories[f].lower() == name]
        ordered = exact + [f for f in fulls if f not in exact]
        named[ordered[0]] = NamedRepository(name)
        for full in ordered[1:]:
            number = 2
            while (suffixed := _suffixed(name, number)) in taken:
                number += 1
            taken.add(suffixed)
            named[full] = NamedRepository(suffixed, (
                f'{full}: the name "{name}" is also wanted by {ordered[0]}, which has it; '
                f'{full} is named "{suffixed}"'))
    return named


def _suffixed(name: str, number: int) -> str:
    suffix = f"-{number}"
    return name[:MAX_NAME - len(suffix)].rstrip("-_.") + suffix


def minimal_entity(repository: Uncatalogued, owner: str | None, name: str) -> dict[str, Any]:
    """The entity of a repository without catalog-info.yaml, as data for the YAML emitter."""
    metadata: dict[str, Any] = {"name": name}
    if repository.description:
        metadata["description"] = repository.description
    metadata["annotations"] = {"github.com/project-slug": repository.full_name}
    return {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": metadata,
            "spec": {"type": "service", "lifecycle": "production",
                     "owner": owner or PLACEHOLDER_OWNER}}


def generate_entities(repositories: Iterable[Uncatalogued], names: Mapping[str, str], *,
                      include_archived: bool = False
                      ) -> list[tuple[Uncatalogued, dict[str, Any]]]:
    """``(repository, entity)`` for each repository, named by ``names`` (full name -> the
    name :func:`assign_names` gave), its owner from the CODEOWNERS text discovery read."""
    out = []
    for repository in repositories:
        if repository.archived and not include_archived:
            continue
        owner = codeowner(repository.codeowners) if repository.codeowners is not None else None
        out.append((repository, minimal_entity(repository, owner, names[repository.full_name])))
    return out


def placeholder_owners(services: Collection[Any]) -> list[str]:
    """A warning for each service whose owner is still the generated placeholder."""
    return [f"{service.source}: service \"{service.name}\" has no owner (its repository has no "
            "CODEOWNERS): set spec.owner to the owning team"
            for service in sorted(services, key=lambda s: s.name)
            if service.owner in (PLACEHOLDER_OWNER, f"group:{PLACEHOLDER_OWNER}",
                                 f"group:default/{PLACEHOLDER_OWNER}")]
