"""PagerDuty incident history as training labels, read through the REST API.

What on-call engineers did with past pages is the best label Foresight can get: which
incidents happened (``GET /incidents`` over ``since`` / ``until``, paginated) and which of them
were noise. PagerDuty has no "false positive" field (``resolve_reason`` only records merges),
so the convention is an **incident note**: whoever resolves a page that was not a real
problem adds a note containing the tag (default ``#false-positive``, setting
``sinks.pagerduty_false_positive_tag``), from the web UI, the mobile app or Slack. Notes
are read (``GET /incidents/{id}/notes``) for resolved incidents only; a note is what a person
decided, so an open incident is never a false positive yet.

Rows follow Foresight's incident schema (``foresight.schemas.INCIDENT_COLUMNS``) plus
``false_positive`` and PagerDuty provenance (:data:`LABEL_COLUMNS`):

- ``service``: ``service_map`` (PagerDuty service id or name -> Foresight service) first; else
  the ``[service]`` prefix of a page Foresight raised (its summary is the incident title);
  else the PagerDuty service's name.
- ``category``: the category in a Foresight title, else ``unknown``.
- ``start`` / ``end``: ``created_at``; ``resolved_at`` (or ``last_status_change_at``) once resolved.
- ``severity``: priority P1..P5 -> critical, error, warning, info, info when the account uses
  priorities, else urgency high -> error, low -> warning.

Building requests and turning answers into rows is pure (:func:`history_windows`,
:func:`incident_labels`, :func:`is_false_positive`, :func:`true_incidents`);
:class:`PagerDutyHistory` only talks to the API. Its retries are pdpyras' own, bounded (one
layer: the caller adds none); the list endpoint accepts at most six months per query, so
longer spans are split.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from connectors.sinks.pagerduty import pdpyras
from foresight.redact import redact_url
from foresight.schemas import INCIDENT_CATEGORIES, INCIDENT_COLUMNS, UTC_DTYPE
from foresight.timeutil import utc_timestamp

if TYPE_CHECKING:
    from pdpyras import APISession

    from foresight.settings import Settings

DEFAULT_API_URL = "https://api.pagerduty.com"
DEFAULT_FALSE_POSITIVE_TAG = "#false-positive"
MAX_QUERY_SPAN = pd.Timedelta(days=180)  # "since and until allow a maximum of 6 months of range"
PAGE_SIZE = 100  # the most a classic-pagination page holds
LABEL_COLUMNS: tuple[str, ...] = (
    *INCIDENT_COLUMNS,
    "false_positive",
    "pagerduty_id",
    "incident_key",
    "status",
    "urgency",
)
UNKNOWN_CATEGORY = "unknown"
PRIORITY_SEVERITY: dict[str, str] = {
    "P1": "critical",
    "P2": "error",
    "P3": "warning",
    "P4": "info",
    "P5": "info",
}
URGENCY_SEVERITY: dict[str, str] = {"high": "error", "low": "warning"}
_FORESIGHT_TITLE = re.compile(r"^\[(?P<service>[^\]]+)\] (?P<category>[\w-]+) on ")


class PagerDutyHistoryError(RuntimeError):
    """The REST API did not give the history; ``.status`` is its HTTP status (None: network)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


