"""The collector interface: registry, settings, collect_all and the facts reference."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import collectors
from collectors import build_collectors, collect_all
from collectors.base import read_secret, registry
from core.errors import CollectorError, SettingsError
from engine.catalog import load_catalog_texts
from tests.collectors.conftest import service
from tests.fakes import FixedCollector, FixedConfig

ROOT = Path(__file__).resolve().parents[2]


def test_build_collectors_makes_one_per_configured_section_in_order(fixed_source):
    built = build_collectors({"fixed": {"value": 3}, "github": {"org": "acme"},
                              "aws": {"regions": ["eu-west-1"]}})

    assert [c.name for c in built] == ["fixed", "github", "aws"]
    assert set(registry.names()) >= {"github", "prometheus", "aws"}


def test_build_collectors_takes_parsed_settings_too(fixed_source):
    [built] = build_collectors({"fixed": FixedConfig(value=5)})

    assert isinstance(built, FixedCollector) and built.config.value == 5


def test_every_builtin_collector_registers_by_its_package_alone():
    """Listing sources, their settings and facts imports no client library (boto3 is slow)."""
    code = ("import sys, collectors, engine.settings, engine.vocabulary\n"
            "engine.vocabulary.vocabulary()\n"
            "print(sorted(collectors.registry.names()))\n"
            "print(sorted({'boto3', 'github', 'prometheus_api_client'} & set(sys.modules)))\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["['aws', 'github', 'prometheus']", "[]"]


def test_each_registration_names_the_collector_class_that_declares_it():
    for name, source in registry.items():
        assert source.collector_class().source is source, name


def test_unknown_collector_and_bad_settings_are_errors():
    with pytest.raises(KeyError, match="unknown collector 'gitlab'"):
        build_collectors({"gitlab": {}})
    with pytest.raises(SettingsError, match=r"collectors\.aws\.regions: Field required"):
        build_collectors({"aws": {}})


def test_collect_all_keeps_going_when_one_collector_breaks(fixed_source):
    good, broken = FixedCollector({"value": 7}), FixedCollector({"value": -1})
    services = [service("a"), service("b")]

    results = collect_all([broken, good], services)

    assert results[0].failures == {"a": "fixed collector error: RuntimeError",
                                   "b": "fixed collector error: RuntimeError"}
    assert results[1].facts == {"a": {"value": 7}, "b": {"value": 7}}
    assert all(r.finished_at is not None and r.finished_at.tzinfo is not None for r in results)


def test_secrets_come_from_files_or_the_environment(tmp_path, monkeypatch):
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("LEVELSET_TEST_SECRET", "from-env")

    assert read_secret(env="LEVELSET_TEST_SECRET", file=secret, what="x") == "s3cret"
    assert read_secret(env="LEVELSET_TEST_SECRET", file=None, what="x") == "from-env"
    assert read_secret(env=None, file=None, what="x") is None
    with pytest.raises(CollectorError, match="cannot read secret file"):
        read_secret(env=None, file=tmp_path / "missing", what="x")


def test_a_secret_file_is_read_within_limits(tmp_path):
    big = tmp_path / "big"
    big.write_text("x" * (65 * 1024))
    for path in (Path("/dev/zero"), big):
        with pytest.raises(CollectorError, match="cannot read secret file"):
            read_secret(env=None, file=path, what="x")


def test_catalog_texts_follow_the_same_backstage_rules():
    good = ("acme/a/catalog-info.yaml", "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
            "metadata: {name: a}\nspec: {type: service, lifecycle: production, owner: t}\n")
    bad = ("acme/b/catalog-info.yaml", "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
           "metadata: {name: b}\nspec: {type: service}\n")

    catalog = load_catalog_texts([good, bad])

    assert list(catalog.services) == ["a"]
    assert [str(p) for p in catalog.problems] == [
        "acme/b/catalog-info.yaml:4: spec.lifecycle: required",
        "acme/b/catalog-info.yaml:4: spec.owner: required",
    ]


def test_facts_reference_is_up_to_date():
    run = subprocess.run([sys.executable, "scripts/gen_facts_doc.py", "--check"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_every_builtin_fact_is_in_the_reference():
    collectors.load_builtin_collectors()
    text = (ROOT / "docs" / "facts.md").read_text()
    for _, source in registry.items():
        schema = source.schema
        for fact in schema.facts:
            assert f"`{schema.namespace}.{fact.path}`" in text
