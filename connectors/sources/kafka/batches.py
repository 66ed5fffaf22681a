"""A batch of decoded Kafka messages as telemetry, catalogue and log frames, plus its rejects (pure).

Single messages are decoded by :mod:`connectors.sources.kafka.messages`. Here the batch's metric
samples become long telemetry (``ds`` left raw for the data contract to parse) and a catalogue,
and its log records log rows. A series whose label set changes within a batch keeps its
samples; the catalogue takes the label set of its last message (the newest, within a partition)
and ``label_changes`` counts them. Log records meet no contract, so their timestamps are parsed
here for the whole batch at once: unparseable or naive ones are rejected.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from connectors.sources.kafka.messages import (
    EPOCH_MILLIS_FROM,
    KafkaMessage,
    LogRecord,
    MetricSample,
    Reject,
    RejectReason,
    decode_log,
    decode_metric,
)
from foresight.schemas import CATALOGUE_COLUMNS, LOG_COLUMNS, UTC_DTYPE

_AWARE_SUFFIX = r"(?:[Zz]|UTC|GMT|[+-]\d{2}:?\d{2})$"


@dataclass
class DecodedBatch:
    """Rows and rejects from one batch of messages."""

    telemetry: pd.DataFrame  # unique_id, ds (raw: text or epoch seconds), y (float64)
    catalogue: pd.DataFrame  # CATALOGUE_COLUMNS, one row per unique_id
    logs: pd.DataFrame  # LOG_COLUMNS
    rejects: list[Reject] = field(default_factory=list)
    label_changes: int = 0  # series whose label set changed within the batch

    def rejected_frame(self) -> pd.DataFrame:
        """``origin, raw, reason`` for :attr:`connectors.sources.base.SourceBatch.rejected`."""
        return pd.DataFrame(
            {
                "origin": pd.Series([r.message.origin for r in self.rejects], dtype="string"),
                "raw": pd.Series([r.raw for r in self.rejects], dtype="string"),
                "reason": pd.Series([r.reason for r in self.rejects], dtype="string"),
            }
        )


def decode_batch(
    metrics: Iterable[KafkaMessage],
    logs: Iterable[KafkaMessage] = (),
    *,
    source: str,
    default_unit: str,
) -> DecodedBatch:
    """Decode metric and log messages into telemetry, catalogue and log frames plus rejects."""
    samples: list[MetricSample] = []
    records: list[tuple[KafkaMessage, LogRecord]] = []
    rejects: list[Reject] = []
    for message in metrics:
        decoded = decode_metric(message.value)
        if isinstance(decoded, str):
            rejects.append(Reject(message, decoded))
        else:
            samples.append(decoded)
    for message in logs:
        record = decode_log(message.value)
        if isinstance(record, str):
            rejects.append(Reject(message, record))
        else:
            records.append((message, record))
    log_frame, log_rejects = _log_frame(records)
    catalogue, label_changes = _catalogue(samples, source=source, default_unit=default_unit)
    return DecodedBatch(
        telemetry=_telemetry(samples),
        catalogue=catalogue,
        logs=log_frame,
        rejects=sorted(
            rejects + log_rejects, key=lambda r: (r.message.topic, r.message.partition, r.message.offset)
        ),
        label_changes=label_changes,
    )


def _telemetry(samples: list[MetricSample]) -> pd.DataFrame:
    """Long telemetry; ``ds`` stays raw (object: text or epoch seconds) for the contract to parse."""
    return pd.DataFrame(
        {
            "unique_id": pd.Series([s.unique_id for s in samples], dtype="string"),
            "ds": pd.Series([s.ts for s in samples], dtype=object),
            "y": pd.Series([s.value for s in samples], dtype="float64"),
        }
    )


def _catalogue(samples: list[MetricSample], *, source: str, default_unit: str) -> tuple[pd.DataFrame, int]:
    """One catalogue row per series (its last message wins) and how many series changed labels."""
    label_sets = pd.Series([tuple(sorted(s.labels.items())) for s in samples], dtype=object)
    rows = pd.DataFrame(
        {
            "unique_id": [s.unique_id for s in samples],
            "source": source,
            "metric": [s.metric for s in samples],
            "labels": label_sets,
            "service": [s.service for s in samples],
            "resource_id": [s.resource for s in samples],
            "instance_type": [s.labels.get("instance_type", "") for s in samples],
            "unit": pd.Series([s.unit for s in samples], dtype=object).fillna(default_unit),
        },
        columns=list(CATALOGUE_COLUMNS),
    )
    label_changes = int((rows.groupby("unique_id")["labels"].nunique() > 1).sum()) if len(rows) else 0
    catalogue = rows.drop_duplicates("unique_id", keep="last").sort_values("unique_id", kind="stable")
    catalogue["labels"] = catalogue["labels"].map(lambda pairs: json.dumps(dict(pairs), sort_keys=True))
    return catalogue.astype("string").reset_index(drop=True), label_changes


def _log_frame(records: list[tuple[KafkaMessage, LogRecord]]) -> tuple[pd.DataFrame, list[Reject]]:
    """Log rows with ``ts`` parsed for the whole batch; unparseable or naive times are rejected."""
    rows = pd.DataFrame(
        [(r.ts, r.service, r.resource, r.level, r.template_id, r.message) for _, r in records],
        columns=["raw_ts", *LOG_COLUMNS[1:]],
        dtype=object,
    )
    ts, why = _parse_log_times(rows["raw_ts"])
    bad = why.notna().to_numpy()
    rejects = [Reject(records[i][0], str(why.iloc[i])) for i in np.flatnonzero(bad)]
    frame = rows.assign(ts=ts)[~bad][list(LOG_COLUMNS)]
    text = {c: "string" for c in LOG_COLUMNS if c != "ts"}
    return frame.astype({**text, "ts": UTC_DTYPE}).reset_index(drop=True), rejects


def _parse_log_times(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Raw log ``ts`` (ISO text with a zone, or epoch seconds) as UTC, with a reason where it fails."""
    ts = pd.Series(pd.NaT, index=raw.index, dtype=UTC_DTYPE)
    why = pd.Series(None, index=raw.index, dtype=object)
    is_text = raw.map(lambda v: isinstance(v, str)).astype(bool).to_numpy() if len(raw) else np.zeros(0, bool)
    text = raw[is_text].astype(str).str.strip()
    if len(text):
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        aware = text.str.contains(_AWARE_SUFFIX, regex=True).to_numpy(dtype=bool)
        ts[text.index] = parsed.dt.as_unit("us")
        why[text.index[parsed.notna().to_numpy() & ~aware]] = RejectReason.TS_NAIVE
        why[text.index[parsed.isna().to_numpy()]] = RejectReason.TS_NOT_TIMESTAMP
    seconds = raw[~is_text].astype("float64")
    if len(seconds):
        values = seconds.to_numpy()
        usable = np.isfinite(values) & (np.abs(values) < EPOCH_MILLIS_FROM)
        micros = np.where(usable, np.round(values * 1e6), 0).astype("int64")
        ts[seconds.index[usable]] = pd.to_datetime(micros[usable], unit="us", utc=True)
        why[seconds.index[~usable]] = RejectReason.TS_NOT_TIMESTAMP
    return ts.where(why.isna()), why
