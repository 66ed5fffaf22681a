"""A request-validating stand-in for Grafana's HTTP API on loopback (no Grafana binary here).

It implements the parts Foresight uses, checking requests the way Grafana's documentation
describes them, and answers with Grafana's documented shapes and status codes:

- every request needs ``Authorization: Bearer <token>`` with the configured token, else 401
  ``{"message": "Unauthorized"}``;
- ``POST /api/dashboards/db``: JSON object with a ``dashboard`` object (non-empty ``title``,
  ``uid`` of at most 40 characters), optional boolean ``overwrite``, optional string
  ``folderUid`` (must exist when given) and ``message``; not both ``folderId`` and
  ``folderUid``. Without ``overwrite`` a save over another version answers 412
  ``version-mismatch`` and a title taken by another uid in the folder 412 ``name-exists``.
  Success: 200 ``{id, uid, url, status, version, slug}``, the version counting saves;
- ``POST /api/annotations`` (Grafana's "Create Annotation": ``text`` is the one required field):
  non-empty ``text``; optional ``time`` (epoch ms, integer; Grafana's default is now) and
  ``timeEnd`` >= ``time`` (a region), ``tags`` (list of strings), ``dashboardUID`` (must be a saved
  dashboard) and ``panelId``; nothing else; 200 ``{"message": "Annotation added", "id"}``;
- ``GET /api/annotations?tags=..&limit=..&type=..&matchAny=..``: annotations having all tags
  (any with ``matchAny=true``), newest first;
- ``PATCH /api/annotations/<id>``: some of ``time``, ``timeEnd``, ``text``, ``tags``; 404 when unknown.

Malformed bodies answer 400 ``{"message": ...}``. ``requests`` records every request for assertions.

:meth:`FakeGrafana.misbehave` makes one endpoint answer something else, as a proxy in front of
Grafana or a broken Grafana can: an HTML error page, a 200 whose JSON lacks a field, an empty body.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


class BadRequest(Exception):
    """A request Grafana would refuse with 400."""


@dataclass(frozen=True)
class CannedAnswer:
    """A raw answer the fake sends instead of Grafana's (see :meth:`FakeGrafana.misbehave`)."""

    status: int
    body: bytes
    content_type: str


