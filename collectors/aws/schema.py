"""The ``aws.*`` facts: resources tagged with the service's name, and their settings."""

from __future__ import annotations

from core.schema import Fact, FactSchema, FactType, facts

T = FactType

SCHEMA = FactSchema(
    namespace="aws",
    description="AWS resources found by tag (Resource Groups Tagging API), per region.",
    facts=facts(
        ("resource_count", T.INT, "Tagged resources of every type.", "tagging:GetResources"),
        ("resource_types", T.STRING_LIST, "Types of tagged resources (s3, rds, lambda, ...).",
         "tagging:GetResources"),
        Fact("s3.buckets", T.OBJECT_LIST, "Tagged S3 buckets.", "tagging:GetResources", items=facts(
            ("name", T.STRING, "Bucket name.", ""),
            ("encrypted", T.BOOL, "Default encryption is configured.", "s3:GetBucketEncryption"),
            ("versioning", T.BOOL, "Versioning is enabled.", "s3:GetBucketVersioning"),
            ("public_access_blocked", T.BOOL, "All four public access block settings are on.",
             "s3:GetPublicAccessBlock"),
        )),
        ("s3.all_encrypted", T.BOOL, "Every tagged bucket has default encryption.", "s3"),
        ("s3.all_versioned", T.BOOL, "Every tagged bucket has versioning enabled.", "s3"),
        ("s3.all_public_access_blocked", T.BOOL, "Every tagged bucket blocks public access.", "s3"),
        Fact("rds.instances", T.OBJECT_LIST, "Tagged RDS DB instances.", "rds:DescribeDBInstances",
             items=facts(
                 ("id", T.STRING, "DB instance identifier.", ""),
                 ("region", T.STRING, "AWS region.", ""),
                 ("engine", T.STRING, "Database engine.", ""),
                 ("backup_retention_days", T.INT, "Automated backup retention.", ""),
                 ("multi_az", T.BOOL, "Multi-AZ deployment.", ""),
                 ("encrypted", T.BOOL, "Storage encryption.", ""),
             )),
        ("rds.min_backup_retention_days", T.INT,
         "Lowest backup retention among instances (absent when there are none).",
         "rds:DescribeDBInstances"),
        ("rds.all_multi_az", T.BOOL, "Every instance is multi-AZ.", "rds"),
        ("rds.all_encrypted", T.BOOL, "Every instance has storage encryption.", "rds"),
        Fact("lambda.functions", T.OBJECT_LIST, "Tagged Lambda functions.",
             "lambda:ListFunctions", items=facts(
                 ("name", T.STRING, "Function name.", ""),
                 ("region", T.STRING, "AWS region.", ""),
                 ("runtime", T.STRING, "Runtime identifier, e.g. python3.12.", ""),
                 ("runtime_deprecated", T.BOOL, "The runtime is deprecated by AWS.", ""),
             )),
        ("lambda.deprecated_runtimes", T.INT, "Functions on a deprecated runtime.", "lambda"),
        Fact("dynamodb.tables", T.OBJECT_LIST, "Tagged DynamoDB tables.",
             "dynamodb:DescribeContinuousBackups", items=facts(
                 ("name", T.STRING, "Table name.", ""),
                 ("region", T.STRING, "AWS region.", ""),
                 ("point_in_time_recovery", T.BOOL, "PITR is enabled.", ""),
             )),
        ("dynamodb.all_point_in_time_recovery", T.BOOL, "Every table has PITR enabled.",
         "dynamodb"),
        ("cloudwatch.alarms", T.INT, "CloudWatch alarms tagged with the service.",
         "tagging:GetResources + cloudwatch:DescribeAlarms"),
    ),
)
