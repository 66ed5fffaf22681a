"""PagerDuty outbox: incidents as PagerDuty Events API v2 events in a JSON-lines file.

Event building (:func:`dedup_key`, :func:`trigger_event`, :func:`resolve_event`,
:func:`validate_event`) is pure; :class:`Outbox` only appends and reads lines.

Field rules enforced (PagerDuty developer docs, "Send an Alert Event" and "Events API v2
Overview"): ``routing_key`` and ``event_action`` (trigger / acknowledge / resolve) are required;
``dedup_key`` is at most 255 characters; a trigger needs ``payload.summary`` (at most 1024
characters), ``payload.source`` and ``payload.severity`` (critical / error / warning / info);
``payload.timestamp`` is ISO 8601; ``payload.component`` / ``group`` / ``class``, ``client`` and
``client_url`` are strings and ``payload.custom_details`` an object; every ``links`` item is an
object with a string ``href`` (and optional string ``text``), every ``images`` item one with a
string ``src`` (https: PagerDuty serves only those) and optional string ``href`` / ``alt``; a
whole event is below 512 KB.

Incident pages are keyed ``foresight/incident-pipeline/<service>/<window start>``
(:func:`incident_dedup_key`): the incident pipeline raised them, whichever of its builders
(stream or roll-up) or the failure predictor's warnings it merged did. Versions up to this one
wrote ``foresight/anomaly-detector/...`` (the registered model's name); an incident whose events
the outbox already holds under that key keeps it, so an upgrade neither pages an open incident
twice nor leaves its resolve addressed to a key PagerDuty never saw.

The outbox never holds a routing key (a credential: whoever has it can page the team). Every
event carries a *reference* to the setting that holds it instead,
``"routing_key": {"ref": "sinks.pagerduty_routing_key"}`` (:func:`routing_key_ref`), whether or
not a key is configured when it is written; ``connectors.sinks.pagerduty`` puts the configured key in
at send time, so events written while no key was set are delivered once one is. A forwarder
reading the file does the same: replace ``routing_key`` with the integration key the named
setting holds (``FORESIGHT_SINKS__PAGERDUTY_ROUTING_KEY`` or the YAML file), POST the event to
``/v2/enqueue``, and skip events already in the delivery ledger beside the outbox. POSTed
unchanged, an event is rejected by PagerDuty (``routing_key`` must be a string), so the file can
never page anyone by accident. Lines written by older versions with a literal key (or the
``"embedded-outbox"`` placeholder) read as the reference, and the next append or delivery
rewrites the file without them (:meth:`Outbox.scrub`). Outbox and ledger files are created
``0600`` (owner only), and tightened to it when found wider.

Re-running a flow never adds duplicates: an event whose ``(dedup_key, event_action)`` is already
in the file is skipped. The file itself (locked, fsynced, idempotent appends) is a :class:`connectors.sinks.jsonl_log.JsonLinesLog`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from connectors.sinks.jsonl_log import JsonLinesLog
from foresight.schemas import SEVERITIES
from foresight.timeutil import utc_timestamp

try:
    import fcntl
except ImportError:  # not POSIX: single-writer use only
    fcntl = None  # type: ignore[assignment]

# The setting an outbox event's routing-key reference names; the only one Foresight writes.
ROUTING_KEY_SETTING = "sinks.pagerduty_routing_key"
# The placeholder older versions wrote in embedded mode; read as the reference.
LEGACY_EMBEDDED_ROUTING_KEY = "embedded-outbox"
CLIENT = "Foresight"
EVENT_ACTIONS: tuple[str, ...] = ("trigger", "acknowledge", "resolve")
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
MAX_EVENT_BYTES = 512 * 1024
DEDUP_PREFIX = "foresight"
INCIDENT_SOURCE = "incident-pipeline"  # what raises incident pages (the dedup key's second part)
LEGACY_INCIDENT_SOURCE = "anomaly-detector"  # ... as older versions named it
LINK_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {  # array -> (required field, optional fields)
    "links": ("href", ("text",)),
    "images": ("src", ("href", "alt")),
}


class InvalidEventError(ValueError):
    """An event breaks a PagerDuty Events API v2 rule; ``.field`` names the offending field."""

    def __init__(self, field: str, problem: str, event: Mapping[str, Any] | None = None) -> None:
        self.field, self.problem, self.event = field, problem, event
        key = (event or {}).get("dedup_key")
        where = f" (dedup_key={key!r})" if key else ""
        super().__init__(f"PagerDuty event field {field!r}: {problem}{where}")


# -- pure event building -----------------------------------------------------------------------
def dedup_key(model: str, entity: str, window_start: pd.Timestamp) -> str:
    """Deterministic key ``foresight/<model>/<entity>/<UTC ISO start>``; hashed tail if > 255 chars."""
    try:
        start = utc_timestamp(window_start, "window_start").isoformat().replace("+00:00", "Z")
    except ValueError:
        raise InvalidEventError("timestamp", f"not a time: {window_start!r}") from None
    key = f"{DEDUP_PREFIX}/{model}/{entity}/{start}"
    if len(key) <= MAX_DEDUP_KEY:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()  # 64 chars keeps keys unique
    return f"{key[: MAX_DEDUP_KEY - len(digest) - 1]}#{digest}"


def incident_dedup_key(service: str, window_start: pd.Timestamp, known: set[str] | frozenset[str] = frozenset()) -> str:
    """The key of a service's incident page in ``window_start``: :data:`INCIDENT_SOURCE`'s, or the
    key older versions wrote (:data:`LEGACY_INCIDENT_SOURCE`) when ``known`` (the outbox's dedup
    keys: :meth:`Outbox.dedup_keys`) already holds it, so the incident keeps its first key."""
    legacy = dedup_key(LEGACY_INCIDENT_SOURCE, service, window_start)
    return legacy if legacy in known else dedup_key(INCIDENT_SOURCE, service, window_start)


def routing_key_ref(setting: str = ROUTING_KEY_SETTING) -> dict[str, str]:
    """What an outbox event holds instead of a routing key: the name of the setting that holds it."""
    return {"ref": setting}


def routing_key_setting(event: Mapping[str, Any]) -> str | None:
    """The setting an event's routing-key reference names, or None when it holds no reference."""
    key = event.get("routing_key")
    if isinstance(key, Mapping) and _nonempty_str(key.get("ref")) and set(key) == {"ref"}:
        return str(key["ref"])
    return None


