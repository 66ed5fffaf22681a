"""Per service and minute log aggregates: full counts per changed minute, late lines, state."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from features.logs.aggregate import LogAggregator, normalise_level, series_id, template_metric

T0 = pd.Timestamp("2026-03-01T10:00:00Z").timestamp()


def _values(telemetry: pd.DataFrame) -> dict[tuple[str, str], float]:
    return {(str(u), ts.strftime("%H:%M")): y for u, ts, y in telemetry.itertuples(index=False)}


@pytest.mark.parametrize(
    ("raw", "level"),
    [
        ("ERROR", "error"),
        ("fatal", "error"),
        ("Warning", "warn"),
        ("INFO", "info"),
        ("trace", "debug"),
        ("weird", "other"),
    ],
)
def test_levels_are_normalised(raw: str, level: str) -> None:
    assert normalise_level(raw) == level


def test_a_minute_comes_out_with_its_full_counts_and_again_when_a_line_joins_it() -> None:
    agg = LogAggregator()
    for i, level in enumerate(["INFO", "ERROR", "INFO", "WARN"]):
        agg.add("cart", T0 + i, level, "T1" if i % 2 else "T2", is_new=i < 2)
    agg.add("search", T0 + 61, "INFO", "T9")
    telemetry, catalogue = agg.take_changed()
    got = _values(telemetry)
    assert got[(series_id("cart", "log_lines"), "10:00")] == 4
    assert got[(series_id("cart", "log_lines_error"), "10:00")] == 1
    assert got[(series_id("cart", "log_error_ratio"), "10:00")] == 0.25
    assert got[(series_id("cart", "log_new_templates"), "10:00")] == 2
    assert got[(series_id("cart", template_metric("T1")), "10:00")] == 2
    assert got[(series_id("search", "log_lines"), "10:01")] == 1
    assert not telemetry.duplicated(["unique_id", "ds"]).any()
    assert str(telemetry["ds"].dtype) == "datetime64[us, UTC]"
    units = dict(zip(catalogue["metric"], catalogue["unit"], strict=True))
    assert units["log_error_ratio"] == "ratio" and units["log_lines"] == "count"
    assert agg.pending == 0 and agg.take_changed()[0].empty
    agg.add(
        "cart", T0 + 30, "ERROR", "T1"
    )  # a late line for a minute already written: the whole minute again
    again = _values(agg.take_changed()[0])
    assert again[(series_id("cart", "log_lines"), "10:00")] == 5
    assert again[(series_id("cart", "log_error_ratio"), "10:00")] == 0.4
    assert (series_id("search", "log_lines"), "10:01") not in again


def test_a_line_for_a_forgotten_minute_is_late_and_never_overwrites_the_full_count() -> None:
    agg = LogAggregator(retain_minutes=2)
    agg.add("cart", T0, "INFO", "T1")
    agg.take_changed()
    agg.add("cart", T0 + 10 * 60, "INFO", "T1")
    assert agg.add("cart", T0 + 5, "INFO", "T1") is False
    assert agg.late_lines == 1
    assert (series_id("cart", "log_lines"), "10:00") not in _values(agg.take_changed()[0])


def test_a_changed_minute_is_kept_until_taken_however_far_event_time_jumps() -> None:
    agg = LogAggregator(retain_minutes=1)
    agg.add("cart", T0, "INFO", "T1")
    agg.add("cart", T0 + 3600, "INFO", "T1")
    got = _values(agg.take_changed()[0])
    assert (
        got[(series_id("cart", "log_lines"), "10:00")] == 1
        and got[(series_id("cart", "log_lines"), "11:00")] == 1
    )


def test_state_round_trips_through_json() -> None:
    agg = LogAggregator(retain_minutes=3)
    agg.add("cart", T0, "ERROR", "T1", is_new=True)
    agg.add("cart", T0 + 1, "INFO", "T2")
    restored = LogAggregator.from_state(json.loads(json.dumps(agg.to_state())))
    restored.add("cart", T0 + 2, "INFO", "T2")
    agg.add("cart", T0 + 2, "INFO", "T2")
    pd.testing.assert_frame_equal(restored.take_changed()[0], agg.take_changed()[0])
