"""Credentials never reach a message through a URL."""

from __future__ import annotations

import pytest

from foresight.redact import redact_url


@pytest.mark.parametrize(("url", "expected"), [
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("https://alice:hunter2@mlflow.example:443/api", "https://alice:***@mlflow.example:443/api"),
    ("postgresql+psycopg://foresight:s3cret@db:5432/forecasts", "postgresql+psycopg://foresight:***@db:5432/forecasts"),
    ("https://ghp_TOKEN@grafana.example", "https://***@grafana.example"),
    ("http://push:9091/metrics?token=abc&job=x", "http://push:9091/metrics?token=***&job=x"),
    ("sqlite:///.foresight/mlflow.db", "sqlite:///.foresight/mlflow.db"),
    ("not a url", "not a url"),
])
def test_redact_url_masks_passwords_and_tokens(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_an_unparseable_url_still_loses_its_user_info() -> None:
    assert "hunter2" not in redact_url("http://alice:hunter2@host:notaport/x")


def test_user_info_is_masked_even_without_a_scheme() -> None:
    assert redact_url("ops:hunter2@gw:9091/metrics") == "***@gw:9091/metrics"
    assert redact_url("gw:9091/metrics") == "gw:9091/metrics"
