"""A local, request-validating fake of PagerDuty's Events API v2 and the incidents part of its REST API.

PagerDuty cannot run on loopback, so tests talk to this instead. It checks every request the
way PagerDuty documents it and answers the way PagerDuty does:

- ``POST /v2/enqueue`` (alert events; PagerDuty's developer docs "Send an Alert Event" and
  the Events API v2 OpenAPI schema): JSON body; ``routing_key`` a string of 32 characters;
  ``event_action`` trigger / acknowledge / resolve; ``dedup_key`` a string of at most 255
  characters (required for acknowledge / resolve); a trigger's ``payload`` object with
  ``summary`` (a string of at most 1024 characters), ``source`` and ``severity`` (critical /
  error / warning / info); ``payload.timestamp`` ISO 8601; ``payload.component`` / ``group`` /
  ``class``, ``client`` and ``client_url`` strings; ``payload.custom_details`` an object;
  ``links`` an array of objects, each with a string ``href`` and an optional string ``text``;
  ``images`` an array of objects, each with a string ``src`` and optional string ``href`` /
  ``alt``; the body below 512 KB. Valid: 202 ``{"status": "success", "message":
  "Event processed", "dedup_key": ...}``; invalid: 400 ``{"status": "invalid event",
  "message": "Event object is invalid", "errors": [...]}`` (PagerDuty's documented error
  object), one string per problem, e.g. ``"'summary' is too long (maximum is 1024
  characters)"`` as PagerDuty words it. PagerDuty displays only images served over https; an
  http ``src`` is not refused (the schema asks only for a string), so neither is it here.
  Alert state per dedup key: a trigger opens an alert (and an incident the REST API lists) or
  joins the open one, acknowledge / resolve act on the open one and are dropped otherwise; a
  trigger after a resolve opens a new alert.
- ``POST /v2/change/enqueue`` (change events): ``routing_key``, ``payload.summary``, optional
  ISO 8601 ``payload.timestamp`` and ``links``; 202 on success.
- ``GET /incidents`` with ``since`` / ``until`` (ISO 8601, at most 6 months apart),
  ``statuses[]``, ``service_ids[]``, classic pagination (``offset``, ``limit`` at most 100,
  ``offset + limit`` at most 10000; answers ``limit``, ``offset``, ``more``, ``total``), and
  ``GET /incidents/{id}/notes``; both need ``Authorization: Token token=<token>`` (401
  otherwise) and ``Accept: application/vnd.pagerduty+json;version=2`` (406 otherwise).

:meth:`FakePagerDuty.fail_next` makes the next N requests answer 429 (with ``Retry-After``)
or a 5xx, to exercise retries. Every request is recorded with its arrival time.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROUTING_KEY_LENGTH = 32
SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
MAX_DEDUP_KEY, MAX_SUMMARY, MAX_BODY = 255, 1024, 512 * 1024
REST_ACCEPT = "application/vnd.pagerduty+json;version=2"
MAX_LIMIT, MAX_OFFSET_PLUS_LIMIT = 100, 10_000
MAX_RANGE = timedelta(days=183)  # "a maximum of 6 months of range"


@dataclass
class Recorded:
    """One request the fake received and what it answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int
    at: float  # time.monotonic() on arrival


@dataclass
class Alert:
    dedup_key: str
    routing_key: str
    status: str  # triggered / acknowledged / resolved
    trigger_event: dict[str, Any]
    triggers: int = 1
    incident_id: str = ""


@dataclass
class _Failure:
    status: int
    retry_after: str | None


