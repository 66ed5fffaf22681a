"""Prometheus source: pure range planning (query), decoding (decode), HTTP executor (client)."""

from connectors.sources.prometheus.source import PrometheusSource

__all__ = ["PrometheusSource"]
