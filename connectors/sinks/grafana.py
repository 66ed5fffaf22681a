"""Grafana HTTP API: upload dashboards and write incident annotations, without duplicates.

:class:`GrafanaClient` speaks Grafana's documented endpoints with a bearer token (a service
account token):

- ``POST /api/dashboards/db`` with ``{"dashboard", "overwrite", "folderUid", "message"}``:
  create or replace a dashboard by ``uid``; answers ``uid``, ``url`` and ``version``;
- ``GET /api/annotations?tags=...``, ``POST /api/annotations``, ``PATCH /api/annotations/<id>``.

:func:`publish_annotations` turns incidents (``models.incidents.rollup`` frame) into region
annotations tagged ``foresight``, ``incident``, ``service:<service>``, ``severity:<severity>``
and ``incident:<incident_id>``. Incident ids are deterministic, so a re-run looks up the
``incident:<id>`` tag first: it creates an annotation only for a new incident, patches one whose
end or text changed (an incident that resolved since), and leaves the rest alone. Grafana is the
record; nothing is kept locally.

Every answer is checked before it is read (status, a JSON body, the fields Foresight uses with
their types): anything else, such as a proxy's HTML page or a 200 without ``uid``, raises
:class:`GrafanaError` with one line naming the endpoint and what was wrong.

No retries here: the calling Prefect task retries (one retry layer, at the edge).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import requests

from foresight.errors import ForesightError
from foresight.redact import redact_url
from foresight.schemas import require_columns

ANNOTATION_TAGS: tuple[str, ...] = ("foresight", "incident")
MAX_UID_LENGTH = 40  # Grafana rejects longer dashboard uids


_MESSAGE_CHARS = 200  # of an answer quoted in an error message
_FieldTypes = Mapping[str, type | tuple[type, ...]]  # field -> the JSON types Foresight accepts


class GrafanaError(ForesightError, RuntimeError):
    """Grafana answered an error, or an answer Foresight cannot read; ``.status``, ``.body`` and
    ``.endpoint`` say which. ``retryable``: a 5xx or 429 (Grafana, or a proxy in front of it,
    overloaded or restarting) may clear by waiting; a 4xx or an unreadable answer will not."""

    def __init__(self, endpoint: str, status: int, body: Any, *, hint: str | None = None) -> None:
        self.endpoint, self.status, self.body = endpoint, status, body
        message = body.get("message") if isinstance(body, Mapping) else body
        super().__init__(f"Grafana {endpoint} answered HTTP {status}: {_one_line(message)}", hint=hint)
        self.retryable = status >= 500 or status == 429


class GrafanaAuthError(GrafanaError):
    """401/403: the token is missing, wrong, or lacks the permission."""


class GrafanaConflictError(GrafanaError):
    """412 on a dashboard save: ``.reason`` is Grafana's status (``version-mismatch``,
    ``name-exists``, ``plugin-dashboard``)."""

    @property
    def reason(self) -> str | None:
        return self.body.get("status") if isinstance(self.body, Mapping) else None


@dataclass(frozen=True)
class DashboardUpload:
    """Grafana's answer to a dashboard save."""

    uid: str
    url: str
    version: int


