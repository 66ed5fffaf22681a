"""`bench stream-detection`'s matching: a page opened from 5 minutes before an incident of its
service to its end detects it (the first such page gives the time to detect); any other is false."""

from __future__ import annotations

import pandas as pd

from bench.stream_detection import Page, VariantRun, figures

T = pd.Timestamp("2026-04-20 10:00", tz="UTC")


def _truth() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "service": ["cart", "search"],
            "category": ["errors", "disk"],
            "start": [T, T + pd.Timedelta(hours=5)],
            "end": [T + pd.Timedelta(minutes=30), T + pd.Timedelta(hours=6)],
        }
    )


def test_pages_are_matched_per_service_and_family_and_the_rest_are_false() -> None:
    pages = [
        Page("cart", T + pd.Timedelta(minutes=4)),  # detects cart's errors after 4 minutes
        Page("cart", T + pd.Timedelta(minutes=20)),  # a second page of the same incident: not false
        Page("search", T + pd.Timedelta(minutes=10)),  # hours before search's incident: false
        Page("cart", T - pd.Timedelta(minutes=3)),  # within the grace before the start: earliest, 0 min
    ]
    runs = [VariantRun("v", 1, pages), VariantRun("w", 1, [])]
    out = {(f.variant, f.family): f for f in figures(runs, {1: _truth()}, days=2)}
    assert (out[("v", "errors")].detected, out[("v", "errors")].minutes_to_detect) == (1, [0.0])
    assert out[("v", "disk")].detected == 0 and out[("v", "disk")].incidents == 1
    assert out[("v", "all")].false_pages == 1 and out[("v", "all")].false_per_day == 0.5
    assert out[("w", "all")].detected == 0 and out[("w", "all")].false_pages == 0
