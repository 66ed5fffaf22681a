"""Settings: precedence (kwargs > env > YAML > defaults), derived paths, strict keys and ranges with
one-line errors naming key and origin, secrets never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foresight.errors import ConfigError
from foresight.settings import DetectConfig, ForecastConfig, SinkConfig, load_settings


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
    def message(*args: object, **kwargs: object) -> str:
        with pytest.raises(ConfigError) as info:
            load_settings(*args, **kwargs)
        return info.value.message

    assert message(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: config file not found"
    assert message(max_quarantine_ratio=2.0) == "arguments: max_quarantine_ratio: 2.0 is above the maximum 1"
    bad = tmp_path / "bad.yaml"
    bad.write_text("forecastt: {}\n")
    assert message(bad) == f"{bad}: forecastt: unknown key (did you mean forecast?)"


def _problems(config: Path, text: str) -> list[str]:
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert info.value.exit_code == 2 and info.value.hint
    return info.value.message.splitlines()


def test_unknown_nested_keys_are_named_with_their_file_and_the_key_meant(tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    key = "e93facc04764012d7bfb002500d5d1a6"
    lines = _problems(config, f"forecast:\n  horizn: 48\nsinks:\n  pagerduty_routing_kye: {key}\n")
    assert sorted(lines) == [
        f"{config}: forecast.horizn: unknown key (did you mean horizon?)",
        f"{config}: sinks.pagerduty_routing_kye: unknown key (did you mean pagerduty_routing_key?)",
    ]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("forecast: {horizon: -5}", "forecast.horizon: -5 is below the minimum 1"),
        ("forecast: {level: 150}", "forecast.level: 150 is above the maximum 99"),
        ("forecast: {target_utilisation: 0}", "forecast.target_utilisation: 0 must be greater than 0"),
        ("detect: {anomaly_threshold: 7}", "detect.anomaly_threshold: 7 must be less than 1"),
        ("detect: {risk_threshold: -0.1}", "detect.risk_threshold: -0.1 is below the minimum 0"),
        ("detect: {train_fraction: 1}", "detect.train_fraction: 1 must be less than 1"),
        ("thresholds: {cpu_pct: 150}", "thresholds.cpu_pct: 150 is above the maximum 100"),
        ("sinks: {pagerduty_max_wait_seconds: .inf}", "sinks.pagerduty_max_wait_seconds: inf is not a finite number"),
        ("sources: [{name: s, max_staleness: -PT5M}]",
         "sources[0].max_staleness: -0:05:00 must be greater than 0 seconds"),
        ("sources: [{name: s, kindd: file}]", "sources[0].kindd: unknown key (did you mean kind?)"),
        ("capacity: {services: {cart: {min_sise: 2}}}",
         "capacity.services.cart.min_sise: unknown key (did you mean min_size?)"),
        ("forecast: {freq: 1hour}", "forecast.freq: '1hour' is not a pandas frequency (e.g. 5min, 1h, 1D)"),
    ],
)
def test_out_of_range_values_are_one_line_each_naming_key_and_file(tmp_path: Path, text: str, line: str) -> None:
    config = tmp_path / "settings.yaml"
    assert _problems(config, text + "\n") == [f"{config}: {line}"]


def test_each_problem_is_on_its_own_line(tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    lines = _problems(config, "forecast: {horizon: -5, level: 150}\ndetect: {anomaly_threshold: 7}\n")
    assert len(lines) == 3 and all(line.startswith(f"{config}: ") for line in lines)


def test_a_value_from_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("forecast: {level: 90}\n")
    monkeypatch.setenv("FORESIGHT_FORECAST__HORIZON", "-5")
    monkeypatch.setenv("FORESIGHT_DETECT__ANOMALY_TRESHOLD", "0.9")
    monkeypatch.setenv("FORESIGHT_SOURCES", json.dumps([{"name": "s", "max_series": 0}]))
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert sorted(info.value.message.splitlines()) == [
        "FORESIGHT_DETECT__ANOMALY_TRESHOLD: detect.anomaly_treshold: unknown key (did you mean anomaly_threshold?)",
        "FORESIGHT_FORECAST__HORIZON: forecast.horizon: '-5' is below the minimum 1",
        "FORESIGHT_SOURCES: sources[0].max_series: 0 is below the minimum 1",
    ]
    monkeypatch.setenv("FORESIGHT_SOURCES", "[not json")
    with pytest.raises(ConfigError, match="^FORESIGHT_SOURCES: sources: not valid JSON"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("forecast:\n  horizon: 24\n level: 90\n", r"settings.yaml:3:2: YAML error: .*"),
        ("forecast: [1, 2\n", r"settings.yaml:2:1: YAML error: .*expected ',' or ']'.*"),
        ("detect:\n\tlookback_hours: 4\n", r"settings.yaml:2:1: YAML error: .*"),
        ("forecast: {horizon: 24}\nforecast: {level: 90}\n",
         r"settings.yaml:2:1: YAML error: key 'forecast' is given twice \(first on line 1\)"),
        ("- horizon\n- level\n", r"settings.yaml: expected a mapping of settings .* got a list"),
    ],
)
def test_a_malformed_yaml_file_is_one_line_with_its_position(tmp_path: Path, text: str, expected: str) -> None:
    import re

    config = tmp_path / "settings.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert len(info.value.message.splitlines()) == 1
    assert re.fullmatch(re.escape(str(tmp_path)) + "/" + expected, info.value.message), info.value.message
    # No YAML traceback chained behind it.
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)


def test_every_section_refuses_unknown_keys_and_absurd_numbers() -> None:
    from pydantic import ValidationError

    for section, bad in ((ForecastConfig, {"horizn": 1}), (DetectConfig, {"lookback_hours": 0}),
                         (SinkConfig, {"pagerduty_max_attempts": 10**9})):
        with pytest.raises(ValidationError):
            section(**bad)


def test_the_repository_configs_validate() -> None:
    root = Path(__file__).resolve().parents[2]
    load_settings(root / "infra" / "local" / "foresight.yaml")


PLANTED = {
    "store": "St0rePassw0rd", "bearer": "Pr0mBearerT0ken", "basic": "Pr0mBasicPw", "sasl": "KafkaSaslPw",
    "aws": "AwsSecretAccessKey9", "mlflow": "Mlfl0wPw", "grafana_url": "GrafanaUrlPw", "push": "PushgatewayPw",
    "routing": "e93facc04764012d7bfb002500d5d1a6", "grafana_token": "glsa_GrafanaT0ken", "pd_api": "PdApiT0ken",
    "header": "HeaderBearer", "query": "QueryT0ken", "option_url": "OptionUrlPw",
}


def _planted_settings() -> dict:
    p = PLANTED
    return {
        "sources": [
            {"name": "prom", "kind": "prometheus", "options": {
                "url": f"https://reader:{p['option_url']}@prom.example:9090", "bearer_token": p["bearer"],
                "headers": {"Authorization": f"Bearer {p['header']}"}}},
            {"name": "prom2", "kind": "prometheus", "options": {
                "url": "https://prom.example", "basic_auth": {"username": "u", "password": p["basic"]}}},
            {"name": "kafka", "kind": "kafka", "options": {"sasl_username": "u", "sasl_password": p["sasl"]}},
            {"name": "cw", "kind": "cloudwatch", "options": {"aws_secret_access_key": p["aws"]}},
        ],
        "mlflow": {"tracking_uri": f"https://ml:{p['mlflow']}@mlflow.example"},
        "sinks": {
            "forecast_store_url": f"postgresql+psycopg://app:{p['store']}@db.example:5432/foresight",
            "grafana_url": f"https://admin:{p['grafana_url']}@grafana.example",
            "pushgateway_url": f"http://push:{p['push']}@pushgateway.example:9091",
            "pagerduty_routing_key": p["routing"], "grafana_token": p["grafana_token"],
            "pagerduty_api_token": p["pd_api"], "dashboard_url": f"https://grafana.example/d/x?auth_token={p['query']}",
        },
    }


def test_redacted_settings_and_reprs_mask_every_planted_secret(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, **_planted_settings())
    views = {"redacted": json.dumps(settings.redacted()), "repr": repr(settings), "str": str(settings),
             "sinks repr": repr(settings.sinks), "source repr": repr(settings.sources[0])}
    leaks = {(view, name) for view, text in views.items() for name, secret in PLANTED.items() if secret in text}
    assert leaks == set()
    shown = settings.redacted()
    # Masked, not dropped: the URL still says where, the option still says it is set.
    assert shown["sinks"]["forecast_store_url"] == "postgresql+psycopg://app:***@db.example:5432/foresight"
    assert shown["sources"][0]["options"]["bearer_token"] == "**********"
    assert shown["sources"][1]["options"]["basic_auth"] == {"username": "u", "password": "**********"}
    assert shown["sinks"]["grafana_folder_uid"] is None and shown["forecast"]["horizon"] == 168
    # The real values are still there for the code that needs them.
    assert settings.sinks.forecast_store_url.endswith(f":{PLANTED['store']}@db.example:5432/foresight")


def test_error_messages_never_echo_a_secret(tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    lines = _problems(config, (
        f"sinks:\n  pagerduty_routing_key: [{PLANTED['routing']}]\n  grafana_tokn: {PLANTED['grafana_token']}\n"
        f"sources:\n  - {{name: s, max_staleness: 'postgresql://a:{PLANTED['store']}@h/db'}}\n"
    ))
    assert len(lines) == 3
    assert not [line for line in lines for secret in PLANTED.values() if secret in line]
    assert any("postgresql://a:***@h/db" in line for line in lines)


def test_runbooks_are_checked_at_load(tmp_path: Path) -> None:
    ok = load_settings(home=tmp_path, sinks={"runbooks": {"memory_leak": "https://wiki.example.com/leak",
                                                          "errors": "https://wiki.example.com/errors"}})
    assert ok.sinks.runbooks["memory_leak"] == "https://wiki.example.com/leak"
    with pytest.raises(ConfigError, match=r"runbooks for unknown fault types or categories \['memory_leek'\]"):
        load_settings(home=tmp_path, sinks={"runbooks": {"memory_leek": "https://wiki.example.com/leak"}})
    with pytest.raises(ConfigError, match=r"runbooks \['disk_full'\]: each must be an http\(s\) URL"):
        load_settings(home=tmp_path, sinks={"runbooks": {"disk_full": "wiki/disk"}})
    with pytest.raises(ConfigError, match="grafana_url.*must be an http"):
        load_settings(home=tmp_path, sinks={"grafana_url": "grafana.local:3000"})


def test_model_artifacts_go_where_every_host_reads_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path / "h"))
    assert load_settings().artifact_location == (tmp_path / "h" / "mlartifacts").resolve().as_uri()
    # a tracking server: its own store (S3 behind it), not a folder on the host that trained
    monkeypatch.setenv("FORESIGHT_MLFLOW__TRACKING_URI", "https://mlflow.example")
    assert load_settings().artifact_location == "mlflow-artifacts:/foresight"
    monkeypatch.setenv("FORESIGHT_MLFLOW__ARTIFACT_LOCATION", "s3://models/foresight")
    assert load_settings().artifact_location == "s3://models/foresight"