def trigger_event(
    incident: Mapping[str, Any],
    *,
    model_name: str,
    model_version: str,
    links: list[dict[str, str]] | None = None,
    images: list[dict[str, str]] | None = None,
    summary: str | None = None,
    details: Mapping[str, Any] | None = None,
    client_url: str | None = None,
) -> dict[str, Any]:
    """A validated Events API v2 ``trigger`` for one incident (``schemas.INCIDENT_COLUMNS`` + extras).

    Its ``routing_key`` is :func:`routing_key_ref`: the key itself is added only at send time.
    The entity is the incident's ``resource_id`` when it has one, else its ``service``. The
    ``dedup_key`` is the incident's own when it carries one (the detect flow's: its service and
    window, the key its resolve uses too), else built from the entity and ``start``. ``summary``
    and ``details`` (``custom_details``, flat: an incident page's
    :func:`models.incidents.page_text.describe_incident`) replace the plain ones: a summary of
    the service, category, entity and start, and the incident's own fields as details. The
    summary is cut to 1024 characters.
    """
    for field in ("service", "start", "severity"):
        if _missing(incident.get(field)):
            raise InvalidEventError(f"incident.{field}", "required to build a trigger event")
    service = str(incident["service"])
    resource = incident.get("resource_id")
    entity = service if _missing(resource) else str(resource)
    start = utc_timestamp(incident["start"], "incident.start")
    category = "" if _missing(incident.get("category")) else str(incident["category"])
    description = incident.get("description")
    if summary is None:
        summary = f"[{service}] {category or 'incident'} on {entity} since {start:%Y-%m-%d %H:%M}Z"
        if not _missing(description):
            summary = f"{summary}: {description}"
    if details is None:
        details = {k: _jsonable(v) for k, v in incident.items()}
    event: dict[str, Any] = {
        "routing_key": routing_key_ref(),
        "event_action": "trigger",
        "dedup_key": (
            dedup_key(model_name, entity, start)
            if _missing(incident.get("dedup_key"))
            else str(incident["dedup_key"])
        ),
        "payload": {
            "summary": _truncate(summary, MAX_SUMMARY),
            "source": entity,
            "severity": str(incident["severity"]),
            "timestamp": _iso(start),
            "component": service,
            "group": service,
            "class": category or "incident",
            "custom_details": {
                **{str(k): _jsonable(v) for k, v in details.items()},
                "model_name": model_name,
                "model_version": model_version,
            },
        },
        "links": list(links or []),
        "client": CLIENT,
    }
    if images:
        event["images"] = list(images)
    if client_url:
        event["client_url"] = client_url
    validate_event(event)
    return event


def resolve_event(dedup_key: str) -> dict[str, Any]:
    """A validated Events API v2 ``resolve`` for the alert opened with ``dedup_key`` (key by reference)."""
    event = {
        "routing_key": routing_key_ref(),
        "event_action": "resolve",
        "dedup_key": dedup_key,
    }
    validate_event(event)
    return event


