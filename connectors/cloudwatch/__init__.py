"""AWS CloudWatch source: pure query builders (``queries``), response handling (``results``), the source."""

from connectors.cloudwatch.source import CloudWatchSource

__all__ = ["CloudWatchSource"]
