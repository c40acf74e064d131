"""moto's AWS server on 127.0.0.1, and a way to fill it with tagged resources."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def fake_credentials() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in FAKE_CREDENTIALS}
    os.environ.update(FAKE_CREDENTIALS)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def running_moto() -> Iterator[str]:
    """The endpoint URL of a moto server on a free loopback port."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class AwsAccount:
    """Creates tagged resources in the moto server, the way an operator would with boto3."""

    def __init__(self, endpoint: str, tag_key: str = "service") -> None:
        self.endpoint, self.tag_key = endpoint, tag_key
        self._role: str | None = None

    def client(self, service: str, region: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=region)

    def bucket(self, region: str, name: str, tag: str | None, *, encrypted: bool = False,
               versioned: bool = False, public_access_blocked: bool = False) -> None:
        s3 = self.client("s3", region)
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name,
                             CreateBucketConfiguration={"LocationConstraint": region})
        if tag is not None:
            s3.put_bucket_tagging(Bucket=name,
                                  Tagging={"TagSet": [{"Key": self.tag_key, "Value": tag}]})
        if encrypted:
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        if versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if public_access_blocked:
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True,
                "BlockPublicPolicy": True, "RestrictPublicBuckets": True})

    def database(self, region: str, name: str, tag: str, *, retention: int, multi_az: bool,
                 encrypted: bool) -> None:
        self.client("rds", region).create_db_instance(
            DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres",
            MasterUsername="admin1", MasterUserPassword="not-a-secret-1", AllocatedStorage=20,
            BackupRetentionPeriod=retention, MultiAZ=multi_az, StorageEncrypted=encrypted,
            Tags=[{"Key": self.tag_key, "Value": tag}])

    def function(self, region: str, name: str, tag: str, runtime: str) -> None:
        if self._role is None:
            self._role = self.client("iam", "us-east-1").create_role(
                RoleName="lambda-exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        self.client("lambda", region).create_function(
            FunctionName=name, Runtime=runtime, Role=self._role, Handler="app.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18}, Tags={self.tag_key: tag})

    def table(self, region: str, name: str, tag: str, *, pitr: bool) -> None:
        dynamodb = self.client("dynamodb", region)
        dynamodb.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            Tags=[{"Key": self.tag_key, "Value": tag}])
        if pitr:
            dynamodb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})

    def alarm(self, region: str, name: str, tag: str) -> None:
        self.client("cloudwatch", region).put_metric_alarm(
            AlarmName=name, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum",
            Period=60, EvaluationPeriods=1, Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
            Tags=[{"Key": self.tag_key, "Value": tag}])
