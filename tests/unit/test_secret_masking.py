"""foresight.redact: what counts as a credential, and masking it in URLs, text and nested settings."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from foresight.redact import MASK, is_secret_key, redact, redact_url


@pytest.mark.parametrize("name", ["password", "sasl_password", "ssl_password", "bearer_token", "api_key", "X-Api-Key",
                                  "aws_secret_access_key", "aws_access_key_id", "pagerduty_routing_key",
                                  "Authorization", "grafana_token", "client_secret", "passphrase", "pwd", "key"])
def test_credential_names_are_recognised(name: str) -> None:
    assert is_secret_key(name)


@pytest.mark.parametrize("name", ["url", "username", "sasl_username", "dedup_key_prefix", "region", "step",
                                  "bypass", "max_attempts", "series", "group_id", "keyword"])
def test_ordinary_names_are_not(name: str) -> None:
    assert not is_secret_key(name)


@pytest.mark.parametrize(("text", "expected"), [
    ("connect to postgresql://app:pa/ss@word@db:5432/f failed",
     "connect to postgresql://app:***@db:5432/f failed"),  # SQLAlchemy accepts '/' and '@' raw
    ("https://push:pw@a:9091 and http://u:v@b", "https://push:***@a:9091 and http://u:***@b"),
    ("http://host:9090/api/v1/query?query=up&api_key=abc", "http://host:9090/api/v1/query?query=up&api_key=***"),
    ("kafka:9092", "kafka:9092"),
])
def test_urls_inside_text_lose_their_credentials(text: str, expected: str) -> None:
    assert redact_url(text) == expected


def test_redact_masks_by_key_type_and_url_at_any_depth() -> None:
    settings = {
        "sinks": {"grafana_token": SecretStr("g"), "pagerduty_api_token": None, "grafana_url": "https://a:pw@g"},
        "sources": [{"options": {"basic_auth": {"username": "u", "password": "p"}, "headers": {"Cookie": "c"},
                                 "brokers": ["SASL_SSL://u:pw@k:9093"], "credentials": {"a": 1}}}],
    }
    assert redact(settings) == {
        "sinks": {"grafana_token": MASK, "pagerduty_api_token": None, "grafana_url": "https://a:***@g"},
        "sources": [{"options": {"basic_auth": {"username": "u", "password": MASK}, "headers": {"Cookie": MASK},
                                 "brokers": ["SASL_SSL://u:***@k:9093"], "credentials": MASK}}],
    }
