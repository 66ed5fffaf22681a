"""Ingest flow: fetch each configured source, check its contract, upsert the lake.

Rows that fail the contract go to the lake's quarantine with their reason. A batch that fails
its contract as a whole is quarantined entirely (its good rows with the batch's reason), so
nothing is lost and nothing from it can reach training. Every other source is still stored;
the run then ends Failed (:class:`~foresight.source_holds.SourceContractFailedError`, naming
the sources and carrying every source's outcome), so a failed contract never passes for a
clean run.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from connectors.sources.base import SourceBatch, Window, build_source, is_incremental, tracks_streams
from flows.resources import open_lake, settings_for_run
from flows.retries import retry_unless_permanent
from flows.self_metrics import SELF_METRICS
from foresight.contracts.check import check_telemetry
from foresight.contracts.results import CheckResult, ContractResult
from foresight.contracts.suites import SourceContract
from foresight.lake import Lake, LakeWriteNotDurableError
from foresight.quarantine import (
    as_quarantine_frame,
    quarantine_failed_batch,
    write_quarantine,
    write_rejected,
)
from foresight.schemas import empty_telemetry
from foresight.settings import Settings, SourceConfig
from foresight.source_holds import SourceContractFailedError
from foresight.watermarks import SOURCE_STREAM, WatermarkStore, newest_per_stream, stream_starts


def nothing_new(source: str) -> ContractResult:
    """The contract verdict for a stream that had nothing new: passed, nothing to store."""
    empty = empty_telemetry()
    return ContractResult(
        dataset="telemetry", source=source, batch_id=f"{source}-empty", passed=True, clean=empty,
        quarantined=as_quarantine_frame(None), checks=[CheckResult("not_empty", True, "nothing new on the stream")],
        checked_at=pd.Timestamp.now(tz="UTC"),
    )


@task(cache_policy=NO_CACHE)  # sources' clients retry their own I/O: one retry layer, at the edge
def fetch_source(source: SourceConfig, lake: Lake) -> SourceBatch:
    """One batch; an incremental source gets ``[watermark - overlap, now)``, per stream when it
    tracks streams (each stream from its own watermark)."""
    built = build_source(source.kind, source.name, source.options)
    if not is_incremental(built):
        return built.fetch()
    now = pd.Timestamp.now(tz="UTC")
    starts = stream_starts(WatermarkStore(lake).all_for(source.name), overlap=pd.Timedelta(source.overlap),
                           default_start=now - pd.Timedelta(source.initial_lookback))
    # A stream that is somehow ahead of the clock still gets a (tiny) valid window.
    latest_start = now - pd.Timedelta(seconds=1)
    window = Window(min(starts.pop(SOURCE_STREAM), latest_start), now)
    if not tracks_streams(built):
        return built.fetch(window)
    return built.fetch(window, since={s: min(t, latest_start) for s, t in starts.items()})


@task(cache_policy=NO_CACHE)
def check_batch(batch: SourceBatch, source: SourceConfig, settings: Settings) -> ContractResult:
    if batch.telemetry.empty and not batch.expect_rows:
        return nothing_new(source.name)
    return check_telemetry(
        batch.telemetry,
        batch.catalogue,
        source=source.name,
        now=pd.Timestamp.now(tz="UTC"),
        max_staleness=pd.Timedelta(source.max_staleness),
        max_quarantine_ratio=settings.max_quarantine_ratio,
        contract=SourceContract(kind=source.kind, grid=batch.grid, max_series=source.max_series),
        rejected=0 if batch.rejected is None else len(batch.rejected),
    )


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_unless_permanent, cache_policy=NO_CACHE)
def store_batch(lake: Lake, batch: SourceBatch, result: ContractResult) -> dict[str, Any]:
    """Write what the contract allows; record the batch in the ledger either way. Offsets are
    committed and watermarks advanced only once the lake, read back, holds every row written."""
    quarantine_path = write_quarantine(lake, quarantine_failed_batch(result))
    if batch.rejected is not None and len(batch.rejected):
        write_rejected(lake, result.source, batch.rejected)
    logs = None if batch.logs is None or batch.logs.empty else batch.logs
    to_store: dict[str, pd.DataFrame] = {}
    if result.passed:
        to_store["telemetry"] = result.clean
        if len(batch.catalogue):
            to_store["catalogue"] = batch.catalogue
        if logs is not None:
            to_store["logs"] = logs.drop_duplicates(["ts", "resource_id", "template_id", "message"])
        if batch.incidents is not None and len(batch.incidents):
            to_store["incidents"] = batch.incidents
    elif logs is not None:
        # Logs of a failed batch wait in the quarantine with it: acknowledged upstream, never lost.
        failed = ", ".join(c.name for c in result.checks if not c.passed)
        lake.write_file(f"quarantine/logs/batch-{result.batch_id}.parquet",
                        logs.assign(reason=f"batch failed contract: {failed}", batch_id=result.batch_id))
    written = {name: lake.upsert(name, frame).written for name, frame in to_store.items()}
    try:
        for name, frame in to_store.items():
            lake.confirm_stored(name, frame)
    except LakeWriteNotDurableError as lost:
        lake.upsert("batches", _ledger(batch, result, not_durable=lost))  # no offsets, no watermarks
        raise
    if batch.on_stored is not None:
        batch.on_stored()  # acknowledge upstream only now that the lake holds the batch
    if result.passed and len(result.clean):
        _advance_watermarks(lake, batch, result)
    ledger = _ledger(batch, result)
    lake.upsert("batches", ledger)
    row = ledger.iloc[0]
    return {"source": result.source, "passed": result.passed, "written": written, "quarantine": quarantine_path,
            "accepted": int(row["accepted"]), "quarantined": int(row["quarantined"]),
            "rejected_messages": int(row["rejected_messages"]),
            # why rows left the batch: per-row reasons, or the failed checks for a failed batch
            "reasons": result.reasons if result.passed else {
                **result.reasons,
                f"batch failed its contract: {', '.join(c.name for c in result.failed_checks)}": len(result.clean)}}


def _ledger(batch: SourceBatch, result: ContractResult, *,
            not_durable: LakeWriteNotDurableError | None = None) -> pd.DataFrame:
    """The batch's ledger row; a write the lake did not keep is recorded as nothing accepted."""
    failed_checks = [c.name for c in result.checks if not c.passed]
    reasons = dict(result.reasons)
    if not_durable is not None:
        failed_checks.append("durable_write")
        reasons[f"lake write not durable: {not_durable.message}"] = not_durable.missing
    return pd.DataFrame(
        [
            {
                "batch_id": result.batch_id,
                "source": result.source,
                "started_at": pd.Timestamp.now(tz="UTC"),
                "passed": result.passed,
                "accepted": len(result.clean) if result.passed and not_durable is None else 0,
                "quarantined": len(result.quarantined) + (0 if result.passed else len(result.clean)),
                "rejected_messages": 0 if batch.rejected is None else len(batch.rejected),
                "reasons": json.dumps(reasons),
                "failed_checks": json.dumps(failed_checks),
            }
        ]
    )