@dataclass
class AnnotationReport:
    """What :func:`publish_annotations` did, by incident id."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # incident id -> Grafana's error


class GrafanaClient:
    """A Grafana instance at ``url`` (e.g. ``http://grafana:3000``), authenticated by ``token``."""

    def __init__(
        self, url: str, token: str, *, session: requests.Session | None = None, timeout: float = 10.0
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Grafana URL must start with http:// or https://, got {redact_url(url)!r}")
        if not token:
            raise ValueError("a Grafana service account token is required")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> GrafanaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- dashboards --------------------------------------------------------------------------
    def upload_dashboard(
        self,
        dashboard: Mapping[str, Any],
        *,
        folder_uid: str | None = None,
        overwrite: bool = True,
        message: str | None = None,
    ) -> DashboardUpload:
        """Create or replace ``dashboard`` (matched by its ``uid``) and return where it lives."""
        body = dashboard_payload(dashboard, folder_uid=folder_uid, overwrite=overwrite, message=message)
        answer = self._call(
            "POST", "/api/dashboards/db", json_body=body, fields={"uid": str, "url": str, "version": int}
        )
        return DashboardUpload(uid=answer["uid"], url=answer["url"], version=answer["version"])

    # -- annotations -------------------------------------------------------------------------
    def find_annotations(self, tags: Sequence[str], *, limit: int = 100) -> list[dict[str, Any]]:
        """Annotations carrying every tag in ``tags`` (newest first, at most ``limit``)."""
        if not tags:
            raise ValueError("find_annotations needs at least one tag (it must not list every annotation)")
        params: list[tuple[str, str | int]] = [("tags", t) for t in tags]
        params += [("type", "annotation"), ("limit", limit)]
        answer = self._call("GET", "/api/annotations", params=params, shape=list)
        endpoint = "GET /api/annotations"
        for item in answer:
            if not isinstance(item, Mapping):
                raise GrafanaError(endpoint, 200, f"expected a list of annotation objects, got {item!r}")
            _require_fields(endpoint, item, _ANNOTATION_FIELDS)
        return answer

    def create_annotation(self, body: Mapping[str, Any]) -> int:
        """Create an annotation; returns its id."""
        return int(self._call("POST", "/api/annotations", json_body=dict(body), fields={"id": int})["id"])

    def patch_annotation(self, annotation_id: int, changes: Mapping[str, Any]) -> None:
        """Change some fields (``time``, ``timeEnd``, ``text``, ``tags``) of one annotation."""
        self._call("PATCH", f"/api/annotations/{int(annotation_id)}", json_body=dict(changes))

    def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Sequence[tuple[str, str | int]] | None = None,
        shape: type = dict,
        fields: _FieldTypes | None = None,
    ) -> Any:
        """One request; the decoded answer once it is a success, JSON of ``shape`` (object or
        list) and has ``fields`` with their types. Anything else raises :class:`GrafanaError`."""
        endpoint = f"{method} {path}"
        response = self.session.request(
            method, self.url + path, json=json_body, params=params, timeout=self.timeout
        )
        status = response.status_code
        try:
            body: Any = response.json()
            is_json = True
        except ValueError:  # HTML from a proxy or a login page, an empty or cut-off answer
            body, is_json = _answer_text(response), False
        if status in (401, 403):
            raise GrafanaAuthError(endpoint, status, body)
        if status == 412:
            raise GrafanaConflictError(endpoint, status, body)
        if not response.ok:
            raise GrafanaError(endpoint, status, body)
        if not is_json:
            kind = response.headers.get("Content-Type") or "no content type"
            raise GrafanaError(
                endpoint,
                status,
                f"not JSON ({kind}): {body or 'empty body'}",
                hint="is sinks.grafana_url Grafana's own address, not a proxy or a login page?",
            )
        if not isinstance(body, shape):
            expected = "a JSON list" if shape is list else "a JSON object"
            raise GrafanaError(endpoint, status, f"expected {expected}, got {json.dumps(body)}")
        if fields and isinstance(body, Mapping):
            _require_fields(endpoint, body, fields, status=status)
        return body


# The annotation fields Foresight reads back (``id`` to patch; the rest to compare), with types.
_ANNOTATION_FIELDS: _FieldTypes = {
    "id": int,
    "time": (int, type(None)),
    "timeEnd": (int, type(None)),
    "text": (str, type(None)),
    "tags": (list, type(None)),
}


def _require_fields(
    endpoint: str, answer: Mapping[str, Any], fields: _FieldTypes, *, status: int = 200
) -> None:
    """Raise :class:`GrafanaError` naming the first field ``answer`` lacks or has with another
    type (a field whose types include ``None`` may be missing)."""
    for name, kind in fields.items():
        if name not in answer:
            if isinstance(kind, tuple) and type(None) in kind:
                continue
            raise GrafanaError(
                endpoint, status, f"answer without {name!r}: {json.dumps(answer, default=str)}"
            )
        value = answer[name]
        if isinstance(value, bool) or not isinstance(value, kind):  # JSON true is no number
            raise GrafanaError(
                endpoint, status, f"answer with a bad {name!r} ({value!r}): {json.dumps(answer, default=str)}"
            )


def _answer_text(response: requests.Response) -> str:
    """An answer that is not JSON as one short line (HTML tags dropped)."""
    text = response.text
    if "html" in (response.headers.get("Content-Type") or "").lower() or text.lstrip().startswith("<"):
        text = re.sub(r"<[^>]*>", " ", text)
    return _one_line(text)


def _one_line(message: Any) -> str:
    """``message`` with its whitespace collapsed, cut to ``_MESSAGE_CHARS`` characters."""
    flat = " ".join(str(message).split())
    return flat if len(flat) <= _MESSAGE_CHARS else flat[: _MESSAGE_CHARS - 3] + "..."


# -- payloads (pure) ---------------------------------------------------------------------------
def dashboard_payload(
    dashboard: Mapping[str, Any],
    *,
    folder_uid: str | None = None,
    overwrite: bool = True,
    message: str | None = None,
) -> dict[str, Any]:
    """The ``POST /api/dashboards/db`` body. The dashboard must carry a ``uid`` (at most 40
    characters: a stable identity across saves) and a ``title``; its numeric ``id`` is dropped,
    since ids differ between Grafana instances and the ``uid`` identifies it."""
    uid, title = dashboard.get("uid"), dashboard.get("title")
    if not isinstance(uid, str) or not uid or len(uid) > MAX_UID_LENGTH:
        raise ValueError(
            f"dashboard uid must be a non-empty string of at most {MAX_UID_LENGTH} characters, got {uid!r}"
        )
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"dashboard {uid!r} has no title")
    body: dict[str, Any] = {"dashboard": {**dashboard, "id": None}, "overwrite": bool(overwrite)}
    if folder_uid:
        body["folderUid"] = folder_uid
    if message:
        body["message"] = message
    return body


