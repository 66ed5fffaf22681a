"""The plain incident layout (connectors.labels.incident_layout): round trips, auto-detection by bench
incidents, clear errors on bad input, and the Nezha dev days giving the same figures through it."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.datasets.nezha import NezhaDay, load_nezha
from bench.incidents import load_days, run_days
from connectors.labels.incident_layout import (
    IncidentLayoutError,
    is_incident_dir,
    read_incident_dir,
    write_incident_dir,
)
from foresight.cli import app
from support.nezha import write_nezha_day
from support.plain_incidents import plain_system

DEV_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "nezha-dev"


def _assert_same_day(a: NezhaDay, b: NezhaDay) -> None:
    pd.testing.assert_frame_equal(a.telemetry.reset_index(drop=True), b.telemetry)
    pd.testing.assert_frame_equal(a.catalogue.reset_index(drop=True), b.catalogue)
    assert a.call_graph == b.call_graph
    assert [(f.inject_time, f.service, f.kind) for f in a.faults] == [
        (f.inject_time, f.service, f.kind) for f in b.faults
    ]


def test_a_nezha_day_written_in_the_plain_layout_reads_back_the_same(tmp_path: Path) -> None:
    write_nezha_day(tmp_path / "nezha", minutes=40, fault_minute=20)
    (day,) = load_nezha(tmp_path / "nezha")
    folder = write_incident_dir(day, tmp_path / "plain" / day.name)
    assert is_incident_dir(folder) and not is_incident_dir(tmp_path / "nezha" / day.name)
    header = gzip.open(folder / "telemetry.csv.gz", "rt").readline().strip()
    assert header == "unique_id,ds,y"
    assert (folder / "faults.csv").read_text().splitlines()[1].startswith("2022-08-22T")
    _assert_same_day(day, read_incident_dir(folder))


def test_the_minimal_catalogue_defaults_resource_and_unit_and_an_empty_fault_list_is_no_fault(
    tmp_path: Path,
) -> None:
    day = plain_system(interval="1min", minutes=20, fault_minute=None)
    folder = write_incident_dir(day, tmp_path / "calm")
    catalogue = pd.read_csv(folder / "catalogue.csv")[["unique_id", "service", "metric"]]
    catalogue.to_csv(folder / "catalogue.csv", index=False)
    assert (folder / "faults.csv").read_text().strip() == "inject_time,service,inject_type"
    read = read_incident_dir(folder)
    assert read.faults == [] and read.name == "calm"
    assert (read.catalogue["resource_id"] == read.catalogue["service"]).all()
    assert (read.catalogue["unit"] == "").all() and (read.catalogue["source"] == "plain").all()
    assert read.call_graph == {"api": ("db",), "db": (), "web": ("api",)}


def test_bench_reads_plain_nezha_and_a_folder_of_both(tmp_path: Path) -> None:
    write_nezha_day(tmp_path / "mixed", minutes=30, fault_minute=None, name="a-nezha")
    write_incident_dir(plain_system(interval="1min", minutes=30, fault_minute=None), tmp_path / "mixed" / "b-plain")
    (tmp_path / "mixed" / "notes").mkdir()  # neither layout: ignored
    assert [d.name for d in load_days(tmp_path / "mixed")] == ["a-nezha", "b-plain"]
    assert [d.name for d in load_days(tmp_path / "mixed" / "b-plain")] == ["b-plain"]
    with pytest.raises(ValueError, match="telemetry.csv.gz .*metric/"):
        load_days(tmp_path / "mixed" / "notes")


def _edit(folder: Path, file: str, old: str, new: str) -> None:
    path = folder / file
    if file.endswith(".gz"):
        text = gzip.open(path, "rt").read().replace(old, new, 1)
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(path.read_text().replace(old, new, 1))


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("catalogue.csv", "unique_id,service,metric", "unique_id,svc,metric", r"catalogue.csv line 1: missing column\(s\) service"),
        ("telemetry.csv.gz", "2026-03-02T10:01:00Z", "2026-03-02 10:01", r"telemetry.csv.gz line \d+: ds has no UTC offset"),
        ("telemetry.csv.gz", "2026-03-02T10:01:00Z", "yesterdayZ", r"telemetry.csv.gz line \d+: ds is not an ISO 8601 time"),
        ("telemetry.csv.gz", "api/cpu_usage,", "api/cpu_usagee,", r"telemetry.csv.gz line 2: unique_id not in catalogue.csv"),
        ("telemetry.csv.gz", "2026-03-02T10:01:00Z", "2026-03-02T10:00:00Z", r"line 3: a second sample for the same"),
        ("faults.csv", ",db,", ",dbx,", r"faults.csv line 2: service has no series in catalogue.csv"),
        ("faults.csv", "2026-03-02T10:10:00Z", "2026-03-02T10:10:00", r"faults.csv line 2: inject_time has no UTC offset"),
        ("call_graph.csv", "source,target", "from,to", r"call_graph.csv line 1: missing column\(s\) source, target"),
    ],
)
def test_bad_input_is_refused_naming_file_line_and_problem(
    tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    folder = write_incident_dir(plain_system(interval="1min", minutes=15, fault_minute=10), tmp_path / "bad")
    _edit(folder, file, old, new)
    with pytest.raises(IncidentLayoutError, match=message):
        read_incident_dir(folder)


def test_a_non_numeric_value_is_refused_and_an_empty_one_is_no_sample(tmp_path: Path) -> None:
    folder = write_incident_dir(plain_system(interval="1min", minutes=15, fault_minute=None), tmp_path / "d")
    text = gzip.open(folder / "telemetry.csv.gz", "rt").read().splitlines()
    first_id, first_ds, _ = text[1].split(",")
    text[1] = f"{first_id},{first_ds},"
    with gzip.open(folder / "telemetry.csv.gz", "wt") as handle:
        handle.write("\n".join(text) + "\n")
    assert len(read_incident_dir(folder).telemetry) == len(text) - 2
    text[2] = text[2].rsplit(",", 1)[0] + ",n/a"
    with gzip.open(folder / "telemetry.csv.gz", "wt") as handle:
        handle.write("\n".join(text) + "\n")
    with pytest.raises(IncidentLayoutError, match="line 3: y is not a number"):
        read_incident_dir(folder)


def test_bench_incidents_cli_scores_a_generated_system_in_the_plain_layout(tmp_path: Path) -> None:
    # Sampled every 10 s with free-text metric names and no units: the bench averages minutes.
    write_incident_dir(plain_system(interval="10s", minutes=80, fault_minute=60.5), tmp_path / "shop")
    out = tmp_path / "incidents.csv"
    args = ["bench", "incidents", "--data", str(tmp_path / "shop"), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "detected within 5 min" in result.output and "1/1 (100.0%)" in result.output
    row = pd.read_csv(out).iloc[0]
    # CPU from 30 % to 95 %, no burner's jump: the service's own code (models.incidents.fault_types).
    assert row["services"].split(";")[0] == "db" and row["category"] == "cpu_consumed"
    assert row["coarse_category"] == "saturation"
    assert pd.Timestamp(row["opened_at"]) == pd.Timestamp("2026-03-02 11:01", tz="UTC")  # 30 s after
    # A detection window shorter than that delay misses it.
    result = CliRunner().invoke(app, [*args, "--window-min", "0.25"])
    assert result.exit_code == 0, result.output
    assert "detected within 0.25 min" in result.output and "0/1 (0.0%)" in result.output


def test_bench_incidents_cli_names_the_bad_file_and_line(tmp_path: Path) -> None:
    folder = write_incident_dir(plain_system(interval="1min", minutes=15, fault_minute=10), tmp_path / "d")
    _edit(folder, "faults.csv", ",db,", ",nosuch,")
    result = CliRunner().invoke(app, ["bench", "incidents", "--data", str(folder), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code != 0
    assert "faults.csv line 2" in result.output and "nosuch" in result.output


@pytest.mark.integration  # ~20 s of CPU: both dev days read, written, read back and replayed twice
@pytest.mark.skipif(not DEV_DATA.is_dir(), reason=f"needs the Nezha dev data at {DEV_DATA}")
def test_both_nezha_dev_days_score_the_same_through_the_plain_layout(tmp_path: Path) -> None:
    for nezha_day in load_nezha(DEV_DATA):
        plain_day = read_incident_dir(write_incident_dir(nezha_day, tmp_path / nezha_day.name))
        _assert_same_day(nezha_day, plain_day)
        from_nezha, incidents, _ = run_days([nezha_day])
        from_plain, _, _ = run_days([plain_day])
        assert from_plain == from_nezha
        assert from_nezha.faults == len(nezha_day.faults) > 20 and from_nezha.detected > 0
        assert from_nezha.incidents == len(incidents) > 0
