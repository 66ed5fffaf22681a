"""Prometheus source: pure range planning (query), decoding (decode), HTTP executor (client)."""

from connectors.prometheus.source import PrometheusSource

__all__ = ["PrometheusSource"]
