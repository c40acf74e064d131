"""What ``levelset doctor`` checks of AWS: that the credentials are accepted in the first
configured region, as the role the collector reads with when ``assume_role_arn`` is set."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from collectors.aws.settings import AwsConfig
from collectors.base import FactsRead, Finding, SourceDoctor

NEEDS = ("read-only IAM: tag:GetResources, s3:GetEncryptionConfiguration, "
         "s3:GetBucketVersioning, s3:GetBucketPublicAccessBlock, rds:DescribeDBInstances, "
         "lambda:ListFunctions, dynamodb:DescribeContinuousBackups (e.g. the "
         "ReadOnlyAccess policy), and sts:AssumeRole when assume_role_arn is set")

CREDENTIALS_FIX = ("set AWS credentials (AWS_PROFILE, or a role) with the read-only "
                   "permissions in docs/facts.md")


class AwsDoctor(SourceDoctor):
    def check(self, settings: AwsConfig, facts_read: FactsRead) -> list[Finding]:
        region = settings.regions[0]  # the settings require one; none is invented
        config = Config(connect_timeout=settings.timeout_seconds,
                        read_timeout=settings.timeout_seconds,
                        retries={"max_attempts": settings.max_attempts, "mode": "standard"})

        def sts(session: Any) -> Any:
            return session.client("sts", region_name=region, config=config,
                                  endpoint_url=settings.endpoint_url)

        session = boto3.Session()
        arn = settings.assume_role_arn
        if arn:
            try:
                answer = sts(session).assume_role(RoleArn=arn,
                                                  RoleSessionName=settings.role_session_name)
            except (BotoCoreError, ClientError) as error:
                return [Finding("aws", f"cannot assume role {arn}: {_reason(error)}",
                                "let the credentials assume the role (sts:AssumeRole in its "
                                "trust policy), or fix collectors.aws.assume_role_arn")]
            credentials = answer["Credentials"]
            session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                                    aws_secret_access_key=credentials["SecretAccessKey"],
                                    aws_session_token=credentials["SessionToken"])
        try:
            identity = sts(session).get_caller_identity()
        except (BotoCoreError, ClientError) as error:
            return [Finding("aws", f"no usable credentials or endpoint in {region}: "
                            f"{_reason(error)}", CREDENTIALS_FIX)]
        who = identity.get("Arn") or "an identity"
        return [Finding("aws", f"credentials of {who} accepted in {region}")]

    def credentials(self) -> list[str]:
        return [NEEDS[0].upper() + NEEDS[1:] + "."]


def _reason(error: BotoCoreError | ClientError) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "error")
    return f"{type(error).__name__}: {error}"