# -- pure: queries and labels ------------------------------------------------------------------
def history_windows(
    since: pd.Timestamp | str, until: pd.Timestamp | str, max_span: pd.Timedelta = MAX_QUERY_SPAN
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``[since, until)`` cut into consecutive UTC windows no longer than ``max_span`` (one query each)."""
    start, end = utc_timestamp(since, "since"), utc_timestamp(until, "until")
    if end <= start:
        raise ValueError(f"until ({end}) must be after since ({start})")
    if max_span <= pd.Timedelta(0):
        raise ValueError(f"max_span must be positive, got {max_span}")
    windows = []
    while start < end:
        stop = min(start + max_span, end)
        windows.append((start, stop))
        start = stop
    return windows


def is_false_positive(notes: Iterable[Mapping[str, Any]], tag: str = DEFAULT_FALSE_POSITIVE_TAG) -> bool:
    """True when any note's content contains ``tag`` (case-insensitive, not as part of a longer word)."""
    if not tag.strip():
        raise ValueError("the false-positive tag must not be blank")
    pattern = re.compile(rf"(?<![\w-]){re.escape(tag.strip())}(?![\w-])", re.IGNORECASE)
    return any(pattern.search(str(note.get("content") or "")) for note in notes)


def incident_labels(
    incidents: Iterable[Mapping[str, Any]],
    notes_by_id: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    tag: str = DEFAULT_FALSE_POSITIVE_TAG,
    service_map: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """REST API incident objects (and their notes) as label rows with :data:`LABEL_COLUMNS`, by start."""
    service_map = service_map or {}
    rows = []
    for incident in incidents:
        for name in ("id", "created_at", "status"):
            if not incident.get(name):
                raise ValueError(f"PagerDuty incident without {name!r}: {dict(incident)!r}")
        title = str(incident.get("title") or "")
        parsed = _FORESIGHT_TITLE.match(title)
        service_ref = incident.get("service") or {}
        service = (
            service_map.get(str(service_ref.get("id")))
            or service_map.get(str(service_ref.get("summary")))
            or (parsed.group("service") if parsed else None)
            or service_ref.get("summary")
        )
        if not service:
            raise ValueError(f"PagerDuty incident {incident['id']} has no service")
        category = parsed.group("category") if parsed else UNKNOWN_CATEGORY
        resolved = incident["status"] == "resolved"
        end = (incident.get("resolved_at") or incident.get("last_status_change_at")) if resolved else None
        rows.append(
            {
                "incident_id": f"pd-{incident['id']}",
                "service": str(service),
                "category": category if category in INCIDENT_CATEGORIES else UNKNOWN_CATEGORY,
                "start": incident["created_at"],
                "end": end,
                "severity": _severity(incident),
                "false_positive": resolved
                and is_false_positive(notes_by_id.get(str(incident["id"]), ()), tag),
                "pagerduty_id": str(incident["id"]),
                "incident_key": incident.get("incident_key"),
                "status": str(incident["status"]),
                "urgency": incident.get("urgency"),
            }
        )
    frame = pd.DataFrame(rows, columns=list(LABEL_COLUMNS))
    for column in ("start", "end"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601").astype(UTC_DTYPE)
    for column in (
        "incident_id",
        "service",
        "category",
        "severity",
        "pagerduty_id",
        "incident_key",
        "status",
        "urgency",
    ):
        frame[column] = frame[column].astype("string")
    frame["false_positive"] = frame["false_positive"].astype(bool)
    return frame.sort_values(["start", "incident_id"]).reset_index(drop=True)


def true_incidents(labels: pd.DataFrame) -> pd.DataFrame:
    """The labels that were real problems, in the incident schema (what ``failure_labels`` takes)."""
    missing = [c for c in (*INCIDENT_COLUMNS, "false_positive") if c not in labels.columns]
    if missing:
        raise ValueError(f"labels lack columns {missing}")
    return labels.loc[~labels["false_positive"].astype(bool), list(INCIDENT_COLUMNS)].reset_index(drop=True)


def _severity(incident: Mapping[str, Any]) -> str:
    priority = incident.get("priority") or {}
    name = str(priority.get("name") or priority.get("summary") or "").upper()
    if name in PRIORITY_SEVERITY:
        return PRIORITY_SEVERITY[name]
    return URGENCY_SEVERITY.get(str(incident.get("urgency")), "warning")


def _iso(ts: pd.Timestamp) -> str:
    return ts.isoformat().replace("+00:00", "Z")


# -- the REST API (I/O) ------------------------------------------------------------------------
class PagerDutyHistory:
    """Reads incidents and their notes from the PagerDuty REST API v2."""

    def __init__(
        self,
        api_token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        tag: str = DEFAULT_FALSE_POSITIVE_TAG,
        max_attempts: int = 4,
        backoff_seconds: float = 1.5,
        timeout: float = 30.0,
    ) -> None:
        if not api_token:
            raise ValueError("a PagerDuty REST API token is required to read incident history")
        if not api_url.startswith(("http://", "https://")):
            raise ValueError(f"api_url must be an http(s) URL, got {redact_url(api_url)!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self._token = api_token
        self.api_url = api_url.rstrip("/")
        self.tag = tag
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> PagerDutyHistory | None:
        """The reader the settings describe, or None without a REST API token."""
        sinks = settings.sinks
        if sinks.pagerduty_api_token is None:
            return None
        return cls(
            sinks.pagerduty_api_token.get_secret_value(),
            api_url=sinks.pagerduty_api_url,
            tag=sinks.pagerduty_false_positive_tag,
            max_attempts=sinks.pagerduty_max_attempts,
        )

    def __repr__(self) -> str:  # never show the token
        return f"PagerDutyHistory(api_url={redact_url(self.api_url)!r})"

    def _session(self) -> APISession:
        session = pdpyras().APISession(self._token)
        session.url = self.api_url
        session.timeout = self.timeout
        # pdpyras retries (exponential from backoff_seconds), bounded to max_attempts in all.
        retries = self.max_attempts - 1
        session.retry = {status: retries for status in (429, 500, 502, 503, 504)} if retries else {429: 1}
        session.max_http_attempts = retries if retries else -1  # -1: return the first 429 unretried
        session.max_network_attempts = retries
        session.sleep_timer = self.backoff_seconds / session.sleep_timer_base
        return session

    def incidents(
        self, since: pd.Timestamp | str, until: pd.Timestamp | str, *, service_ids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Every incident created in ``[since, until)``, oldest first, across as many queries as needed."""
        seen: dict[str, dict[str, Any]] = {}
        with self._session() as session:
            for start, stop in history_windows(since, until):
                params: dict[str, Any] = {"since": _iso(start), "until": _iso(stop), "time_zone": "UTC"}
                if service_ids:
                    params["service_ids"] = list(service_ids)
                for incident in self._call(
                    lambda p=params: list(session.iter_all("/incidents", params=p)),  # type: ignore[misc]
                    "list incidents",
                ):
                    seen.setdefault(str(incident["id"]), incident)
        return sorted(seen.values(), key=lambda i: (str(i.get("created_at")), str(i["id"])))

    def notes(self, incident_id: str) -> list[dict[str, Any]]:
        """The notes on one incident."""
        with self._session() as session:
            return self._notes(session, incident_id)

    def _notes(self, session: APISession, incident_id: str) -> list[dict[str, Any]]:
        answer = self._call(
            lambda: session.rget(f"/incidents/{incident_id}/notes"), f"notes of {incident_id}"
        )
        return list(answer) if isinstance(answer, list) else []

    def labels(
        self,
        since: pd.Timestamp | str,
        until: pd.Timestamp | str,
        *,
        service_ids: list[str] | None = None,
        service_map: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        """Incident history in ``[since, until)`` as label rows (:func:`incident_labels`)."""
        incidents = self.incidents(since, until, service_ids=service_ids)
        notes: dict[str, list[dict[str, Any]]] = {}
        with self._session() as session:
            for incident in incidents:
                if incident.get("status") == "resolved":
                    notes[str(incident["id"])] = self._notes(session, str(incident["id"]))
        return incident_labels(incidents, notes, tag=self.tag, service_map=service_map)

    @staticmethod
    def _call(call: Any, what: str) -> Any:
        module = pdpyras()
        try:
            return call()
        except module.PDClientError as exc:
            status = None if exc.response is None else int(exc.response.status_code)
            raise PagerDutyHistoryError(f"PagerDuty REST API, {what}: {exc}", status) from exc