def _advance_watermarks(lake: Lake, batch: SourceBatch, result: ContractResult) -> None:
    """Each complete stream's watermark to its newest stored sample (quarantined rows, e.g. far
    in the future, never move it); incomplete streams stay where they were."""
    store = WatermarkStore(lake)
    if batch.streams is None:
        if batch.complete:
            store.advance(result.source, SOURCE_STREAM, result.clean["ds"].max())
        return
    streams = result.clean["unique_id"].astype(str).map(batch.streams)
    store.advance_many(result.source, newest_per_stream(result.clean["ds"], streams,
                                                        exclude=batch.incomplete_streams))


@flow(name="ingest", log_prints=True, on_completion=SELF_METRICS, on_failure=SELF_METRICS)
def ingest(config_file: str | None = None) -> list[dict[str, Any]]:
    """Pull every configured source into the lake through its data contract; one outcome per
    source (``source, passed, accepted, quarantined, ...``). Ends Failed, after storing every
    other source, when any source's contract failed."""
    settings = settings_for_run(config_file)
    logger = get_run_logger()
    lake = open_lake(settings)
    outcomes = []
    for source in settings.sources:
        batch = fetch_source(source, lake)
        result = check_batch(batch, source, settings)
        outcome = store_batch(lake, batch, result)
        level = logger.info if result.passed else logger.error
        level("source %s: contract %s, %d accepted, %d quarantined", source.name,
              "passed" if result.passed else "FAILED", len(result.clean), len(result.quarantined))
        create_markdown_artifact(
            key=f"contract-{_slug(source.name)}", markdown=result.summary_markdown(),
            description=f"Data contract report for source {source.name}",
        )
        outcomes.append(outcome)
    failed = [outcome["source"] for outcome in outcomes if not outcome["passed"]]
    if failed:
        raise contract_failed_error(failed, outcomes)
    return outcomes


def contract_failed_error(failed: list[str], outcomes: list[dict[str, Any]]) -> SourceContractFailedError:
    """The ingest run's closing error: each failed source with its failed checks and its commonest
    row problem, every source's outcome attached (``result``)."""
    by_source = {outcome["source"]: outcome for outcome in outcomes}
    return SourceContractFailedError(
        f"data contract failed for source{'s' if len(failed) > 1 else ''} "
        f"{'; '.join(_why(name, by_source[name].get('reasons', {})) for name in failed)}; "
        "its rows are in the lake's quarantine, every other source was stored",
        sources=failed, result=outcomes,
        hint="fix the source and ingest again; detect holds back its series' pages until its next clean batch",
    )


def _why(source: str, reasons: dict[str, int]) -> str:
    prefix = "batch failed its contract: "
    checks = [reason.removeprefix(prefix) for reason in reasons if reason.startswith(prefix)]
    rows = sorted(((n, reason) for reason, n in reasons.items() if not reason.startswith(prefix)), reverse=True)
    detail = ", ".join(checks) + (f"; {rows[0][0]:,} rows {rows[0][1]}" if rows else "")
    return f"{source} ({detail})" if detail else source


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")