def validate_event(event: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidEventError` naming the first field that breaks an Events API v2 rule.

    ``routing_key`` is a non-empty string (an event on the wire) or a reference
    (:func:`routing_key_ref`: an event in the outbox).
    """
    if not _nonempty_str(event.get("routing_key")) and routing_key_setting(event) is None:
        raise InvalidEventError("routing_key", 'required: a non-empty string or {"ref": "<setting>"}', event)
    action = event.get("event_action")
    if action not in EVENT_ACTIONS:
        problem = f"must be one of {list(EVENT_ACTIONS)}, got {action!r}"
        raise InvalidEventError("event_action", problem, event)
    key = event.get("dedup_key")
    if action != "trigger" and not _nonempty_str(key):
        raise InvalidEventError("dedup_key", f"required for {action} events", event)
    if key is not None and (not isinstance(key, str) or len(key) > MAX_DEDUP_KEY):
        raise InvalidEventError("dedup_key", f"must be a string of at most {MAX_DEDUP_KEY} characters", event)
    if action == "trigger":
        _validate_payload(event)
    check_links(event)
    size = len(json.dumps(event, ensure_ascii=False).encode())
    if size >= MAX_EVENT_BYTES:
        raise InvalidEventError("payload", f"event is {size} bytes; the API accepts less than 512 KB", event)


def _validate_payload(event: Mapping[str, Any]) -> None:
    payload = event.get("payload")
    if not isinstance(payload, Mapping):
        raise InvalidEventError("payload", "a trigger event needs a payload object", event)
    if not _nonempty_str(payload.get("source")):
        raise InvalidEventError("payload.source", "required non-empty string", event)
    if payload.get("severity") not in SEVERITIES:
        raise InvalidEventError(
            "payload.severity", f"must be one of {list(SEVERITIES)}, got {payload.get('severity')!r}", event
        )
    check_summary_and_timestamp(payload, event)
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, Mapping):
        raise InvalidEventError("payload.custom_details", "must be an object", event)
    for name in ("component", "group", "class"):
        if payload.get(name) is not None and not isinstance(payload[name], str):
            raise InvalidEventError(f"payload.{name}", "must be a string", event)
    for name in ("client", "client_url"):
        if event.get(name) is not None and not isinstance(event[name], str):
            raise InvalidEventError(name, "must be a string", event)


def check_summary_and_timestamp(payload: Mapping[str, Any], event: Mapping[str, Any]) -> None:
    """The rules alert and change events share: a non-empty summary of at most 1024 characters,
    and an ISO 8601 timestamp when there is one."""
    summary = payload.get("summary")
    if not isinstance(summary, str) or not _nonempty_str(summary):
        raise InvalidEventError("payload.summary", "required non-empty string", event)
    if len(summary) > MAX_SUMMARY:
        raise InvalidEventError("payload.summary", f"at most {MAX_SUMMARY} characters", event)
    stamp = payload.get("timestamp")
    if stamp is not None:
        try:
            datetime.fromisoformat(str(stamp))
        except ValueError:
            raise InvalidEventError("payload.timestamp", f"not ISO 8601: {stamp!r}", event) from None


def check_links(event: Mapping[str, Any]) -> None:
    """``links`` and ``images`` are arrays of objects: a link needs a non-empty string ``href``
    (``text`` a string), an image a non-empty https ``src`` (``href`` / ``alt`` strings); alert
    and change events alike (change events have no images)."""
    for array, (required, optional) in LINK_FIELDS.items():
        items = event.get(array)
        if items is None:
            continue
        if not isinstance(items, list):
            raise InvalidEventError(array, "must be an array of objects", event)
        for i, item in enumerate(items):
            if not isinstance(item, Mapping) or not _nonempty_str(item.get(required)):
                raise InvalidEventError(f"{array}[{i}].{required}", f"every item needs a non-empty {required}", event)
            for name in optional:
                if item.get(name) is not None and not isinstance(item[name], str):
                    raise InvalidEventError(f"{array}[{i}].{name}", "must be a string", event)
        if array == "images":
            for i, item in enumerate(items):
                if not str(item["src"]).startswith("https://"):
                    raise InvalidEventError(f"images[{i}].src", "PagerDuty shows only images served over https", event)


class Outbox(JsonLinesLog):
    """An append-only JSON-lines file of PagerDuty events, deduplicated by (dedup_key, event_action).

    Every event holds a routing-key reference, never a key: :meth:`append` refuses an event
    with a literal key, and a line an older version wrote with one reads (and is rewritten) as
    the reference.
    """

    def _validate(self, record: Mapping[str, Any]) -> None:
        validate_event(record)
        if routing_key_setting(record) is None:
            raise InvalidEventError(
                "routing_key", f"the outbox holds a reference ({routing_key_ref()}), never a key", record
            )

    def dedup_keys(self) -> set[str]:
        """Every dedup key the outbox holds (any action): what :func:`incident_dedup_key` keeps."""
        return {key for key, _ in self.identities()}

    def _migrate(self, record: dict[str, Any]) -> dict[str, Any] | None:
        if routing_key_setting(record) is not None:
            return None
        return {**record, "routing_key": routing_key_ref()}  # a literal key or the old placeholder


# -- small pure conversions --------------------------------------------------------------------
def _iso(ts: pd.Timestamp) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _jsonable(value: Any) -> Any:
    """Incident values as JSON: timestamps to ISO 8601, NaN/NaT to null, numpy to Python."""
    if isinstance(value, (list, tuple, dict, bool, int, float, str)) or value is None:
        return None if isinstance(value, float) and value != value else value
    if _missing(value):
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        return _iso(utc_timestamp(value, "incident time"))
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)
