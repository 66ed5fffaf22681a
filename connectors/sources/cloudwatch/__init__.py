"""AWS CloudWatch source: pure query builders (``queries``), response handling (``results``), the source."""

from connectors.sources.cloudwatch.source import CloudWatchSource

__all__ = ["CloudWatchSource"]
