"""Credentials never reach a message through a URL or a key=value pair."""

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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("connection to postgresql+psycopg://app:s3cret@db:5432/forecasts failed",
         "connection to postgresql+psycopg://app:***@db:5432/forecasts failed"),
        ("http://u:p@ss@push:9091/metrics", "http://u:***@push:9091/metrics"),  # an unescaped @ in the password
        ("https://ghp_0123456789abcdef@github.com/org/repo", "https://***@github.com/org/repo"),
        ("GET https://hooks.example/x?token=abc123&page=2", "GET https://hooks.example/x?token=***&page=2"),
        ("?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA%2F2026", "?X-Amz-Signature=***&X-Amz-Credential=***"),
        ("api_key=k1 routing_key=R0UT1NG password=hunter2", "api_key=*** routing_key=*** password=***"),
        ("'postgresql://a:b@h/db'", "'postgresql://a:***@h/db'"),
    ],
)
def test_credentials_are_masked(text: str, expected: str) -> None:
    assert redact_url(text) == expected


@pytest.mark.parametrize("text", [
    "http://prometheus:9090/api/v1/query?query=up&step=60",
    "mail ops@example.com about design=v2 by author=me",
    "line 17: not UTF-8 (byte 0xff at column 12)",
])
def test_text_without_credentials_is_unchanged(text: str) -> None:
    assert redact_url(text) == text
