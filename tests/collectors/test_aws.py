"""The AWS collector against moto's server, with resources in two regions."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.aws.collector import AwsCollector, all_of, parse_arn
from tests.collectors.conftest import EU, US, service
from tests.realparts.httpserver import LocalHTTPServer, Reply, Request, forward


def collector(endpoint: str, **settings: object) -> AwsCollector:
    return AwsCollector({"regions": [EU, US], "endpoint_url": endpoint, **settings})


def test_facts_cover_every_resource_of_the_service_in_every_region(aws_endpoint, aws_services):
    result = collector(aws_endpoint).collect(aws_services)

    assert result.failures == {} and result.errors == []
    orders = result.facts["orders"]
    assert orders["resource_count"] == 8
    assert orders["resource_types"] == ["cloudwatch", "dynamodb", "lambda", "rds", "s3"]
    assert sorted(orders["s3"]["buckets"], key=lambda b: b["name"]) == [
        {"name": "orders-archive", "encrypted": False, "versioning": False,
         "public_access_blocked": False},
        {"name": "orders-data", "encrypted": True, "versioning": True,
         "public_access_blocked": True},
    ]
    assert orders["s3"]["all_encrypted"] is False
    assert {i["id"]: (i["region"], i["backup_retention_days"], i["multi_az"], i["encrypted"])
            for i in orders["rds"]["instances"]} == {
        "orders-db": (EU, 7, True, True), "orders-replica": (US, 1, False, False)}
    assert orders["rds"]["min_backup_retention_days"] == 1
    assert orders["rds"]["all_multi_az"] is False
    assert {f["name"]: (f["runtime"], f["runtime_deprecated"])
            for f in orders["lambda"]["functions"]} == {
        "orders-api": ("python3.12", False), "orders-cron": ("python3.8", True)}
    assert orders["lambda"]["deprecated_runtimes"] == 1
    assert orders["dynamodb"] == {
        "tables": [{"name": "orders", "region": EU, "point_in_time_recovery": True}],
        "all_point_in_time_recovery": True}
    assert orders["cloudwatch"] == {"alarms": 1}


def test_the_tag_value_comes_from_the_annotation(aws_endpoint, aws_services):
    payments = collector(aws_endpoint).collect(aws_services).facts["payments-svc"]

    assert payments["resource_types"] == ["cloudwatch", "dynamodb"]
    assert payments["dynamodb"]["all_point_in_time_recovery"] is False
    assert payments["cloudwatch"]["alarms"] == 2  # one per region


def test_a_service_without_resources_gets_every_summary_vacuously_true(aws_endpoint,
                                                                       aws_services):
    empty = collector(aws_endpoint).collect(aws_services).facts["empty"]

    assert empty["resource_count"] == 0
    assert empty["s3"] == {"buckets": [], "all_encrypted": True, "all_versioned": True,
                           "all_public_access_blocked": True}
    assert empty["rds"]["instances"] == [] and empty["rds"]["all_encrypted"] is True
    assert empty["rds"]["min_backup_retention_days"] is None  # no minimum of nothing
    assert empty["lambda"] == {"functions": [], "deprecated_runtimes": 0}
    assert empty["dynamodb"]["all_point_in_time_recovery"] is True
    assert empty["cloudwatch"]["alarms"] == 0


def test_tagging_sweep_costs_one_call_per_page_per_region_whatever_the_services(aws_endpoint):
    # Tagged ARNs moto lists per region: eu-west-1 has 2 buckets, 1 db, 1 function,
    # 2 tables and 2 alarms; us-east-1 lists the same 2 buckets (S3 ARNs carry no region),
    # 1 db, 1 function, 3 tables and 1 alarm.
    tagged = {EU: 8, US: 8}
    few = collector(aws_endpoint, page_size=3).collect([service("empty")])
    many = collector(aws_endpoint, page_size=3).collect(
        [service(f"svc-{n}") for n in range(50)])

    for region, count in tagged.items():
        key = f"{region} resourcegroupstaggingapi:GetResources"
        assert few.calls[key] == many.calls[key] == math.ceil(count / 3)
    # no resource of those services: nothing read beyond the sweep
    assert few.requests == many.requests == 2 * math.ceil(8 / 3)


def test_requests_count_every_call_of_the_run(aws_endpoint, aws_services):
    result = collector(aws_endpoint).collect(aws_services)

    # 1 sweep page per region; 3 settings x 2 buckets; 2 PITR (orders, payments);
    # 1 RDS and 1 Lambda listing per region.
    assert result.calls[f"{EU} resourcegroupstaggingapi:GetResources"] == 1
    assert result.requests == sum(result.calls.values()) == 2 + 6 + 2 + 2 + 2


@contextmanager
def denying_proxy(upstream: str, deny: Callable[[Request], Reply | None]) -> Iterator[str]:
    """A proxy in front of moto that answers some requests itself (AWS-shaped errors)."""
    server = LocalHTTPServer(lambda request: deny(request) or forward(upstream, request))
    with server.running():
        yield server.url


def _s3_access_denied(request: Request) -> Reply | None:
    if request.path == "/orders-data" and "encryption" in request.query:
        body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                b"<Message>Access Denied</Message></Error>")
        return Reply(403, body, {"Content-Type": "application/xml"})
    return None


def test_access_denied_on_one_setting_leaves_that_fact_unknown(aws_endpoint, aws_services):
    with denying_proxy(aws_endpoint, _s3_access_denied) as endpoint:
        result = collector(endpoint).collect(aws_services)

    assert result.failures == {}
    assert result.errors == ["s3:GetBucketEncryption orders-data: AccessDenied"]
    buckets = {b["name"]: b for b in result.facts["orders"]["s3"]["buckets"]}
    assert buckets["orders-data"]["encrypted"] is None
    assert buckets["orders-data"]["versioning"] is True
    # the other bucket is unencrypted, so "all encrypted" is false even with one unknown
    assert result.facts["orders"]["s3"]["all_encrypted"] is False


def _tagging_denied(request: Request) -> Reply | None:
    if request.headers.get("x-amz-target", "").endswith(".GetResources"):
        body = json.dumps({"__type": "AccessDeniedException",
                           "message": "not authorized to perform tag:GetResources"})
        return Reply(400, body.encode(), {"Content-Type": "application/x-amz-json-1.1"})
    return None


def test_a_failed_sweep_fails_every_service_with_the_reason(aws_endpoint, aws_services):
    with denying_proxy(aws_endpoint, _tagging_denied) as endpoint:
        result = collector(endpoint).collect(aws_services)

    assert result.facts == {}
    assert result.failures == {
        s.name: f"AWS {EU}: tagging:GetResources failed: AccessDeniedException"
        for s in aws_services}


def test_assume_role_goes_through_sts(aws_endpoint, aws_services):
    arn = "arn:aws:iam::123456789012:role/levelset-read"
    result = collector(aws_endpoint, assume_role_arn=arn).collect(aws_services)

    assert result.calls[f"{EU} sts:AssumeRole"] == 1
    assert result.facts["orders"]["resource_count"] == 8


def test_unreachable_endpoint_fails_every_service(aws_services):
    result = collector("http://127.0.0.1:9", max_attempts=1, timeout_seconds=2).collect(
        aws_services)

    assert set(result.failures.values()) == {
        f"AWS {EU}: tagging:GetResources failed: EndpointConnectionError"}


@pytest.mark.parametrize(("values", "expected"), [
    ([], True), ([True, True], True), ([True, None], None), ([None, False], False),
])
def test_all_of_is_three_valued(values, expected):
    assert all_of(values) is expected


def test_arns_name_their_resource():
    assert parse_arn("arn:aws:s3:::orders-data", EU).name == "orders-data"
    assert parse_arn("arn:aws:rds:us-east-1:1:db:orders-db", EU).region == US
    assert parse_arn("arn:aws:lambda:eu-west-1:1:function:api:prod", EU).name == "api"
    assert parse_arn("arn:aws:dynamodb:eu-west-1:1:table/t/stream/x", EU).name == ""


@given(st.lists(st.sampled_from([True, False, None])))
def test_all_of_is_kleene_and(values):
    expected = False if False in values else (None if None in values else True)
    assert all_of(values) is expected
