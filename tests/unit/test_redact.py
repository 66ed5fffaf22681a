"""Credentials inside URLs and token-like parameters never reach a console."""

from __future__ import annotations

import pytest

from foresight.redact import redact_url


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
