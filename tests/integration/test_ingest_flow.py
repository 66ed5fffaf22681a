"""Bad input through the real ingest flow: clear errors or quarantine, nothing lost, no training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from foresight.lake import Lake
from foresight.quarantine import read_quarantine
from foresight.source_holds import SourceContractFailedError

pytestmark = pytest.mark.integration


def _good(n: int = 48, ids: tuple[str, ...] = ("cart/i-1/cpu_pct", "cart/i-1/mem_pct")) -> pd.DataFrame:
    end = pd.Timestamp.now(tz="UTC").floor("5min")
    ds = pd.date_range(end=end, periods=n, freq="5min")
    rng = np.random.default_rng(0)
    return pd.concat([pd.DataFrame({"unique_id": uid, "ds": ds.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                    "y": rng.uniform(20, 60, n).round(3).astype(str)}) for uid in ids],
                     ignore_index=True)


def _ingest() -> list[dict]:
    """The ingest flow's outcomes; a run whose contract failed ends Failed and carries them."""
    from flows.ingest import ingest

    try:
        return ingest()
    except SourceContractFailedError as failed:
        assert all(not o["passed"] for o in failed.result if o["source"] in failed.sources)
        return failed.result


def _ingest_file(home: Path, frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> dict:
    path = home.parent / "batch.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setenv("FORESIGHT_SOURCES", json.dumps(
        [{"name": "file", "kind": "file", "options": {"path": str(path), "unit": "percent"}}]))
    [outcome] = _ingest()
    return outcome


def _lake(home: Path) -> Lake:
    return Lake(home / "lake")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda df: df.assign(y=df["y"].where(df.index != 3, "nan")), "y: not finite (NaN/inf)"),
        (lambda df: df.assign(y=df["y"].where(df.index != 3, "inf")), "y: not finite (NaN/inf)"),
        (lambda df: df.assign(y=df["y"].where(df.index != 3, "abc")), "y: not numeric"),
        (lambda df: df.assign(y=df["y"].where(df.index != 3, "250")), "y: above 100 for unit percent"),
        (lambda df: df.assign(ds=df["ds"].where(df.index != 3, "2026-01-01 00:00:00")),
         "ds: naive timestamp (no timezone)"),
        (lambda df: df.assign(ds=df["ds"].where(df.index != 3, "yesterday-ish")), "ds: not a timestamp"),
    ],
    ids=["nan", "inf", "wrong-type", "out-of-bounds", "naive-time", "unparseable-time"],
)
def test_bad_rows_are_quarantined_with_their_reason_and_nothing_is_lost(
    prefect_harness, foresight_home: Path, monkeypatch: pytest.MonkeyPatch, mutate, reason: str
) -> None:
    raw = mutate(_good())
    outcome = _ingest_file(foresight_home, raw, monkeypatch)
    assert outcome["passed"], "one bad row in 96 stays under the quarantine ratio"
    lake = _lake(foresight_home)
    stored, quarantined = lake.read("telemetry"), read_quarantine(lake)
    assert quarantined["reason"].tolist() == [reason]
    assert len(stored) + len(quarantined) == len(raw)
    assert (outcome["accepted"], outcome["quarantined"], outcome["reasons"]) == (len(raw) - 1, 1, {reason: 1}), \
        "the run's summary says what was accepted, quarantined and why"


