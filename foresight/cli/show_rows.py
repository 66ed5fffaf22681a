"""The rows ``foresight show`` prints, from what the stores hold (pure: frames and events in, rows out)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from foresight.cli.output import frame_rows


def plan_rows(plan: pd.DataFrame, forecasts: pd.DataFrame) -> list[dict[str, Any]]:
    """The capacity plan's rows (every stored column) with the model and version that forecast each
    series (the store's newest forecast of it), placed after ``metric``."""
    if plan.empty:
        return []
    newest = (forecasts.sort_values(["unique_id", "created_at", "ds"], kind="stable")
              .drop_duplicates("unique_id", keep="last").set_index("unique_id"))
    models = newest.reindex(plan["unique_id"])
    frame = plan.copy()
    at = list(frame.columns).index("metric") + 1 if "metric" in frame.columns else len(frame.columns)
    frame.insert(at, "model", models["model_name"].to_numpy())
    frame.insert(at + 1, "forecast_model_version", models["model_version"].to_numpy())
    return frame_rows(frame)


def incident_rows(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per incident the outbox holds (its trigger event), newest first; ``status`` is
    ``resolved`` once a resolve event with its dedup key was written, else ``open``."""
    events = list(events)
    resolved = {e.get("dedup_key") for e in events if e.get("event_action") == "resolve"}
    rows = []
    for event in events:
        if event.get("event_action") != "trigger":
            continue
        payload = event.get("payload") or {}
        rows.append({
            "timestamp": payload.get("timestamp"),
            "status": "resolved" if event.get("dedup_key") in resolved else "open",
            "severity": payload.get("severity"),
            "service": payload.get("component"),
            "class": payload.get("class"),
            "summary": payload.get("summary"),
            "dedup_key": event.get("dedup_key"),
        })
    return sorted(rows, key=lambda row: str(row["timestamp"] or ""), reverse=True)
