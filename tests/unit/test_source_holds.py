"""What a source whose newest batch failed its contract holds back (foresight.source_holds)."""

from __future__ import annotations

import pandas as pd

from foresight.source_holds import SourceContractFailedError, source_hold

T0 = pd.Timestamp("2026-03-01 10:00", tz="UTC")

CATALOGUE = pd.DataFrame({
    "unique_id": ["checkout/i-1/cpu_pct", "checkout/i-1/mem_pct", "cart/i-1/cpu_pct", "billing/i-9/cpu_pct",
                  "search/i-1/cpu_pct"],
    "source": ["prom", "cw", "prom", "cw", "prom"],
    "service": ["checkout", "checkout", "cart", "billing", "search"],
})


def _ledger(*batches: tuple[str, int, bool]) -> pd.DataFrame:
    """(source, minutes after T0, passed) per batch, in any order."""
    return pd.DataFrame([{"batch_id": f"{s}-{m}", "source": s, "started_at": T0 + pd.Timedelta(minutes=m), "passed": p}
                         for s, m, p in batches])


def test_only_a_newest_failed_batch_counts_and_only_for_configured_sources() -> None:
    ledger = _ledger(("prom", 5, False), ("prom", 10, True),  # failed, then recovered
                     ("cw", 10, False), ("cw", 5, True),  # listed out of order: newest failed
                     ("gone", 1, False))  # removed from the settings: can never send a clean batch
    assert source_hold(ledger, CATALOGUE).sources == ("cw", "gone")
    assert source_hold(ledger, CATALOGUE, configured={"prom", "cw"}).sources == ("cw",)
    assert not source_hold(ledger.iloc[:0], CATALOGUE)


def test_a_failed_source_holds_back_its_series_and_keeps_its_services_open() -> None:
    hold = source_hold(_ledger(("prom", 1, True), ("cw", 1, False)), CATALOGUE)
    assert hold and hold.sources == ("cw",)
    assert hold.series == {"checkout/i-1/mem_pct", "billing/i-9/cpu_pct"}
    assert hold.services == hold.kept_open == {"checkout", "billing"}  # checkout: one series of two
    telemetry = pd.DataFrame({"unique_id": CATALOGUE["unique_id"], "ds": T0, "y": 1.0})
    assert sorted(hold.healthy(telemetry)["unique_id"]) == ["cart/i-1/cpu_pct", "checkout/i-1/cpu_pct",
                                                            "search/i-1/cpu_pct"]
    assert hold.verdicts().to_dict("records") == [
        {"source": "cw", "contract_failed": 1, "series_held_back": 2},
        {"source": "prom", "contract_failed": 0, "series_held_back": 0},
    ]


def test_a_clean_ledger_holds_nothing_but_still_reports_every_verdict() -> None:
    hold = source_hold(_ledger(("prom", 1, True), ("cw", 1, True)), CATALOGUE)
    assert not hold and hold.series == frozenset() and hold.kept_open == frozenset()
    frame = pd.DataFrame({"unique_id": CATALOGUE["unique_id"]})
    assert hold.healthy(frame) is frame
    assert hold.verdicts()["contract_failed"].tolist() == [0, 0]


def test_a_missing_signal_is_not_a_recovery() -> None:
    hold = source_hold(_ledger(("prom", 1, True), ("cw", 1, False)), CATALOGUE)
    incidents = pd.DataFrame({
        "service": ["checkout", "cart", "search"],
        "start": [T0, T0, T0],
        "end": pd.Series([T0 + pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=1), pd.NaT], dtype="datetime64[us, UTC]"),
    })
    kept = hold.keep_open(incidents)
    # checkout lost half its signal: it may page, but it does not resolve; cart's recovery is real.
    assert kept["end"].isna().tolist() == [True, False, True]
    assert incidents["end"].notna().sum() == 2, "the caller's frame is left as it was"


def test_where_one_incident_spans_a_system_the_whole_system_stays_open() -> None:
    from models.incidents.call_graph import call_graph_systems

    services = ["billing", "cart", "checkout", "frontend", "payments", "search"]
    graph = {"frontend": ["checkout", "cart"], "checkout": ["payments"], "search": []}
    hold = source_hold(_ledger(("prom", 1, True), ("cw", 1, False)), CATALOGUE,
                       systems=call_graph_systems(services, graph))
    assert hold.kept_open == {"billing", "checkout", "frontend", "cart", "payments"}  # not search
    # Without a call graph the stream takes every service to be one system.
    hold = source_hold(_ledger(("prom", 1, True), ("cw", 1, False)), CATALOGUE,
                       systems=call_graph_systems(services, {}))
    assert hold.kept_open == set(services)


def test_a_source_without_series_in_the_lake_still_fails_the_run() -> None:
    hold = source_hold(_ledger(("prom", 1, True), ("backfill", 1, False)), CATALOGUE)
    assert hold.sources == ("backfill",) and hold.series == frozenset()
    error = hold.error(result={"incidents": 0})
    assert isinstance(error, SourceContractFailedError) and error.sources == ["backfill"]
    assert error.result == {"incidents": 0} and not error.retryable
    assert "backfill" in error.message and error.hint == "fix the source; its pages resume after its next clean batch"
