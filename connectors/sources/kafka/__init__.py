"""Kafka source: JSON metric samples and log records, committed only after the lake write."""

from connectors.sources.kafka.source import KafkaSource

__all__ = ["KafkaSource"]