def test_duplicates_out_of_order_and_other_timezones(prefect_harness, foresight_home: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    good = _good()
    shifted = good.iloc[:5].assign(  # the same instants written in UTC+02:00: converted, not rejected
        ds=pd.to_datetime(good["ds"].iloc[:5]).dt.tz_convert("Europe/Berlin").map(lambda t: t.isoformat()))
    conflict = good.iloc[[10]].assign(y="99.5")
    raw = pd.concat([good.iloc[5:].iloc[::-1], shifted, good.iloc[[20]], conflict], ignore_index=True)
    outcome = _ingest_file(foresight_home, raw, monkeypatch)
    lake = _lake(foresight_home)
    stored, quarantined = lake.read("telemetry"), read_quarantine(lake)
    assert outcome["passed"]
    assert set(quarantined["reason"]) == {"duplicate (unique_id, ds) with different values"}
    assert len(quarantined) == 2  # both conflicting copies: neither is trusted
    assert len(stored) == len(good) - 1 and not stored.duplicated(["unique_id", "ds"]).any()
    assert stored.groupby("unique_id")["ds"].is_monotonic_increasing.all()


def test_a_failed_batch_is_quarantined_whole_and_never_reaches_training(
    prefect_harness, foresight_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.resources import settings_for_run
    from flows.train import NoTrainingDataError, load_training_data

    raw = _good().assign(y="not-a-number")  # every row bad: far over the quarantine ratio
    raw.loc[:4, "y"] = "42.0"
    outcome = _ingest_file(foresight_home, raw, monkeypatch)
    lake = _lake(foresight_home)
    assert not outcome["passed"]
    assert not lake.exists("telemetry"), "nothing from a failed batch is stored for use"
    quarantined = read_quarantine(lake)
    assert len(quarantined) == len(raw), "nothing is lost: good rows of a failed batch wait in quarantine"
    assert (quarantined["reason"].str.startswith("batch failed contract").sum()) == 5
    assert outcome["accepted"] == 0 and outcome["quarantined"] == len(raw)
    assert outcome["reasons"] == {"y: not numeric": len(raw) - 5,
                                  "batch failed its contract: quarantine_ratio": 5}
    ledger = lake.read("batches")
    assert ledger["passed"].tolist() == [False]
    with pytest.raises(NoTrainingDataError, match="run the ingest flow first"):
        load_training_data.fn(settings_for_run(None))


def test_a_header_only_file_is_no_rows_not_a_failed_contract(prefect_harness, foresight_home: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = _ingest_file(foresight_home, _good().iloc[:0], monkeypatch)  # a header, no rows: a warning
    assert outcome["passed"] and (outcome["accepted"], outcome["quarantined"]) == (0, 0)
    failed = json.loads(_lake(foresight_home).read("batches")["failed_checks"].iloc[0])
    assert failed == [], failed


def test_a_stale_batch_fails_freshness(prefect_harness, foresight_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = _good().assign(ds=lambda df: (pd.to_datetime(df["ds"]) - pd.Timedelta(days=5)).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    outcome = _ingest_file(foresight_home, stale, monkeypatch)
    assert not outcome["passed"]
    failed = json.loads(_lake(foresight_home).read("batches")["failed_checks"].iloc[0])
    assert any("fresh" in name for name in failed), failed


def test_reingesting_the_same_batch_adds_nothing(prefect_harness, foresight_home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _good()
    _ingest_file(foresight_home, raw, monkeypatch)
    second = _ingest_file(foresight_home, raw, monkeypatch)
    assert len(_lake(foresight_home).read("telemetry")) == len(raw)
    assert second["written"]["telemetry"] == len(raw)  # rewritten in place (updates), not appended


class _CountingSource:
    """An incremental source that serves 5-minute samples up to the window's end and records
    the windows it was asked for; ``fail_ack`` makes its acknowledgement raise."""

    incremental = True
    windows: list = []
    acks: list = []

    def __init__(self, name: str, fail_ack: bool = False, complete: bool = True) -> None:
        self.name, self.fail_ack, self.complete = name, fail_ack, complete

    def fetch(self, window=None):  # type: ignore[no-untyped-def]
        from connectors.sources.base import SourceBatch

        _CountingSource.windows.append(window)
        ds = pd.date_range(window.start.ceil("5min"), window.end, freq="5min", inclusive="left")
        telemetry = pd.DataFrame({"unique_id": "svc/i-1/cpu_pct", "ds": ds, "y": 50.0})
        catalogue = pd.DataFrame([{"unique_id": "svc/i-1/cpu_pct", "source": self.name, "metric": "cpu_pct",
                                   "labels": "{}", "service": "svc", "resource_id": "i-1", "instance_type": "",
                                   "unit": "percent"}])

        def ack() -> None:
            if self.fail_ack:
                raise RuntimeError("broker unavailable")
            _CountingSource.acks.append(len(telemetry))

        return SourceBatch(self.name, telemetry, catalogue, on_stored=ack, complete=self.complete)


def test_incremental_source_resumes_from_its_watermark(prefect_harness, foresight_home: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.sources.base import SOURCES
    from flows.ingest import ingest
    from foresight.watermarks import WatermarkStore

    if "counting" not in SOURCES:
        SOURCES.register("counting")(_CountingSource)
    _CountingSource.windows.clear()
    _CountingSource.acks.clear()
    monkeypatch.setenv("FORESIGHT_SOURCES", json.dumps([{"name": "c", "kind": "counting", "overlap": "PT10M",
                                                          "initial_lookback": "PT6H"}]))
    ingest()
    first = _CountingSource.windows[-1]
    assert first.end - first.start == pd.Timedelta("6h")
    mark = WatermarkStore(_lake(foresight_home)).get("c", "all")
    assert mark == _lake(foresight_home).read("telemetry")["ds"].max()
    ingest()
    second = _CountingSource.windows[-1]
    assert second.start == mark - pd.Timedelta("10min"), "re-reads the overlap for late samples"
    stored = _lake(foresight_home).read("telemetry")
    assert not stored.duplicated(["unique_id", "ds"]).any()
    assert len(_CountingSource.acks) == 2, "acknowledged once per stored batch"


def test_a_failed_acknowledgement_leaves_the_watermark_where_it_was(prefect_harness, foresight_home: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.sources.base import SOURCES
    from flows.ingest import ingest
    from foresight.watermarks import WatermarkStore

    if "counting-failing-ack" not in SOURCES:
        SOURCES.register("counting-failing-ack")(lambda name: _CountingSource(name, fail_ack=True))
    monkeypatch.setenv("FORESIGHT_SOURCES", json.dumps([{"name": "f", "kind": "counting-failing-ack"}]))
    with pytest.raises(RuntimeError, match="broker unavailable"):
        ingest()
    assert WatermarkStore(_lake(foresight_home)).get("f", "all") is None, "the next run re-reads the window"


def test_an_incomplete_batch_is_stored_but_keeps_the_watermark(prefect_harness, foresight_home: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.sources.base import SOURCES
    from flows.ingest import ingest
    from foresight.watermarks import WatermarkStore

    if "counting-incomplete" not in SOURCES:
        SOURCES.register("counting-incomplete")(lambda name: _CountingSource(name, complete=False))
    monkeypatch.setenv("FORESIGHT_SOURCES", json.dumps([{"name": "i", "kind": "counting-incomplete"}]))
    [outcome] = ingest()
    assert outcome["written"]["telemetry"] > 0, "what did arrive is stored"
    assert WatermarkStore(_lake(foresight_home)).get("i", "all") is None, "the missing series are re-read next run"


class _TwoStreamSource:
    """Streams ``good`` and ``flaky`` (one series each); ``flaky`` delivers only its first hour
    and reports itself incomplete while ``_TwoStreamSource.flaky_broken`` is set."""

    incremental = True
    tracks_streams = True
    flaky_broken = True
    calls: list = []

    def __init__(self, name: str) -> None:
        self.name = name

    def fetch(self, window=None, since=None):  # type: ignore[no-untyped-def]
        from connectors.sources.base import SourceBatch, stream_start

        starts = {s: stream_start(since, s, window) for s in ("good", "flaky")}
        _TwoStreamSource.calls.append(starts)
        frames = []
        for stream, start in starts.items():
            ds = pd.date_range(start.ceil("5min"), window.end, freq="5min", inclusive="left")
            if stream == "flaky" and _TwoStreamSource.flaky_broken:
                ds = ds[ds < ds[0] + pd.Timedelta("1h")]
            frames.append(pd.DataFrame({"unique_id": f"svc/i-1/{stream}", "ds": ds, "y": 50.0}))
        catalogue = pd.DataFrame([{"unique_id": f"svc/i-1/{s}", "source": self.name, "metric": s, "labels": "{}",
                                   "service": "svc", "resource_id": "i-1", "instance_type": "", "unit": "percent"}
                                  for s in starts])
        return SourceBatch(self.name, pd.concat(frames, ignore_index=True), catalogue,
                           streams={f"svc/i-1/{s}": s for s in starts},
                           incomplete_streams=frozenset({"flaky"} if _TwoStreamSource.flaky_broken else ()))


def test_an_incomplete_stream_holds_back_only_its_own_watermark(prefect_harness, foresight_home: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.sources.base import SOURCES
    from flows.ingest import ingest
    from foresight.watermarks import WatermarkStore

    if "two-streams" not in SOURCES:
        SOURCES.register("two-streams")(_TwoStreamSource)
    _TwoStreamSource.calls.clear()
    _TwoStreamSource.flaky_broken = True
    monkeypatch.setenv("FORESIGHT_SOURCES", json.dumps([{"name": "t", "kind": "two-streams", "overlap": "PT10M",
                                                          "initial_lookback": "PT6H"}]))
    ingest()
    lake = _lake(foresight_home)
    stored = lake.read("telemetry")
    marks = WatermarkStore(lake).all_for("t")
    assert set(marks) == {"good"}, "the incomplete stream has no watermark yet"
    assert marks["good"] == stored.loc[stored["unique_id"] == "svc/i-1/good", "ds"].max()
    assert (stored["unique_id"] == "svc/i-1/flaky").sum() == 12, "what did arrive is stored"

    _TwoStreamSource.flaky_broken = False
    ingest()
    second = _TwoStreamSource.calls[-1]
    assert second["good"] == marks["good"] - pd.Timedelta("10min"), "the healthy stream resumes at its mark"
    assert second["flaky"] < marks["good"] - pd.Timedelta("5h"), "the lagging stream re-reads its whole window"
    stored = lake.read("telemetry")
    assert not stored.duplicated(["unique_id", "ds"]).any()
    flaky = stored.loc[stored["unique_id"] == "svc/i-1/flaky", "ds"]
    assert flaky.diff().dropna().eq(pd.Timedelta("5min")).all(), "the flaky stream's gap is filled"
    assert set(WatermarkStore(lake).all_for("t")) == {"good", "flaky"}


def _logs(n: int = 3) -> pd.DataFrame:
    ts = pd.date_range(end=pd.Timestamp.now(tz="UTC").floor("min"), periods=n, freq="min")
    return pd.DataFrame({"ts": ts, "service": "svc", "resource_id": "i-1", "level": "ERROR",
                         "template_id": "t1", "message": [f"upstream timeout #{i}" for i in range(n)]})


class _StreamSource:
    """A stream-like source with a fixed batch: logs, and telemetry that may be empty or bad."""

    batch_telemetry = pd.DataFrame(columns=["unique_id", "ds", "y"])

    def __init__(self, name: str) -> None:
        self.name = name

    def fetch(self, window=None):  # type: ignore[no-untyped-def]
        from connectors.sources.base import SourceBatch

        return SourceBatch(self.name, _StreamSource.batch_telemetry, pd.DataFrame(columns=["unique_id"]),
                           logs=_logs(), expect_rows=False)


def _ingest_stream(monkeypatch: pytest.MonkeyPatch, telemetry: pd.DataFrame) -> dict:
    from connectors.sources.base import SOURCES

    if "stream" not in SOURCES:
        SOURCES.register("stream")(_StreamSource)
    _StreamSource.batch_telemetry = telemetry
    monkeypatch.setenv("FORESIGHT_SOURCES", json.dumps([{"name": "s", "kind": "stream"}]))
    [outcome] = _ingest()
    return outcome


def test_a_quiet_stream_is_not_a_contract_failure_and_its_logs_are_kept(
    prefect_harness, foresight_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = _ingest_stream(monkeypatch, pd.DataFrame(columns=["unique_id", "ds", "y"]))
    assert outcome["passed"]
    assert len(_lake(foresight_home).read("logs")) == 3


def test_logs_of_a_failed_batch_wait_in_the_quarantine(prefect_harness, foresight_home: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    bad = _good().assign(y="garbage")
    outcome = _ingest_stream(monkeypatch, bad)
    assert not outcome["passed"]
    lake = _lake(foresight_home)
    assert not lake.exists("logs")
    [path] = lake.list_files("quarantine/logs")
    kept = pd.read_parquet(path)
    assert len(kept) == 3 and kept["reason"].str.startswith("batch failed contract").all()
