"""PagerDuty history as labels, the pure parts: query windows, the false-positive note, row mapping."""

from __future__ import annotations

import pandas as pd
import pytest

from connectors.labels.pagerduty_history import (
    LABEL_COLUMNS,
    MAX_QUERY_SPAN,
    history_windows,
    incident_labels,
    is_false_positive,
    true_incidents,
)
from foresight.schemas import INCIDENT_COLUMNS, UTC_DTYPE


def _incident(**overrides: object) -> dict:
    base: dict = {
        "id": "PABC123",
        "status": "resolved",
        "created_at": "2026-03-01T10:00:00Z",
        "last_status_change_at": "2026-03-01T11:30:00Z",
        "urgency": "high",
        "priority": None,
        "title": "[checkout] resource_leak on i-0abc since 2026-03-01 09:55Z",
        "incident_key": "foresight/x",
        "service": {"id": "PSVC1", "type": "service_reference", "summary": "Checkout API"},
    }
    return base | overrides


def test_windows_cover_the_span_without_gaps_or_overlap() -> None:
    windows = history_windows("2025-01-01", "2026-03-01")
    assert windows[0][0] == pd.Timestamp("2025-01-01", tz="UTC")
    assert windows[-1][1] == pd.Timestamp("2026-03-01", tz="UTC")
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    assert all(stop - start <= MAX_QUERY_SPAN for start, stop in windows)
    assert len(windows) == 3
    assert history_windows("2026-03-01", "2026-03-02") == [
        (pd.Timestamp("2026-03-01", tz="UTC"), pd.Timestamp("2026-03-02", tz="UTC"))
    ]
    with pytest.raises(ValueError, match="after since"):
        history_windows("2026-03-02", "2026-03-01")


@pytest.mark.parametrize(
    ("contents", "expected"),
    [
        (["#false-positive: backup job"], True),
        (["Resolved. #FALSE-POSITIVE"], True),
        (["looked at it", "noise #false-positive"], True),
        (["real outage, see postmortem"], False),
        (["#false-positives are rare"], False),  # a longer word is not the tag
        (["not-#false-positive"], False),
        ([], False),
    ],
)
def test_false_positive_tag_in_any_note(contents: list[str], expected: bool) -> None:
    assert is_false_positive([{"content": c} for c in contents]) is expected


def test_labels_follow_the_incident_schema() -> None:
    incidents = [
        _incident(),
        _incident(
            id="PDEF456",
            created_at="2026-03-02T08:00:00Z",
            status="triggered",
            title="Disk full on db-1",
            urgency="low",
            service={"id": "PSVC2", "summary": "Database"},
        ),
        _incident(
            id="PGHI789",
            created_at="2026-02-28T08:00:00Z",
            resolved_at="2026-02-28T09:00:00Z",
            priority={"name": "P1", "summary": "P1"},
            title="[cart] errors on cart since x",
        ),
    ]
    notes = {"PABC123": [{"content": "#false-positive"}], "PGHI789": [{"content": "fixed the config"}]}
    labels = incident_labels(incidents, notes)
    assert tuple(labels.columns) == LABEL_COLUMNS
    assert list(labels["incident_id"]) == ["pd-PGHI789", "pd-PABC123", "pd-PDEF456"]  # by start
    assert labels["start"].dtype == UTC_DTYPE and labels["end"].dtype == UTC_DTYPE
    first, second, third = labels.to_dict("records")
    assert (first["service"], first["category"], first["severity"]) == ("cart", "errors", "critical")
    assert first["end"] == pd.Timestamp("2026-02-28T09:00:00Z") and not first["false_positive"]
    assert (second["service"], second["category"], second["severity"]) == (
        "checkout",
        "resource_leak",
        "error",
    )
    assert second["end"] == pd.Timestamp("2026-03-01T11:30:00Z") and second["false_positive"]
    # Not raised by Foresight: the PagerDuty service's name, category unknown, still open.
    assert (third["service"], third["category"], third["severity"]) == ("Database", "unknown", "warning")
    assert pd.isna(third["end"]) and not third["false_positive"]


def test_service_map_wins_and_open_incidents_are_never_false_positives() -> None:
    incidents = [
        _incident(status="acknowledged", title="High CPU", service={"id": "PSVC9", "summary": "Web"})
    ]
    labels = incident_labels(
        incidents, {"PABC123": [{"content": "#false-positive"}]}, service_map={"PSVC9": "frontend"}
    )
    assert labels.loc[0, "service"] == "frontend" and not labels.loc[0, "false_positive"]
    by_name = incident_labels([_incident(title="x")], {}, service_map={"Checkout API": "checkout"})
    assert by_name.loc[0, "service"] == "checkout"


def test_true_incidents_drop_false_positives_and_keep_the_schema() -> None:
    labels = incident_labels(
        [_incident(), _incident(id="P2", created_at="2026-03-03T00:00:00Z")],
        {"PABC123": [{"content": "#false-positive"}]},
    )
    real = true_incidents(labels)
    assert tuple(real.columns) == INCIDENT_COLUMNS
    assert list(real["incident_id"]) == ["pd-P2"]
    with pytest.raises(ValueError, match="false_positive"):
        true_incidents(labels.drop(columns="false_positive"))


def test_a_malformed_incident_is_named() -> None:
    with pytest.raises(ValueError, match="created_at"):
        incident_labels([_incident(created_at=None)], {})


def test_no_incidents_is_an_empty_frame_with_the_columns() -> None:
    labels = incident_labels([], {})
    assert labels.empty and tuple(labels.columns) == LABEL_COLUMNS
    assert labels["start"].dtype == UTC_DTYPE
