"""Settings: precedence (kwargs > env > YAML > defaults), derived paths, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from foresight.settings import load_settings


def test_defaults_live_under_one_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path / "h"))
    s = load_settings()
    assert s.lake_location == str(tmp_path / "h" / "lake")
    assert s.tracking_uri == f"sqlite:///{(tmp_path / 'h' / 'mlflow.db').resolve()}"
    assert s.forecast_store_url.endswith("/h/forecasts.db")
    assert s.outbox_path == tmp_path / "h" / "outbox" / "pagerduty-events.jsonl"
    assert [src.kind for src in s.sources] == ["simulator"]


def test_env_overrides_yaml_and_kwargs_override_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "foresight.yaml"
    config.write_text("forecast:\n  horizon: 24\n  level: 90\nthresholds:\n  cpu_pct: 75\n")
    monkeypatch.setenv("FORESIGHT_FORECAST__HORIZON", "48")
    s = load_settings(config)
    assert (s.forecast.horizon, s.forecast.level, s.thresholds["cpu_pct"]) == (48, 90, 75)
    assert load_settings(config, home=tmp_path / "x").home == tmp_path / "x"


def test_secrets_are_masked_in_every_loggable_view(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESIGHT_SINKS__PAGERDUTY_ROUTING_KEY", "R0UT1NGKEY-secret")
    s = load_settings()
    assert s.sinks.pagerduty_routing_key.get_secret_value() == "R0UT1NGKEY-secret"
    assert "R0UT1NGKEY" not in repr(s) and "R0UT1NGKEY" not in str(s.redacted())


def test_missing_config_file_and_bad_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_settings(tmp_path / "nope.yaml")
    with pytest.raises(ValidationError, match="max_quarantine_ratio"):
        load_settings(max_quarantine_ratio=2.0)
    bad = tmp_path / "bad.yaml"
    bad.write_text("forecastt: {}\n")
    with pytest.raises(ValidationError, match="forecastt"):
        load_settings(bad)