def epoch_ms(ts: Any) -> int:
    """A timestamp as Unix epoch milliseconds (Grafana's annotation time unit)."""
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware, got {ts!r}")
    return int(stamp.value // 1_000_000)


def incident_tag(incident_id: str) -> str:
    """The tag that identifies one incident's annotation across runs."""
    return f"incident:{incident_id}"


def incident_annotation(incident: Mapping[str, Any], *, dashboard_uid: str | None = None) -> dict[str, Any]:
    """The ``POST /api/annotations`` body for one incident: a region from ``start`` to ``end``
    (or a point at ``start`` while the incident is open), tags and a one-line text with the
    evidence series."""
    start = incident["start"]
    end = incident.get("end")
    body: dict[str, Any] = {
        "time": epoch_ms(start),
        "tags": [
            *ANNOTATION_TAGS,
            f"service:{incident['service']}",
            f"severity:{incident['severity']}",
            incident_tag(str(incident["incident_id"])),
        ],
        "text": _incident_text(incident),
    }
    if end is not None and not pd.isna(end):
        body["timeEnd"] = epoch_ms(end)
    if dashboard_uid:
        body["dashboardUID"] = dashboard_uid
    return body


def _incident_text(incident: Mapping[str, Any]) -> str:
    state = "open" if incident.get("end") is None or pd.isna(incident.get("end")) else "resolved"
    text = f"{incident['severity']} {incident['category']} incident on {incident['service']} ({state})"
    evidence = incident.get("evidence")
    if isinstance(evidence, str) and evidence:
        try:
            series = [s["unique_id"] for s in json.loads(evidence).get("series", [])][:3]
        except (ValueError, TypeError, KeyError):
            series = []
        if series:
            text += "; evidence: " + ", ".join(series)
    return text


def annotation_changes(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``wanted`` that differ from an existing annotation (empty: nothing to do)."""
    changes: dict[str, Any] = {}
    if int(existing.get("time") or 0) != wanted["time"]:
        changes["time"] = wanted["time"]
    # Grafana reports a point annotation's timeEnd as equal to its time (or 0).
    old_end = int(existing.get("timeEnd") or 0)
    new_end = int(wanted.get("timeEnd") or 0)
    if new_end and new_end != old_end:
        changes["timeEnd"] = new_end
    if existing.get("text") != wanted["text"]:
        changes["text"] = wanted["text"]
    if sorted(existing.get("tags") or []) != sorted(wanted["tags"]):
        changes["tags"] = list(wanted["tags"])
    return changes


INCIDENT_ANNOTATION_COLUMNS: tuple[str, ...] = (
    "incident_id",
    "service",
    "category",
    "start",
    "end",
    "severity",
)


def publish_annotations(
    incidents: pd.DataFrame, client: GrafanaClient, *, dashboard_uid: str | None = None
) -> AnnotationReport:
    """Write one annotation per incident, idempotently (see the module docstring).

    An incident Grafana refuses is recorded in ``report.failed`` and the others still go; the
    call raises only when every incident failed, or at once on an auth error (401/403) or a
    connection error, where the rest would fail the same way.
    """
    require_columns(incidents, INCIDENT_ANNOTATION_COLUMNS, "incidents")
    report = AnnotationReport()
    last_error: GrafanaError | None = None
    for incident in incidents.to_dict("records"):
        incident_id = str(incident["incident_id"])
        try:
            _annotate(client, incident, incident_id, dashboard_uid, report)
        except GrafanaAuthError:
            raise
        except GrafanaError as exc:
            report.failed[incident_id] = str(exc)
            last_error = exc
    if last_error is not None and len(report.failed) == len(incidents):
        raise last_error
    return report


def _annotate(
    client: GrafanaClient,
    incident: Mapping[str, Any],
    incident_id: str,
    dashboard_uid: str | None,
    report: AnnotationReport,
) -> None:
    wanted = incident_annotation(incident, dashboard_uid=dashboard_uid)
    found = client.find_annotations([incident_tag(incident_id)], limit=10)
    if not found:
        client.create_annotation(wanted)
        report.created.append(incident_id)
        return
    changes = annotation_changes(found[0], wanted)
    if changes:
        client.patch_annotation(int(found[0]["id"]), changes)
        report.updated.append(incident_id)
    else:
        report.unchanged.append(incident_id)
