"""The service catalog, read from Backstage entity files.

Services are Backstage ``Component`` entities. The reader follows Backstage's rules: files
may hold several documents; ``Location`` entities point at more files (paths relative to the
Location, globs allowed); other kinds (Group, User, System, API, Resource, ...) are read and
validated but are not services; an invalid entity is rejected with an error naming its file
and line, and does not stop the others from loading.

Annotations are kept as they are: each collector reads its own to find a service's data
(``github.com/project-slug: acme/payments``; the list is in docs/facts.md). The tier is
read here:

```yaml
metadata:
  annotations:
    levelset.dev/tier: "1"                        # or metadata.labels.tier
```
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import CatalogError, InputError, Problem
from core.inputfiles import CATALOG_FILE, check_regular, describe_os_error, walk_files
from core.service import Service
from engine.yamlsource import Node, NodeList, load_documents, load_file

TIER_ANNOTATION = "levelset.dev/tier"

API_VERSIONS = frozenset({"backstage.io/v1alpha1", "backstage.io/v1beta1"})
# Backstage's validators (catalog-model, KubernetesValidatorFunctions / CommonValidatorFunctions).
_NAME = re.compile(r"^[a-zA-Z0-9]+(?:[-_.][a-zA-Z0-9]+)*$")
_NAMESPACE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TAG = re.compile(r"^[a-z0-9:+#]+(?:-[a-z0-9:+#]+)*$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass
class Catalog:
    services: dict[str, Service]
    problems: list[Problem]

    def __iter__(self) -> Any:
        return iter(self.services.values())

    def __len__(self) -> int:
        return len(self.services)


def short_ref(ref: str, default_kind: str) -> str:
    """``group:default/team-a`` -> ``team-a``; ``user:guest`` stays; kinds are lower-cased."""
    kind, _, rest = ref.rpartition(":") if ":" in ref else ("", "", ref)
    namespace, _, name = rest.rpartition("/") if "/" in rest else ("default", "", rest)
    kind = (kind or default_kind).lower()
    text = name if namespace == "default" else f"{namespace}/{name}"
    return text if kind == default_kind else f"{kind}:{text}"


class _EntityChecker:
    """Backstage's entity envelope and Component checks, as problems with lines."""

    def __init__(self, file: str, doc: Node) -> None:
        self.file, self.doc = file, doc
        self.problems: list[Problem] = []

    def fail(self, node: Any, key: str | None, message: str) -> None:
        line = node.line_of(key) if isinstance(node, Node) and key else getattr(node, "line", None)
        self.problems.append(Problem(self.file, line, message))

    def string(self, node: Node, key: str, where: str, required: bool = True) -> str | None:
        value = node.get(key)
        if value is None:
            if required:
                self.fail(node, None, f"{where}.{key}: required")
            return None
        if not isinstance(value, str) or not value:
            self.fail(node, key, f"{where}.{key}: must be a non-empty string")
            return None
        return value

    def string_map(self, node: Node, key: str, where: str) -> dict[str, str]:
        value = node.get(key, {})
        if not isinstance(value, Mapping):
            self.fail(node, key, f"{where}.{key}: must be a mapping")
            return {}
        result = {}
        for k, v in value.items():
            if not isinstance(v, str):
                self.fail(value, k, f'{where}.{key}."{k}": value must be a string')
            elif not _valid_key(k):
                self.fail(value, k, f'{where}.{key}: "{k}" is not a valid key')
            else:
                result[k] = v
        return result


def _valid_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return 1 <= len(name) <= 63 and bool(_NAME.match(name))


