"""The lake snapshot a train run records: a content digest, rows, time range and sources."""

from __future__ import annotations

import pandas as pd
import pytest

from foresight.lake_snapshot import content_digest, describe_snapshot
from foresight.schemas import UTC_DTYPE


def telemetry(values: tuple[float, ...] = (1.0, 2.0, 3.0)) -> pd.DataFrame:
    ds = pd.date_range("2026-12-01 00:00", periods=len(values), freq="5min", tz="UTC").astype(UTC_DTYPE)
    one = pd.DataFrame({"unique_id": "cart/i-1/cpu_pct", "ds": ds, "y": list(values)})
    two = one.assign(unique_id="search/i-2/mem_pct")
    return pd.concat([one, two], ignore_index=True)


def catalogue() -> pd.DataFrame:
    return pd.DataFrame({"unique_id": ["cart/i-1/cpu_pct", "search/i-2/mem_pct", "unused/x"],
                         "source": ["prometheus", "cloudwatch", "prometheus"]})


def test_the_snapshot_counts_rows_series_window_and_series_per_source() -> None:
    snap = describe_snapshot("s3://lake/root", telemetry(), catalogue())
    assert (snap.rows, snap.series) == (6, 2)
    assert snap.start == pd.Timestamp("2026-12-01 00:00", tz="UTC")
    assert snap.end == pd.Timestamp("2026-12-01 00:10", tz="UTC")
    assert snap.sources == {"prometheus": 1, "cloudwatch": 1}  # the unused catalogue row does not count
    assert snap.window == "2026-12-01T00:00Z .. 2026-12-01T00:10Z"
    assert snap.datasets == {"telemetry": 6, "catalogue": 3, "incidents": 0, "logs": 0}
    tags = snap.tags()
    assert tags["foresight.data.digest"] == snap.digest and tags["foresight.data.rows"] == "6"
    assert tags["foresight.data.sources"] == "cloudwatch: 1, prometheus: 1"
    assert tags["foresight.data.end"] == "2026-12-01T00:10:00+00:00"
    assert snap.profile()["num_rows"] == 6


def test_series_missing_from_the_catalogue_are_counted_not_dropped() -> None:
    snap = describe_snapshot("/lake", telemetry(), catalogue().iloc[:1])
    assert snap.sources == {"prometheus": 1, "(not in catalogue)": 1}


def test_the_digest_follows_the_content_not_the_index() -> None:
    base = describe_snapshot("/lake", telemetry(), catalogue()).digest
    reindexed = telemetry().set_axis(range(100, 106))
    assert describe_snapshot("/elsewhere", reindexed, catalogue()).digest == base
    assert describe_snapshot("/lake", telemetry((1.0, 2.0, 3.5)), catalogue()).digest != base
    incidents = pd.DataFrame({"incident_id": ["a"], "service": ["cart"]})
    assert describe_snapshot("/lake", telemetry(), catalogue(), incidents).digest != base
    assert len(base) == 16 and int(base, 16) >= 0


@pytest.mark.parametrize("empty", [None, pd.DataFrame()])
def test_a_missing_dataset_digests_like_an_empty_one(empty: pd.DataFrame | None) -> None:
    assert content_digest({"logs": empty}) == content_digest({"logs": pd.DataFrame({"ts": []})})


def test_an_empty_lake_has_no_window() -> None:
    snap = describe_snapshot("/lake", telemetry().iloc[:0], catalogue())
    assert (snap.rows, snap.series, snap.start, snap.sources, snap.window) == (0, 0, None, {}, "no data")
    assert "foresight.data.start" not in snap.tags()
