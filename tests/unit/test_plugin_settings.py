"""Per-plugin settings are typed (each plug-in's ``Settings``) and checked when a flow or the CLI
loads the settings: a source option, a detector parameter or a stream setting that does not exist,
has the wrong type or is out of range fails at start-up naming the key, where it came from and,
for an unknown one, the choices (flows.resources.settings_for_run), not in the middle of a run."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from connectors.sources.base import SOURCES
from flows.resources import settings_for_run
from foresight.cli import app
from foresight.errors import ConfigError
from foresight.settings import load_settings
from models.anomaly.base import DETECTORS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path / "home"))


def _problems(**env: object) -> list[str]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(f"FORESIGHT_DETECT__{key.upper()}", value if isinstance(value, str) else json.dumps(value))
        with pytest.raises(ConfigError) as err:
            settings_for_run(None)
    return err.value.message.splitlines()


def test_a_detector_parameter_it_does_not_take_is_named_with_the_choices() -> None:
    [line] = _problems(detector_params={"supress": False, "onset": 5.0})
    head, choices = line.split("; choose from: ")
    assert head == ("FORESIGHT_DETECT__DETECTOR_PARAMS: detect.detector_params.supress: not a parameter of "
                    "anomaly detector 'streaming_ensemble' (did you mean suppress?)")
    assert {"suppress", "onset", "knn_k", "robust_z", "context_days"} <= set(choices.split(", "))
    [line] = _problems(detector="rolling_zscore", detector_params={"windw": "1h"})
    assert line.endswith("detect.detector_params.windw: not a parameter of anomaly detector 'rolling_zscore' "
                         "(did you mean window?); choose from: min_periods, window")


def test_an_unknown_detector_is_named_with_the_choices() -> None:
    [line] = _problems(detector="isolation_forest")
    assert line.startswith("FORESIGHT_DETECT__DETECTOR: detect.detector: unknown anomaly detector 'isolation_forest'; "
                           "choose one of: knn, robust_seasonal,")


def test_stream_settings_are_typed_and_an_unknown_one_is_named_with_the_choices(tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("detect:\n  stream_params:\n    open_treshold: 9\n")
    with pytest.raises(ConfigError) as err:
        settings_for_run(str(config))
    [line] = err.value.message.splitlines()
    head, choices = line.split("; choose from: ")
    assert head == (f"{config}: detect.stream_params.open_treshold: not a parameter of incident builder 'stream' "
                    "(did you mean open_threshold?)")
    assert {"open_threshold", "page_budget_per_day", "error_material"} <= set(choices.split(", "))
    assert _problems(stream_params={"corroboration": 2.5, "open_threshold": "9"}) == [
        "FORESIGHT_DETECT__STREAM_PARAMS: detect.stream_params.corroboration: 2.5: input should be a valid integer",
        "FORESIGHT_DETECT__STREAM_PARAMS: detect.stream_params.open_threshold: '9': input should be a valid number",
    ]
    assert _problems(stream_params={"split_threshold": 1.0}) == [
        "FORESIGHT_DETECT__STREAM_PARAMS: detect.stream_params: split_threshold (1.0) must be at least "
        "open_threshold (6.0)"
    ]


def test_good_plugin_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESIGHT_DETECT__DETECTOR_PARAMS", '{"suppress": true, "onset": 5.0}')
    monkeypatch.setenv("FORESIGHT_DETECT__STREAM_PARAMS",
                       '{"open_threshold": 9, "split_threshold": 12.0, "page_budget_per_day": null}')
    settings = settings_for_run(None)
    assert settings.detect.detector_params == {"suppress": True, "onset": 5.0}  # passed on as given
    assert settings.detect.stream_params["open_threshold"] == 9


def test_core_settings_run_the_checks_an_entry_point_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Core cannot see the plug-ins; a check given to load_settings reports like any bad key."""
    monkeypatch.setenv("FORESIGHT_FORECAST__HORIZON", "48")
    assert load_settings(checks=(lambda s: [],)).forecast.horizon == 48
    with pytest.raises(ConfigError) as err:
        load_settings(checks=(lambda s: [(("forecast", "horizon"), "too far"), (("detect", "detector"), "no")],))
    assert err.value.message.splitlines() == ["FORESIGHT_FORECAST__HORIZON: forecast.horizon: too far",
                                              "defaults: detect.detector: no"]


def _config_problems(tmp_path: Path, text: str) -> list[str]:
    config = tmp_path / "settings.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as err:
        settings_for_run(str(config))
    prefix = f"{config}: "
    assert all(line.startswith(prefix) for line in err.value.message.splitlines()), err.value.message
    return [line.removeprefix(prefix) for line in err.value.message.splitlines()]


def test_a_mistyped_or_out_of_range_detector_parameter_fails_at_load_naming_the_key(tmp_path: Path) -> None:
    assert _config_problems(tmp_path, "detect:\n  detector_params: {onset: high, coarse_block: 0, context_days: -1}\n") == [
        "detect.detector_params.context_days: -1 must be greater than 0",
        "detect.detector_params.coarse_block: 0 is below the minimum 1",
        "detect.detector_params.onset: 'high': input should be a valid number",
    ]
    # the detector's own rules between its parameters, by the same code its constructor runs
    assert _config_problems(tmp_path, "detect:\n  detector: knn\n  detector_params: {k: 50, history: 10}\n") == [
        "detect.detector_params: k (50) must not exceed history (10)"]
    assert _config_problems(tmp_path, "detect:\n  detector: rolling_zscore\n  detector_params: {window: soon}\n") == [
        "detect.detector_params.window: 'soon' is not a duration (e.g. 30min, 2h, 1D)"]
    assert _config_problems(
        tmp_path, "detect:\n  detector: robust_seasonal\n  detector_params: {directions: {cpu_pct: sideways}}\n"
    ) == ["detect.detector_params.directions.cpu_pct: 'sideways': input should be 'up', 'down' or 'both'"]


