"""boto3 clients for the AWS edges: the standard credential chain, one retry layer (the client's)."""

from __future__ import annotations

from typing import Any

AwsClient = Any  # a boto3 client (boto3 is imported lazily)


def aws_client(
    service: str,
    *,
    region: str,
    endpoint_url: str | None = None,
    max_attempts: int = 5,
    connect_timeout: float = 10.0,
    read_timeout: float = 30.0,
) -> AwsClient:
    """A boto3 client for ``service``: credentials from the standard chain (environment, profile,
    instance role), ``standard`` retry mode with ``max_attempts`` attempts in all; ``endpoint_url``
    points it at moto or a VPC endpoint."""
    try:
        import boto3  # lazy: boto3 only for AWS sinks
        from botocore.config import Config  # lazy: boto3 only for AWS sinks
    except ImportError as exc:  # pragma: no cover - boto3 is in the lock file
        raise ImportError("the AWS connectors need boto3: pip install boto3") from exc
    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return boto3.session.Session(region_name=region).client(service, endpoint_url=endpoint_url, config=config)
