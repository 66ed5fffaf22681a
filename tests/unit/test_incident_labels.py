"""Incident history from a labels file (connectors.labels.incident_labels)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from connectors.labels.incident_labels import read_incident_labels, validate_incident_labels
from features.failure_labels import confirmed_incidents
from foresight.schemas import INCIDENT_COLUMNS, UTC_DTYPE, SchemaError

CSV = """incident_id,service,category,start,end,severity,false_positive
INC-2,cart,disk,2026-04-21T09:00:00+02:00,2026-04-21T07:30:00Z,error,no
INC-1,search,latency,2026-04-20T18:20:00Z,,critical,TRUE
INC-3,payments,errors,2026-04-22T01:00:00Z,2026-04-22T01:20:00Z,warning,
"""


def write(tmp_path: Path, text: str, name: str = "labels.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_reads_as_utc_sorted_and_keeps_the_false_positive_flag(tmp_path: Path) -> None:
    labels = read_incident_labels(write(tmp_path, CSV))
    assert list(labels.columns) == [*INCIDENT_COLUMNS, "false_positive"]
    assert labels["incident_id"].tolist() == ["INC-1", "INC-2", "INC-3"]  # by start
    assert labels["start"].dtype == UTC_DTYPE and labels["end"].dtype == UTC_DTYPE
    assert labels.loc[1, "start"] == pd.Timestamp("2026-04-21 07:00", tz="UTC")  # +02:00 converted
    assert pd.isna(labels.loc[0, "end"])  # still open
    assert confirmed_incidents(labels)["incident_id"].tolist() == ["INC-2", "INC-3"]


def test_parquet_round_trip(tmp_path: Path) -> None:
    frame = read_incident_labels(write(tmp_path, CSV))
    path = tmp_path / "labels.parquet"
    frame.to_parquet(path)
    pd.testing.assert_frame_equal(read_incident_labels(path), frame)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (CSV.replace("2026-04-20T18:20:00Z", "2026-04-20 18:20"), "time zone"),
        (CSV.replace("2026-04-21T07:30:00Z", "2026-04-21T06:30:00Z"), "end before they start"),
        (CSV.replace(",search,", ",,"), "needs a service"),
        (CSV.replace("severity", "sev"), "missing column"),
        (CSV.replace("2026-04-20T18:20:00Z", "yesterday"), "cannot read"),
    ],
)
def test_bad_files_are_refused_naming_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(SchemaError, match=problem):
        read_incident_labels(write(tmp_path, text))


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="csv or .parquet"):
        read_incident_labels(write(tmp_path, CSV, "labels.xlsx"))
    with pytest.raises(FileNotFoundError):
        read_incident_labels(tmp_path / "absent.csv")


def test_a_frame_from_another_reader_is_validated_the_same_way() -> None:
    frame = pd.DataFrame(
        {
            "incident_id": ["P1"],
            "service": ["cart"],
            "category": ["errors"],
            "start": [pd.Timestamp("2026-04-20 10:00", tz="Europe/Paris")],
            "end": [pd.NaT],
            "severity": ["critical"],
        }
    )
    out = validate_incident_labels(frame, "pagerduty history")
    assert out.loc[0, "start"] == pd.Timestamp("2026-04-20 08:00", tz="UTC")
    with pytest.raises(SchemaError, match="pagerduty history"):
        validate_incident_labels(frame.assign(start=pd.Timestamp("2026-04-20 10:00")), "pagerduty history")


def test_the_train_flow_takes_its_incident_history_from_detect_labels_path(tmp_path: Path) -> None:
    from flows.train import load_training_data
    from foresight.lake import Lake
    from foresight.settings import DetectConfig, Settings

    settings = Settings(home=tmp_path, detect=DetectConfig(labels_path=write(tmp_path, CSV)))
    lake = Lake(settings.lake_location)
    ds = pd.date_range("2026-04-20", periods=3, freq="5min", tz="UTC").astype(UTC_DTYPE)
    lake.upsert("telemetry", pd.DataFrame({"unique_id": "cart/i-1/cpu_pct", "ds": ds, "y": [1.0, 2.0, 3.0]}))
    lake.upsert(
        "catalogue",
        pd.DataFrame({"unique_id": ["cart/i-1/cpu_pct"], "service": ["cart"], "metric": ["cpu_pct"]}),
    )
    lake.upsert(
        "incidents",
        pd.DataFrame(
            {
                "incident_id": ["SIM-1"],
                "service": ["cart"],
                "category": ["disk"],
                "start": ds[:1],
                "end": ds[1:2],
                "severity": ["error"],
            }
        ),
    )
    from_file = load_training_data.fn(settings).incidents
    assert from_file["incident_id"].tolist() == ["INC-1", "INC-2", "INC-3"]
    from_lake = load_training_data.fn(Settings(home=tmp_path)).incidents
    assert from_lake["incident_id"].tolist() == ["SIM-1"]


def test_a_lake_without_incidents_trains_on_an_empty_but_typed_history(tmp_path: Path) -> None:
    """A new system has no incident yet: train reads an empty history with the columns the
    failure labels and the event matching require (an untyped empty frame failed with a SchemaError)."""
    from features.failure_labels import failure_labels
    from flows.train import load_training_data
    from foresight.lake import Lake
    from foresight.schemas import INCIDENT_COLUMNS
    from foresight.settings import Settings

    settings = Settings(home=tmp_path)
    lake = Lake(settings.lake_location)
    ds = pd.date_range("2026-04-20", periods=3, freq="5min", tz="UTC").astype(UTC_DTYPE)
    lake.upsert("telemetry", pd.DataFrame({"unique_id": "cart/i-1/cpu_pct", "ds": ds, "y": [1.0, 2.0, 3.0]}))
    lake.upsert("catalogue", pd.DataFrame({"unique_id": ["cart/i-1/cpu_pct"], "service": ["cart"], "metric": ["cpu_pct"]}))
    incidents = load_training_data.fn(settings).incidents
    assert list(incidents.columns) == list(INCIDENT_COLUMNS) and incidents.empty
    assert str(incidents["start"].dtype) == str(UTC_DTYPE)
    grid = pd.DataFrame({"service": "cart", "ds": ds})
    assert (failure_labels(grid, incidents, horizon=pd.Timedelta("30min")) == 0).all()