def _check_entity(file: str, doc: Any) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Envelope checks for any kind; returns (entity parts, problems)."""
    if not isinstance(doc, Node):
        return None, [Problem(file, getattr(doc, "line", None), "entity must be a mapping")]
    check = _EntityChecker(file, doc)
    api_version = check.string(doc, "apiVersion", "entity")
    kind = check.string(doc, "kind", "entity")
    metadata = doc.get("metadata")
    if not isinstance(metadata, Node):
        check.fail(doc, "metadata" if "metadata" in doc else None, "metadata: required mapping")
        return None, check.problems
    name = check.string(metadata, "name", "metadata")
    if name is not None and (len(name) > 63 or not _NAME.match(name)):
        check.fail(metadata, "name", f'metadata.name: "{name}" is not a valid entity name '
                   "(letters, digits and [-_.] between them, at most 63 characters)")
        name = None
    namespace = check.string(metadata, "namespace", "metadata", required=False) or "default"
    if not _NAMESPACE.match(namespace):
        check.fail(metadata, "namespace", f'metadata.namespace: "{namespace}" is not valid')
    labels = check.string_map(metadata, "labels", "metadata")
    annotations = check.string_map(metadata, "annotations", "metadata")
    tags = metadata.get("tags", [])
    if not isinstance(tags, list):
        check.fail(metadata, "tags", "metadata.tags: must be a list")
        tags = []
    for index, tag in enumerate(tags):
        if not isinstance(tag, str) or len(tag) > 63 or not _TAG.match(tag):
            line = tags.line_of(index) if hasattr(tags, "line_of") else metadata.line_of("tags")
            check.problems.append(Problem(file, line, f'metadata.tags: "{tag}" is not a valid tag '
                                          "(lower-case letters, digits, [:+#] in words joined by -)"))
    if api_version is not None and kind in _BUILTIN_KINDS and api_version not in API_VERSIONS:
        check.fail(doc, "apiVersion", f'apiVersion: "{api_version}" is not a Backstage API version')
    spec = doc.get("spec", Node())
    if not isinstance(spec, Mapping):
        check.fail(doc, "spec", "spec: must be a mapping")
        spec = Node()
    if check.problems or name is None or kind is None:
        return None, check.problems
    if kind == "Component":
        for key in ("type", "lifecycle", "owner"):
            check.string(spec, key, "spec")
        for key in ("system", "subcomponentOf"):
            check.string(spec, key, "spec", required=False)
        if check.problems:
            return None, check.problems
    links = metadata.get("links", [])
    return {
        "kind": kind, "name": name, "namespace": namespace, "labels": labels,
        "annotations": annotations, "tags": tuple(tags), "metadata": metadata, "spec": spec,
        "links": tuple(
            {k: str(v) for k, v in link.items() if k in ("url", "title", "icon", "type")}
            for link in (links if isinstance(links, list) else [])
            if isinstance(link, Mapping) and isinstance(link.get("url"), str)
        ),
    }, []


_BUILTIN_KINDS = frozenset(
    {"Component", "API", "Resource", "System", "Domain", "Group", "User", "Location", "Template"}
)


def _service(entity: dict[str, Any], source: str) -> Service:
    spec, metadata, labels = entity["spec"], entity["metadata"], entity["labels"]
    tier = entity["annotations"].get(TIER_ANNOTATION) or labels.get("tier")
    return Service(
        name=entity["name"] if entity["namespace"] == "default"
        else f'{entity["namespace"]}/{entity["name"]}',
        namespace=entity["namespace"],
        owner=short_ref(spec["owner"], "group"),
        lifecycle=spec["lifecycle"],
        type=spec["type"],
        title=metadata.get("title"),
        description=metadata.get("description"),
        system=short_ref(spec["system"], "system") if spec.get("system") else None,
        tier=str(tier) if tier is not None else None,
        tags=entity["tags"],
        labels=labels,
        annotations=entity["annotations"],
        links=entity["links"],
        source=source,
    )


_URL = re.compile(r"^[a-z][a-z0-9+.-]*://")


def _target_entries(doc: Node, spec: Mapping[str, Any]) -> list[tuple[Any, int]]:
    """``spec.target`` and each of ``spec.targets``, with the line it is on."""
    entries: list[tuple[Any, int]] = []
    if isinstance(spec.get("target"), str):
        entries.append((spec["target"], spec.line_of("target") if isinstance(spec, Node) else doc.line))
    targets = spec.get("targets")
    if isinstance(targets, list):
        entries.extend(
            (target, targets.line_of(index) if isinstance(targets, NodeList) else doc.line)
            for index, target in enumerate(targets)
        )
    return entries


def _location_targets(file: Path, doc: Node, spec: Mapping[str, Any]) -> tuple[list[Path], list[Problem]]:
    """The files a Location's targets name, confined to the Location file's folder.

    As in Backstage, a ``file`` target is a path (or glob) relative to the Location file.
    Here it must also stay inside that file's folder, symbolic links followed, so that a
    catalog cannot make Levelset read any other file on the machine: absolute paths, ``..``
    that leaves the folder, links that lead out of it, and anything but a regular file (a
    device such as /dev/zero, a FIFO) are refused with the line of the target.
    """
    paths: list[Path] = []
    problems: list[Problem] = []
    base = Path(os.path.realpath(file.parent))
    for target, line in _target_entries(doc, spec):

        def refuse(message: str, line: int = line, target: Any = target) -> None:
            problems.append(Problem(str(file), line, f'spec.targets: "{target}" {message}'))

        if not isinstance(target, str) or not target:
            problems.append(Problem(str(file), line, f"spec.targets: {target!r} is not a path"))
        elif _URL.match(target):
            refuse("is a URL; only file targets are read (clone the repository and point at it)")
        elif Path(target).is_absolute():
            refuse("is an absolute path; targets are relative to the Location file and stay in "
                   "its folder")
        elif (normal := os.path.normpath(target)) == ".." or normal.startswith("../"):
            refuse(f"leaves the folder of the Location file ({base})")
        elif any(ch in target for ch in "*?["):
            for match in sorted(file.parent.glob(normal)):
                _confined_target(match, base, refuse, paths.append, glob=True)
        elif not os.path.lexists(file.parent / normal):
            refuse("does not exist")
        else:
            _confined_target(file.parent / normal, base, refuse, paths.append, glob=False)
    return paths, problems


def _confined_target(
    candidate: Path, base: Path, refuse: Callable[[str], None], accept: Callable[[Path], None],
    *, glob: bool,
) -> None:
    where = f"matches {candidate}, which " if glob else ""
    real = Path(os.path.realpath(candidate))
    try:
        mode = candidate.stat().st_mode
    except OSError as error:
        refuse(f"{where}cannot be read: {describe_os_error(error)}")
        return
    if not real.is_relative_to(base):
        refuse(f"{where}resolves to {real}, outside the folder of the Location file ({base})")
    elif stat.S_ISDIR(mode):
        if not glob:  # "components/*" matching folders is not worth a problem
            refuse("is a folder; name its files, or a glob such as folder/*.yaml")
    elif (problem := check_regular(candidate, mode)) is not None:
        refuse(f"{where}is {problem.message}")
    else:
        accept(candidate if glob else real)


def load_catalog(paths: Sequence[Path] | Path) -> Catalog:
    """Read services from entity files, directories of them, or Location files."""
    roots = [paths] if isinstance(paths, Path) else list(paths)
    services: dict[str, Service] = {}
    seen_entities: dict[tuple[str, str, str], str] = {}
    problems: list[Problem] = []
    visited: set[Path] = set()
    queue: list[Path] = []
    for root in roots:
        if not root.exists():
            problems.append(Problem(str(root), None, "catalog path does not exist"))
            continue
        walk = walk_files([root])
        queue.extend(walk.files)
        problems.extend(walk.problems)
    while queue:
        file = queue.pop(0)
        resolved = file.resolve()
        if resolved in visited:
            continue
        visited.add(resolved)
        try:
            documents = load_file(file, CATALOG_FILE)
        except InputError as error:
            problems.extend(error.problems)
            continue
        for doc, entity in _read_entities(str(file), documents, services, seen_entities, problems):
            targets, found = _location_targets(file, doc, entity["spec"])
            problems.extend(found)
            queue.extend(targets)
    return Catalog(services, sorted(set(problems)))


def load_catalog_texts(texts: Iterable[tuple[str, str]]) -> Catalog:
    """Read services from entity files given as ``(origin, text)`` pairs.

    The same rules as :func:`load_catalog`, for files read elsewhere (a repository's
    ``catalog-info.yaml`` fetched from GitHub: origin ``acme/payments/catalog-info.yaml``).
    Location entities cannot be followed from text and are reported.
    """
    services: dict[str, Service] = {}
    seen_entities: dict[tuple[str, str, str], str] = {}
    problems: list[Problem] = []
    for origin, text in texts:
        try:
            documents = load_documents(text, origin, CATALOG_FILE)
        except InputError as error:
            problems.extend(error.problems)
            continue
        for doc, _ in _read_entities(origin, documents, services, seen_entities, problems):
            problems.append(Problem(origin, doc.line, "Location targets are not followed in "
                                    "discovered files: list each repository's entities instead"))
    return Catalog(services, sorted(set(problems)))


@dataclass(frozen=True)
class RepositoryFile:
    """Entity text read from (or generated for) one repository: ``origin`` is what problems
    name (``acme/payments/catalog-info.yaml``)."""

    repository: str  # owner/name
    origin: str
    text: str


@dataclass
class RepositoryCatalog:
    """The entities of an organisation's repositories after the one-owner rule: ``documents``
    holds, for each origin, the entities accepted from it as plain data (what is written)."""

    catalog: Catalog
    documents: dict[str, list[dict[str, Any]]]


def load_repository_files(files: Sequence[RepositoryFile], *, belongs: Mapping[str, str],
                          slug_annotation: str, org: str | None) -> RepositoryCatalog:
    """The Backstage rules of :func:`load_catalog_texts`, and one owner per entity name.

    ``belongs`` maps a lower-cased name to the repository it belongs to (the one of that
    name). A Component of that name is that repository's: a claim from another repository
    loses to the repository's own, and without one stands only if it describes that very
    repository (its ``slug_annotation``, by default ``<org>/<name>``). Any other name
    claimed by several repositories goes to the one claim whose slug names its own
    repository; with none (or several), every claim is refused. Each refused claim is a
    problem naming both repositories. Invalid entities and Locations are left out.
    """
    services: dict[str, Service] = {}
    problems: list[Problem] = []
    claims: dict[tuple[str, str, str], list[_Claim]] = {}
    documents: dict[str, list[dict[str, Any]]] = {file.origin: [] for file in files}
    for file in files:
        try:
            loaded = load_documents(file.text, file.origin, CATALOG_FILE)
        except InputError as error:
            problems.extend(error.problems)
            continue
        for doc in loaded:
            entity, found = _check_entity(file.origin, doc)
            problems.extend(found)
            if entity is None:
                continue
            if entity["kind"] == "Location":
                problems.append(Problem(file.origin, doc.line, "Location targets are not "
                                        "followed in discovered files: list each repository's "
                                        "entities instead"))
                continue
            slug = entity["annotations"].get(slug_annotation) or (
                f'{org}/{entity["name"]}' if org else None)
            key = (entity["kind"].lower(), entity["namespace"], entity["name"].lower())
            claims.setdefault(key, []).append(_Claim(file, doc, entity, slug))
    for key, group in claims.items():
        first: dict[str, _Claim] = {}
        for claim in group:
            repository = claim.file.repository.lower()
            if repository in first:
                earlier = first[repository]
                problems.append(Problem(claim.file.origin, claim.doc.line,
                                        f'{claim.entity["kind"]} "{claim.entity["name"]}" is '
                                        f"already defined at {earlier.source}"))
            else:
                first[repository] = claim
        rightful = belongs.get(key[2]) if key[0] == "component" else None
        accepted, refused = _one_owner(list(first.values()), rightful)
        problems.extend(refused)
        for claim in accepted:
            documents[claim.file.origin].append(_plain(claim.doc))
            if claim.entity["kind"] == "Component":
                service = _service(claim.entity, claim.source)
                services[service.name] = service
    return RepositoryCatalog(Catalog(services, sorted(set(problems))), documents)


@dataclass(frozen=True)
class _Claim:
    file: RepositoryFile
    doc: Node
    entity: dict[str, Any]
    slug: str | None  # the repository the entity says it describes

    @property
    def source(self) -> str:
        return f"{self.file.origin}:{self.doc.line}"

    @property
    def own(self) -> bool:
        return self.slug is not None and self.slug.lower() == self.file.repository.lower()


def _one_owner(claims: list[_Claim], rightful: str | None
               ) -> tuple[list[_Claim], list[Problem]]:
    """The claims (one per repository) that stand, and a problem for each refused one."""
    if not claims:
        return [], []
    what = f'{claims[0].entity["kind"]} "{claims[0].entity["name"]}"'
    refused: list[Problem] = []

    def refuse(claim: _Claim, why: str) -> None:
        refused.append(Problem(claim.file.origin, claim.doc.line,
                               f"{what} claimed by {claim.file.repository}: {why}; refused"))

    if rightful is not None:
        owner = rightful.lower()
        own = [c for c in claims if c.file.repository.lower() == owner]
        for claim in claims:
            if own and claim not in own:
                refuse(claim, f"it belongs to {rightful}, the repository of that name, which "
                       "defines it")
            elif not own and (claim.slug or "").lower() != owner:
                refuse(claim, f"it belongs to {rightful}, the repository of that name, and "
                       f"this claim describes {claim.slug or 'no repository'}")
        claims = own or [c for c in claims if (c.slug or "").lower() == owner]
    if len(claims) > 1:
        owners = [c for c in claims if c.own]
        repositories = ", ".join(sorted(c.file.repository for c in claims))
        for claim in claims:
            if len(owners) == 1 and claim is not owners[0]:
                refuse(claim, f"{owners[0].file.repository} claims it for itself "
                       f"(its {owners[0].source})")
            elif len(owners) != 1:
                refuse(claim, f"also claimed by {repositories}, and no repository of that "
                       "name or single claim for its own repository decides whose it is")
        claims = owners if len(owners) == 1 else []
    return claims, refused


def _plain(value: Any) -> Any:
    """Loaded YAML (Node, NodeList) as plain dicts and lists, for the YAML emitter."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _read_entities(
    origin: str,
    documents: Iterable[Any],
    services: dict[str, Service],
    seen_entities: dict[tuple[str, str, str], str],
    problems: list[Problem],
) -> Iterator[tuple[Node, dict[str, Any]]]:
    """Check each document, add Components to ``services``; yields Location entities."""
    for doc in documents:
        entity, found = _check_entity(origin, doc)
        problems.extend(found)
        if entity is None:
            continue
        source = f"{origin}:{doc.line}"
        key = (entity["kind"].lower(), entity["namespace"], entity["name"].lower())
        if key in seen_entities:
            problems.append(Problem(origin, doc.line, f'{entity["kind"]} "{entity["name"]}" '
                                    f"is already defined at {seen_entities[key]}"))
            continue
        seen_entities[key] = source
        if entity["kind"] == "Location":
            yield doc, entity
        elif entity["kind"] == "Component":
            service = _service(entity, source)
            services[service.name] = service


def require_valid(catalog: Catalog) -> Catalog:
    if catalog.problems:
        raise CatalogError(catalog.problems)
    return catalog

