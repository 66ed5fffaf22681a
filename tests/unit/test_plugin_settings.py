"""Per-plugin settings are checked when a flow loads the settings: a detector parameter or a stream
setting that does not exist, or has the wrong type, fails at start-up naming the key, where it came
from and the choices (flows.resources.settings_for_run), not in the middle of a train run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.resources import settings_for_run
from foresight.errors import ConfigError
from foresight.settings import load_settings


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
    assert head == f"{config}: detect.stream_params.open_treshold: unknown stream setting (did you mean open_threshold?)"
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
