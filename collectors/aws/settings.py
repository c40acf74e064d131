"""The ``collectors.aws`` section of the settings file."""

from __future__ import annotations

from pydantic import Field

from collectors.base import CollectorConfig


class AwsConfig(CollectorConfig):
    regions: list[str] = Field(min_length=1, description="Regions to sweep")
    tag_key: str = Field(default="service", description="Tag whose value names the service")
    endpoint_url: str | None = Field(default=None, description="Endpoint of an "
                                     "AWS-compatible API (none: AWS)")
    assume_role_arn: str | None = Field(default=None, description="Role to assume with STS "
                                        "before reading (read-only role in the account)")
    role_session_name: str = Field(default="levelset", description="STS session name")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Connect and read timeout")
    max_attempts: int = Field(default=3, ge=1, le=10, description="botocore attempts per call")
    page_size: int = Field(default=100, ge=1, le=100, description="Tagging API page size")
    deprecated_runtimes: list[str] = Field(default_factory=list, description="Lambda runtimes "
                                           "to treat as deprecated beyond the built-in dates")
