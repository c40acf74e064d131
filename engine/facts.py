"""Facts supplied by file: ``{service: {namespace: {...facts...}}}`` as JSON or YAML.

A namespace may also be given as ``{"$error": "why"}`` to record that its collection failed,
which makes the rules that need it ``unknown`` with that reason (not ``custom``: custom facts
are given, not collected, and a pushed value is kept whatever the file says).

With ``custom_facts`` declared in the settings, a file's custom facts follow the same rules as
a push: an undeclared name is an error (with a did-you-mean), and a value that does not
convert to its declared type is one; an integer for a ``double`` becomes a double.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from core.errors import FactsError, InputError, Problem
from core.inputfiles import FACTS_FILE, read_text
from core.schema import FactSchema
from engine.custom_facts import coerce_declared
from engine.evaluation import ServiceFacts
from engine.jsonsource import parse_json
from engine.yamlsource import Node, parse_documents

ERROR_KEY = "$error"
CUSTOM = "custom"


def parse_facts(document: object, file: str, namespaces: Mapping[str, object]) -> dict[str, ServiceFacts]:
    if not isinstance(document, Mapping):
        raise FactsError.single(file, getattr(document, "line", 1),
                                "facts must map service names to their facts by namespace")
    problems: list[Problem] = []
    result: dict[str, ServiceFacts] = {}
    for service, by_namespace in document.items():
        line = document.line_of(service) if isinstance(document, Node) else None
        if not isinstance(by_namespace, Mapping):
            problems.append(Problem(file, line, f'service "{service}": expected a mapping of '
                                    "namespace to facts"))
            continue
        facts = ServiceFacts()
        for namespace, values in by_namespace.items():
            ns_line = by_namespace.line_of(namespace) if isinstance(by_namespace, Node) else line
            if namespace == "service":
                problems.append(Problem(file, ns_line, f'service "{service}": the service '
                                        "namespace comes from the catalog, not from facts"))
            elif namespace not in namespaces:
                known = ", ".join(sorted(n for n in namespaces if n != "service"))
                problems.append(Problem(file, ns_line, f'service "{service}": unknown namespace '
                                        f'"{namespace}" (known: {known})'))
            elif isinstance(values, Mapping) and set(values) == {ERROR_KEY}:
                if namespace == CUSTOM:
                    problems.append(Problem(file, ns_line, f'service "{service}": custom facts '
                                            f'cannot be "{ERROR_KEY}" (they are given, not '
                                            "collected): give their values or leave them out"))
                else:
                    facts.failures[namespace] = str(values[ERROR_KEY])
            elif not isinstance(values, Mapping):
                problems.append(Problem(file, ns_line, f'service "{service}": {namespace} facts '
                                        "must be a mapping"))
            elif namespace == CUSTOM:
                schema = namespaces[namespace]
                converted, wrong = coerce_declared(
                    values, schema if isinstance(schema, FactSchema) else None)
                problems += [Problem(file, values.line_of(key) if isinstance(values, Node)
                                     else ns_line, f'service "{service}": custom.{key}: {why}')
                             for key, why in wrong]
                facts.values[namespace] = converted
            else:
                facts.values[namespace] = dict(values)
        result[str(service)] = facts
    if problems:
        raise FactsError(problems)
    return result


def load_facts(path: Path, namespaces: Mapping[str, object]) -> dict[str, ServiceFacts]:
    """Read a facts file: ``.json`` as JSON, anything else as YAML, within FACTS_FILE limits.

    Both keep the lines of services and namespaces for errors; JSON is read about 30 times
    faster (about 10 MiB/s), which matters for a generated file of every service.
    """
    try:
        text = read_text(path, FACTS_FILE)
        if path.suffix.lower() == ".json":
            documents = [parse_json(text, path, FACTS_FILE)]
        else:
            documents = parse_documents(text, path, FACTS_FILE)
    except InputError as error:
        raise FactsError(error.problems) from None
    if len(documents) != 1:
        raise FactsError.single(path, None, f"expected one document, found {len(documents)}")
    return parse_facts(documents[0], str(path), namespaces)
