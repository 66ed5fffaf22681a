"""Pure handling of GetMetricData responses: merge pages per query id, judge them, make frames.

A query's datapoints may arrive over several pages (``NextToken``), each page with a
``StatusCode`` for it: ``PartialData`` means "more on a later page"; ``InternalError`` and
``Forbidden`` mean the query failed. Merging keeps every page's points and the worst status,
so one failing metric is reported on its own and the others still arrive.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from connectors.sources.cloudwatch.queries import MetricSpec, QueryBatch
from foresight.schemas import CATALOGUE_COLUMNS, ID_COL, TARGET_COL, TIME_COL, UTC_DTYPE, empty_telemetry

FAILED_STATUSES = frozenset({"InternalError", "Forbidden"})


@dataclass
class QueryResult:
    """One query's datapoints over all pages of one call, and what CloudWatch said about it."""

    timestamps: list[Any] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)  # one per page the query appeared in
    messages: list[dict[str, str]] = field(default_factory=list)

    @property
    def status(self) -> str:
        """A failure on any page wins; otherwise the last page's status."""
        failed = [s for s in self.statuses if s in FAILED_STATUSES]
        return failed[0] if failed else (self.statuses[-1] if self.statuses else "Missing")


@dataclass(frozen=True)
class SeriesFailure:
    """A query that did not come back complete: its series, status and CloudWatch's messages."""

    query_id: str
    spec: MetricSpec
    status: str
    messages: tuple[dict[str, str], ...]
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def reason(self) -> str:
        said = "; ".join(f"{m.get('Code', '?')}: {m.get('Value', '')}" for m in self.messages) or "no message"
        return f"cloudwatch {self.status} for {self.spec.describe()} ({said})"


def merge_pages(pages: Iterable[Mapping[str, Any]]) -> dict[str, QueryResult]:
    """Every page of one call merged per query id, in page order."""
    merged: dict[str, QueryResult] = {}
    for page in pages:
        for item in page.get("MetricDataResults", []):
            result = merged.setdefault(item["Id"], QueryResult())
            result.timestamps.extend(item.get("Timestamps", []))
            result.values.extend(item.get("Values", []))
            result.statuses.append(item.get("StatusCode", "Complete"))
            result.messages.extend(item.get("Messages", []))
    return merged


def call_messages(pages: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The call-level ``Messages`` of every page (e.g. limits CloudWatch applied to the call)."""
    return [message for page in pages for message in page.get("Messages", [])]


def failures(batch: QueryBatch, merged: Mapping[str, QueryResult]) -> list[SeriesFailure]:
    """Queries of ``batch`` that failed, stayed partial after the last page, or never came back."""
    out = []
    for qid, spec in batch.specs.items():
        result = merged.get(qid, QueryResult())
        if result.status != "Complete":
            out.append(SeriesFailure(qid, spec, result.status, tuple(result.messages), batch.start, batch.end))
    return out


def telemetry_frame(specs: Mapping[str, MetricSpec], merged: Mapping[str, QueryResult]) -> pd.DataFrame:
    """Long telemetry ``unique_id, ds, y`` from merged results (ids not in ``specs`` are ignored)."""
    known = [(specs[qid].unique_id, r) for qid, r in merged.items() if qid in specs and r.timestamps]
    if not known:
        return empty_telemetry()
    if any(len(r.timestamps) != len(r.values) for _, r in known):
        bad = [uid for uid, r in known if len(r.timestamps) != len(r.values)]
        raise ValueError(f"cloudwatch returned timestamps and values of different lengths for {bad}")
    lengths = np.fromiter((len(r.timestamps) for _, r in known), dtype=np.int64, count=len(known))
    ids = np.repeat(np.array([uid for uid, _ in known], dtype=object), lengths)
    stamps = [t for _, r in known for t in r.timestamps]
    values = np.concatenate([np.asarray(r.values, dtype="float64") for _, r in known])
    return pd.DataFrame({
        ID_COL: pd.array(ids, dtype="string"),
        TIME_COL: pd.to_datetime(pd.Series(stamps, dtype=object), utc=True).astype(UTC_DTYPE),
        TARGET_COL: values,
    })


def catalogue_frame(specs: Sequence[MetricSpec], source: str) -> pd.DataFrame:
    """The series catalogue (``schemas.CATALOGUE_COLUMNS``) for ``specs``."""
    return pd.DataFrame({
        "unique_id": pd.array([s.unique_id for s in specs], dtype="string"),
        "source": source,
        "metric": [s.metric for s in specs],
        "labels": [s.labels for s in specs],
        "service": [s.service for s in specs],
        "resource_id": [s.resource for s in specs],
        "instance_type": "",
        "unit": [s.unit for s in specs],
    }, columns=list(CATALOGUE_COLUMNS))


def rejected_frame(failed: Sequence[SeriesFailure]) -> pd.DataFrame:
    """Failed queries as rejected messages (origin, raw, reason) so the quarantine records them."""
    return pd.DataFrame({
        "origin": [f"cloudwatch/{f.spec.unique_id}/{f.start.isoformat()}/{f.end.isoformat()}" for f in failed],
        "raw": [json.dumps({"query_id": f.query_id, "status": f.status, "messages": list(f.messages),
                            "labels": json.loads(f.spec.labels)}, sort_keys=True) for f in failed],
        "reason": [f.reason for f in failed],
    }, columns=["origin", "raw", "reason"])