def test_a_bad_source_option_fails_at_load_naming_the_source_and_key(tmp_path: Path) -> None:
    problems = _config_problems(tmp_path, """
sources:
  - {name: sim, kind: simulator, options: {days: 0, step_minutes: 7}}
  - name: bus
    kind: kafka
    options: {bootstrap_servers: "b:9092", group_id: g, metrics_topics: [m], max_messages: many, sasl_password: hunter2}
""")
    assert problems == [
        "sources[0].options.days: 0 is below the minimum 1",
        "sources[0].options.step_minutes: step_minutes must divide a day evenly, got 7",
        "sources[1].options.max_messages: 'many': input should be a valid integer, unable to parse string as an integer",
    ]
    [line] = _config_problems(tmp_path, "sources:\n  - {name: f, kind: file, options: {path: t.csv, unti: percent}}\n")
    assert line == ("sources[0].options.unti: not an option of source 'file' (did you mean unit?); "
                    "choose from: catalogue, path, unit")
    assert _config_problems(tmp_path, "sources:\n  - {name: f, kind: file}\n") == [
        "sources[0].options.path: required, not set"]
    [line] = _config_problems(tmp_path, "sources:\n  - {name: p, kind: promethues}\n")
    assert line.startswith("sources[0].kind: unknown source 'promethues'; choose one of: ")
    assert {"cloudwatch", "file", "kafka", "prometheus", "simulator"} <= set(line.split(": ")[-1].split(", "))


def test_a_secret_source_option_is_never_echoed(tmp_path: Path) -> None:
    problems = _config_problems(tmp_path, """
sources:
  - name: bus
    kind: kafka
    options: {bootstrap_servers: "b:9092", group_id: g, metrics_topics: [m], sasl_password: [hunter2]}
""")
    assert problems == ["sources[0].options.sasl_password: input should be a valid string"]


def test_an_unknown_forecaster_is_named_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESIGHT_FORECAST__MODELS", '["ses", "arima"]')
    with pytest.raises(ConfigError) as err:
        settings_for_run(None)
    [line] = err.value.message.splitlines()
    assert line.startswith("FORESIGHT_FORECAST__MODELS: forecast.models[1]: unknown forecaster 'arima'; choose one of: ")
    assert "seasonal_naive" in line


def test_the_cli_reports_a_bad_plugin_setting_before_any_flow(tmp_path: Path) -> None:
    config = tmp_path / "foresight.yaml"
    config.write_text("sources:\n  - {name: sim, kind: simulator, options: {dayz: 3}}\n")
    result = CliRunner().invoke(app, ["settings", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert f"{config}: sources[0].options.dayz: not an option of source 'simulator' (did you mean days?)" in result.output


def test_the_shipped_and_default_configs_still_load() -> None:
    local = settings_for_run(str(ROOT / "infra" / "local" / "foresight.yaml"))
    assert [s.kind for s in local.sources] == ["prometheus", "cloudwatch", "kafka"]
    # prefect.yaml's config_file, as `prefect deploy` renders it: tests/unit/test_prefect_yaml.py


@pytest.mark.parametrize("kind", ["file", "simulator"])
def test_a_source_settings_defaults_are_its_constructors(kind: str) -> None:
    model, factory = SOURCES.settings_model(kind), SOURCES.get(kind)
    defaults = {p.name: p.default for p in inspect.signature(factory).parameters.values()
                if p.name != "name" and p.default is not inspect.Parameter.empty}
    assert {k: model.model_fields[k].default for k in defaults} == defaults
    assert set(model.model_fields) == {p for p in inspect.signature(factory).parameters if p != "name"}


@pytest.mark.parametrize("name", DETECTORS.names())
def test_a_detector_settings_defaults_are_its_constructors(name: str) -> None:
    """Settings and constructor agree: every default the settings declare builds the same detector."""
    detector, model = DETECTORS.get(name), DETECTORS.settings_model(name)
    for p in inspect.signature(detector.__init__).parameters.values():
        if p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"):
            assert p.name in model.model_fields
            if p.default is not None:
                assert model.model_fields[p.name].default == p.default, p.name
    declared = {k: v for k, v in model().model_dump().items() if v is not None}  # every declared default
    frame = _telemetry()
    by_default = detector().fit(frame).predict(frame)["score"]
    assert detector(**declared).fit(frame).predict(frame)["score"].equals(by_default)


def _telemetry() -> pd.DataFrame:
    """Ten days of a noisy daily cycle at 15-minute steps with a spike on the last day."""
    ds = pd.date_range("2024-03-04", periods=10 * 96, freq="15min", tz="UTC")
    rng = np.random.default_rng(3)
    y = 50 + 10 * np.sin(2 * np.pi * np.arange(ds.size) / 96) + rng.normal(0, 1, ds.size)
    y[-40] += 30
    return pd.DataFrame({"unique_id": "svc/host/cpu_pct", "ds": ds, "y": y})