@dataclass
class FakePagerDuty:
    """The fake's state; ``url`` is its base URL (Events API and REST API alike)."""

    api_token: str
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    change_events: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _failures: list[_Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- test controls --------------------------------------------------------------------------
    def fail_next(self, count: int, status: int = 429, retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (and ``Retry-After`` if given)."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after) for _ in range(count))

    def clear_failures(self) -> None:
        """Forget failures still queued by :meth:`fail_next` (PagerDuty is back)."""
        with self._lock:
            self._failures.clear()

    def add_incident(
        self,
        *,
        created_at: str,
        service: str = "checkout",
        service_id: str = "PSVC001",
        status: str = "resolved",
        resolved_at: str | None = None,
        title: str = "incident",
        urgency: str = "high",
        priority: str | None = None,
        incident_key: str | None = None,
        notes: list[str] | None = None,
    ) -> dict[str, Any]:
        """Seed a REST incident (as if raised earlier by any integration); returns it."""
        with self._lock:
            incident = self._new_incident(created_at, service, service_id, title, urgency, incident_key)
            incident["status"] = status
            if status == "resolved":
                incident["last_status_change_at"] = resolved_at or created_at
            if priority:
                incident["priority"] = {
                    "id": f"PPRI{priority}",
                    "type": "priority",
                    "summary": priority,
                    "name": priority,
                }
            for content in notes or []:
                self._add_note(incident["id"], content, created_at)
            return incident

    def add_note(self, incident_id: str, content: str) -> None:
        with self._lock:
            self._add_note(incident_id, content, _iso(datetime.now(UTC)))

    def open_alerts(self) -> list[Alert]:
        with self._lock:
            return [a for a in self.alerts if a.status != "resolved"]

    def requests_to(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # -- state changes (called with the lock held) ----------------------------------------------
    def _new_incident(
        self,
        created_at: str,
        service: str,
        service_id: str,
        title: str,
        urgency: str,
        incident_key: str | None,
    ) -> dict[str, Any]:
        number = len(self.incidents) + 1
        incident = {
            "id": f"PINC{number:04d}",
            "type": "incident",
            "incident_number": number,
            "title": title,
            "summary": f"[#{number}] {title}",
            "created_at": created_at,
            "status": "triggered",
            "incident_key": incident_key or uuid.uuid4().hex,
            "urgency": urgency,
            "priority": None,
            "service": {"id": service_id, "type": "service_reference", "summary": service},
            "last_status_change_at": created_at,
            "resolve_reason": None,
            "html_url": f"https://fake.pagerduty.local/incidents/PINC{number:04d}",
        }
        self.incidents.append(incident)
        return incident

    def _add_note(self, incident_id: str, content: str, created_at: str) -> None:
        note = {
            "id": f"PNOTE{sum(map(len, self.notes.values())) + 1:04d}",
            "content": content,
            "created_at": created_at,
            "user": {"id": "PUSER01", "type": "user_reference", "summary": "On-call"},
        }
        self.notes.setdefault(incident_id, []).append(note)

    def _apply_event(self, event: dict[str, Any]) -> str:
        key = event.get("dedup_key") or uuid.uuid4().hex
        action = event["event_action"]
        now = _iso(datetime.now(UTC))
        open_alert = next(
            (
                a
                for a in self.alerts
                if a.dedup_key == key and a.status != "resolved" and a.routing_key == event["routing_key"]
            ),
            None,
        )
        if action == "trigger":
            if open_alert is not None:
                open_alert.triggers += 1
            else:
                payload = event["payload"]
                incident = self._new_incident(
                    now, payload.get("group") or payload["source"], "PSVC001", payload["summary"], "high", key
                )
                self.alerts.append(
                    Alert(key, event["routing_key"], "triggered", event, incident_id=incident["id"])
                )
        elif open_alert is not None:  # acknowledge / resolve without an open alert are dropped
            open_alert.status = "acknowledged" if action == "acknowledge" else "resolved"
            for incident in self.incidents:
                if incident["id"] == open_alert.incident_id:
                    incident["status"], incident["last_status_change_at"] = open_alert.status, now
        return key

    def _next_failure(self) -> _Failure | None:
        return self._failures.pop(0) if self._failures else None


# -- request validation (pure) -----------------------------------------------------------------
def alert_event_errors(event: Any) -> list[str]:
    """Everything wrong with an Events API v2 alert event, in PagerDuty's terms; empty when valid."""
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors = []
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != ROUTING_KEY_LENGTH:
        errors.append(f"'routing_key' must be a {ROUTING_KEY_LENGTH} character string")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append(f"'event_action' must be one of {', '.join(ACTIONS)}")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > MAX_DEDUP_KEY):
        errors.append(f"'dedup_key' must be a string of at most {MAX_DEDUP_KEY} characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append(f"'dedup_key' is required for {action} events")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or not an object")
        else:
            errors += _summary_errors(payload)
            if not isinstance(payload.get("source"), str) or not payload["source"].strip():
                errors.append("'payload.source' is missing or blank")
            if payload.get("severity") not in SEVERITIES:
                errors.append(f"'payload.severity' must be one of {', '.join(SEVERITIES)}")
            errors += _timestamp_errors(payload)
            details = payload.get("custom_details")
            if details is not None and not isinstance(details, dict):
                errors.append("'payload.custom_details' must be an object")
            errors += [
                f"'payload.{name}' must be a string"
                for name in ("component", "group", "class")
                if payload.get(name) is not None and not isinstance(payload[name], str)
            ]
    errors += [
        f"'{name}' must be a string"
        for name in ("client", "client_url")
        if event.get(name) is not None and not isinstance(event[name], str)
    ]
    errors += _link_errors(event) + _context_errors(event, "images", "src", ("href", "alt"))
    return errors


def change_event_errors(event: Any) -> list[str]:
    """Everything wrong with a Change Events API event; empty when valid."""
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors = []
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != ROUTING_KEY_LENGTH:
        errors.append(f"'routing_key' must be a {ROUTING_KEY_LENGTH} character string")
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return [*errors, "'payload' is missing or not an object"]
    errors += _summary_errors(payload) + _timestamp_errors(payload) + _link_errors(event)
    return errors


def _summary_errors(payload: dict[str, Any]) -> list[str]:
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        return ["'payload.summary' is missing or blank"]
    return (
        [f"'summary' is too long (maximum is {MAX_SUMMARY} characters)"] if len(summary) > MAX_SUMMARY else []
    )


def _timestamp_errors(payload: dict[str, Any]) -> list[str]:
    stamp = payload.get("timestamp")
    if stamp is None:
        return []
    return [] if _parse_time(stamp) is not None else [f"'payload.timestamp' is not ISO 8601: {stamp!r}"]


def _link_errors(event: dict[str, Any]) -> list[str]:
    return _context_errors(event, "links", "href", ("text",))


def _context_errors(event: dict[str, Any], array: str, required: str, optional: tuple[str, ...]) -> list[str]:
    """``links`` / ``images``: an array of objects with a non-empty string ``required`` field and
    string ``optional`` ones."""
    items = event.get(array)
    if items is None:
        return []
    if not isinstance(items, list):
        return [f"'{array}' must be an array"]
    errors = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(f"'{array}[{i}]' must be an object")
            continue
        if not isinstance(item.get(required), str) or not item[required]:
            errors.append(f"'{array}[{i}].{required}' is required and must be a string")
        errors += [
            f"'{array}[{i}].{name}' must be a string"
            for name in optional
            if item.get(name) is not None and not isinstance(item[name], str)
        ]
    return errors


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":  # +0000 -> +00:00
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- HTTP --------------------------------------------------------------------------------------
def _handler(state: FakePagerDuty) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes: without this, Nagle's algorithm and
            # delayed ACKs add ~40 ms to every keep-alive request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            self._serve("POST")

        def do_GET(self) -> None:
            self._serve("GET")

        def _serve(self, method: str) -> None:
            arrived = time.monotonic()
            parts = urlsplit(self.path)
            query = parse_qs(parts.query, keep_blank_values=True)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = raw.decode("utf-8", "replace")
            with state._lock:
                failure = state._next_failure()
                if failure is not None:
                    headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                    status, answer = (
                        failure.status,
                        {
                            "status": "throttled" if failure.status == 429 else "error",
                            "message": "injected failure",
                        },
                    )
                else:
                    status, answer, headers = self._route(method, parts.path, query, raw, body)
                state.requests.append(
                    Recorded(method, parts.path, query, dict(self.headers.items()), body, status, arrived)
                )
            self._reply(status, answer, headers)

        def _route(
            self, method: str, path: str, query: dict[str, list[str]], raw: bytes, body: Any
        ) -> tuple[int, Any, dict[str, str]]:
            if method == "POST" and path in ("/v2/enqueue", "/v2/change/enqueue"):
                return self._events(path, raw, body)
            if method == "GET" and path == "/incidents":
                return self._rest(lambda: _list_incidents(state, query))
            if method == "GET" and path.startswith("/incidents/") and path.endswith("/notes"):
                incident_id = path.split("/")[2]
                if not any(i["id"] == incident_id for i in state.incidents):
                    return 404, {"error": {"message": "Not Found", "code": 2100}}, {}
                return self._rest(lambda: (200, {"notes": state.notes.get(incident_id, [])}))
            return 404, {"error": {"message": f"no route {method} {path}"}}, {}

        def _events(self, path: str, raw: bytes, body: Any) -> tuple[int, Any, dict[str, str]]:
            if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                errors = ["Content-Type must be application/json"]
            elif len(raw) >= MAX_BODY:
                errors = [f"event is {len(raw)} bytes; the limit is 512 KB"]
            elif path == "/v2/enqueue":
                errors = alert_event_errors(body)
            else:
                errors = change_event_errors(body)
            if errors:
                return (
                    400,
                    {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
                    {},
                )
            if path == "/v2/change/enqueue":
                state.change_events.append(body)
                return 202, {"status": "success", "message": "Change event processed"}, {}
            key = state._apply_event(body)
            return 202, {"status": "success", "message": "Event processed", "dedup_key": key}, {}

        def _rest(self, answer: Any) -> tuple[int, Any, dict[str, str]]:
            if self.headers.get("Authorization") != f"Token token={state.api_token}":
                return 401, {"error": {"message": "Unauthorized", "code": 2001}}, {}
            if self.headers.get("Accept") != REST_ACCEPT:
                return 406, {"error": {"message": f"Accept must be {REST_ACCEPT}", "code": 2001}}, {}
            status, payload = answer()
            return status, payload, {}

        def _reply(self, status: int, answer: Any, headers: dict[str, str]) -> None:
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _list_incidents(state: FakePagerDuty, query: dict[str, list[str]]) -> tuple[int, Any]:
    def bad(message: str) -> tuple[int, Any]:
        return 400, {"error": {"message": "Invalid Input Provided", "code": 2001, "errors": [message]}}

    try:
        offset = int(query.get("offset", ["0"])[0])
        limit = int(query.get("limit", ["25"])[0])
    except ValueError:
        return bad("offset and limit must be integers")
    if offset < 0 or not 1 <= limit <= MAX_LIMIT:
        return bad(f"limit must be within 1..{MAX_LIMIT} and offset >= 0")
    if offset + limit > MAX_OFFSET_PLUS_LIMIT:
        return bad(f"offset + limit must not exceed {MAX_OFFSET_PLUS_LIMIT}")
    since = _parse_time(query["since"][0]) if "since" in query else None
    until = _parse_time(query["until"][0]) if "until" in query else None
    if ("since" in query and since is None) or ("until" in query and until is None):
        return bad("since and until must be ISO 8601 date-times")
    if since is not None and until is not None:
        if until < since:
            return bad("until must not be before since")
        if until - since > MAX_RANGE:
            return bad("since and until must be at most 6 months apart")
    if query.get("date_range") != ["all"]:  # default window: the last 30 days
        until = until or datetime.now(UTC)
        since = since or until - timedelta(days=30)
    statuses = set(query.get("statuses[]", []))
    services = set(query.get("service_ids[]", []))
    matching = []
    for incident in sorted(state.incidents, key=lambda i: (i["created_at"], i["id"])):
        created = _parse_time(incident["created_at"])
        if (
            created is None
            or (since is not None and created < since)
            or (until is not None and created >= until)
        ):
            continue
        if (statuses and incident["status"] not in statuses) or (
            services and incident["service"]["id"] not in services
        ):
            continue
        matching.append(incident)
    page = matching[offset : offset + limit]
    total = len(matching) if query.get("total") in (["true"], ["1"]) else None
    return 200, {
        "incidents": page,
        "limit": limit,
        "offset": offset,
        "more": offset + limit < len(matching),
        "total": total,
    }


@contextmanager
def running_fake_pagerduty(api_token: str = "fake-rest-api-token") -> Iterator[FakePagerDuty]:
    """Serve a :class:`FakePagerDuty` on a free loopback port for the block."""
    state = FakePagerDuty(api_token=api_token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-pagerduty", daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