@dataclass
class FakeGrafana:
    """Start with ``with FakeGrafana(token="t") as grafana:``; ``grafana.url`` is its base URL."""

    token: str = "test-token"
    folders: set[str] = field(default_factory=lambda: {"foresight"})
    dashboards: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # uid -> {dashboard, version, folderUid}
    annotations: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    canned: dict[tuple[str, str], CannedAnswer] = field(default_factory=dict)  # (method, path prefix)

    def misbehave(
        self, method: str, path: str, status: int, body: str | bytes, content_type: str = "application/json"
    ) -> None:
        """Answer every ``method`` request whose path starts with ``path`` with this raw answer from
        now on (recorded as usual, but before the token check: a proxy answers it, not Grafana)."""
        raw = body.encode() if isinstance(body, str) else body
        self.canned[(method, path)] = CannedAnswer(status, raw, content_type)

    def _canned_for(self, method: str, path: str) -> CannedAnswer | None:
        return next((a for (m, p), a in self.canned.items() if m == method and path.startswith(p)), None)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._next_id = 1
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeGrafana:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- endpoints -------------------------------------------------------------------------------
    def save_dashboard(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object")
        unknown = set(body) - {"dashboard", "overwrite", "folderUid", "folderId", "message"}
        if unknown:
            raise BadRequest(f"unknown fields {sorted(unknown)}")
        board = body.get("dashboard")
        if not isinstance(board, dict):
            raise BadRequest("dashboard must be an object")
        title, uid = board.get("title"), board.get("uid")
        if not isinstance(title, str) or not title.strip():
            raise BadRequest("Dashboard title cannot be empty")
        if not isinstance(uid, str) or not uid or len(uid) > 40:
            raise BadRequest("uid must be a non-empty string of at most 40 characters")
        if not re.fullmatch(r"[a-zA-Z0-9\-_]+", uid):
            raise BadRequest("uid contains illegal characters")
        overwrite = body.get("overwrite", False)
        if not isinstance(overwrite, bool):
            raise BadRequest("overwrite must be a boolean")
        if "folderId" in body and "folderUid" in body:
            raise BadRequest("use either folderId or folderUid, not both")
        folder = body.get("folderUid") or ""
        if not isinstance(folder, str):
            raise BadRequest("folderUid must be a string")
        if folder and folder not in self.folders:
            return 400, {"message": "folder not found", "status": "not-found"}
        existing = self.dashboards.get(uid)
        if not overwrite:
            if existing is not None and board.get("version") != existing["version"]:
                return 412, {
                    "message": "The dashboard has been changed by someone else",
                    "status": "version-mismatch",
                }
            for other_uid, other in self.dashboards.items():
                if other_uid != uid and other["folderUid"] == folder and other["dashboard"]["title"] == title:
                    return 412, {
                        "message": "A dashboard with the same name in the folder already exists",
                        "status": "name-exists",
                    }
        version = (existing["version"] if existing else 0) + 1
        dash_id = existing["id"] if existing else self._new_id()
        self.dashboards[uid] = {
            "dashboard": {**board, "version": version, "id": dash_id},
            "version": version,
            "folderUid": folder,
            "id": dash_id,
        }
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        return 200, {
            "id": dash_id,
            "uid": uid,
            "url": f"/d/{uid}/{slug}",
            "status": "success",
            "version": version,
            "slug": slug,
        }

    def add_annotation(self, body: Any) -> tuple[int, dict[str, Any]]:
        fields = _annotation_fields(body, creating=True)
        dash = fields.get("dashboardUID")
        if dash is not None and dash not in self.dashboards:
            return 404, {"message": "Dashboard not found"}
        ann_id = self._new_id()
        fields.setdefault("time", int(time.time() * 1000))  # Grafana stamps an annotation without one now
        self.annotations[ann_id] = {
            "id": ann_id,
            "dashboardUID": dash,
            "panelId": fields.get("panelId", 0),
            "time": fields["time"],
            "timeEnd": fields.get("timeEnd", fields["time"]),
            "tags": list(fields.get("tags", [])),
            "text": fields["text"],
        }
        return 200, {"message": "Annotation added", "id": ann_id}

    def find_annotations(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        tags = query.get("tags", [])
        match_any = query.get("matchAny", ["false"])[0] == "true"
        limit = int(query.get("limit", ["100"])[0])
        kind = query.get("type", [""])[0]
        if kind not in ("", "annotation", "alert"):
            raise BadRequest(f"type must be annotation or alert, got {kind!r}")
        found = []
        for ann in self.annotations.values():
            have = set(ann["tags"])
            if tags and not (have & set(tags) if match_any else set(tags) <= have):
                continue
            found.append(dict(ann))
        found.sort(key=lambda a: (a["time"], a["id"]), reverse=True)
        return 200, found[:limit]

    def patch_annotation(self, ann_id: int, body: Any) -> tuple[int, dict[str, Any]]:
        if ann_id not in self.annotations:
            return 404, {"message": "Could not find annotation to update"}
        fields = _annotation_fields(body, creating=False)
        current = self.annotations[ann_id]
        merged = {**current, **fields}
        if merged["timeEnd"] and merged["timeEnd"] < merged["time"]:
            raise BadRequest("timeEnd must not be before time")
        self.annotations[ann_id] = merged
        return 200, {"message": "Annotation patched"}

    def _new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id - 1

    # -- HTTP plumbing ---------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PATCH(self) -> None:
                self._serve("PATCH")

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body: Any = None
                status: int
                answer: Any
                try:
                    if raw:
                        if not self.headers.get("Content-Type", "").startswith("application/json"):
                            raise BadRequest("Content-Type must be application/json")
                        try:
                            body = json.loads(raw)
                        except ValueError as exc:
                            raise BadRequest(f"bad request data: {exc}") from exc
                    with fake._lock:
                        fake.requests.append(
                            RecordedRequest(
                                method, parts.path, parse_qs(parts.query), dict(self.headers.items()), body
                            )
                        )
                    canned = fake._canned_for(method, parts.path)
                    if canned is not None:
                        self._send(canned.status, canned.body, canned.content_type)
                        return
                    if self.headers.get("Authorization") != f"Bearer {fake.token}":
                        status, answer = 401, {"message": "Unauthorized"}
                    else:
                        status, answer = fake._route(method, parts.path, parse_qs(parts.query), body)
                except BadRequest as exc:
                    status, answer = 400, {"message": str(exc)}
                self._send(status, json.dumps(answer).encode(), "application/json")

            def _send(self, status: int, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if (method, path) == ("POST", "/api/dashboards/db"):
            return self.save_dashboard(body)
        if (method, path) == ("POST", "/api/annotations"):
            return self.add_annotation(body)
        if (method, path) == ("GET", "/api/annotations"):
            return self.find_annotations(query)
        patch = re.fullmatch(r"/api/annotations/(\d+)", path)
        if method == "PATCH" and patch:
            return self.patch_annotation(int(patch.group(1)), body)
        return 404, {"message": "Not found"}


def _annotation_fields(body: Any, *, creating: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    allowed = {"time", "timeEnd", "tags", "text"} | (
        {"dashboardUID", "dashboardId", "panelId"} if creating else set()
    )
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(f"unknown fields {sorted(unknown)}")
    if creating and "text" not in body:
        raise BadRequest("text is required")
    for key in ("time", "timeEnd", "panelId", "dashboardId"):
        if key in body and (not isinstance(body[key], int) or isinstance(body[key], bool) or body[key] < 0):
            raise BadRequest(f"{key} must be a non-negative integer (epoch milliseconds for times)")
    for key in ("time", "timeEnd"):
        if key in body and body[key] < 10**11:  # before 1973 in ms: almost surely seconds by mistake
            raise BadRequest(f"{key} looks like epoch seconds, Grafana expects milliseconds")
    if "timeEnd" in body and "time" in body and body["timeEnd"] < body["time"]:
        raise BadRequest("timeEnd must not be before time")
    if "text" in body and (not isinstance(body["text"], str) or not body["text"].strip()):
        raise BadRequest("text must be a non-empty string")
    if "tags" in body and (
        not isinstance(body["tags"], list) or not all(isinstance(t, str) for t in body["tags"])
    ):
        raise BadRequest("tags must be a list of strings")
    if "dashboardUID" in body and not isinstance(body["dashboardUID"], str):
        raise BadRequest("dashboardUID must be a string")
    return dict(body)
