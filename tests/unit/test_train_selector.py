"""The train flow's forecaster: configured candidates, and Prophet with the event calendar."""

from __future__ import annotations

from flows.families import selector as _selector
from foresight.settings import load_settings


def test_without_events_the_selector_gets_the_configured_names() -> None:
    selector = _selector(load_settings())
    assert list(selector.params["candidates"]) == load_settings().forecast.models


def test_known_events_reach_prophet_as_holiday_regressors() -> None:
    events = [{"name": "black-friday", "start": "2026-11-27T00:00:00Z", "end": "2026-11-28T12:00:00Z"}]
    settings = load_settings(forecast={"events": events})
    candidates = _selector(settings).params["candidates"]
    [prophet] = [c for c in candidates if not isinstance(c, str)]
    assert prophet.name == "prophet"
    assert [h["ds"] for h in prophet.params["holidays"]] == ["2026-11-27", "2026-11-28"]
    assert [c for c in candidates if isinstance(c, str)] == [m for m in settings.forecast.models if m != "prophet"]
