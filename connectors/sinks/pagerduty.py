"""PagerDuty delivery: outbox events to the Events API v2, model promotions as change events.

The detect flow writes every page to the outbox first (``connectors.sinks.pagerduty_outbox``); this
module delivers what the outbox holds and records each delivery in a ledger next to it
(``pagerduty-events.delivered.jsonl``). An event is *pending* while its ``(dedup_key,
event_action)`` is in the outbox but not in the ledger, so a run that cannot reach PagerDuty
loses nothing (the next run sends it) and a re-run sends nothing twice. Delivery is
at-least-once: a crash between PagerDuty's 202 and the ledger write resends one event, which
PagerDuty de-duplicates by ``dedup_key`` (a repeated trigger joins the open alert, a repeated
resolve is dropped).

Retries live here and only here: pdpyras' own retry loop is switched off on every session
(it retries 429 without limit and ignores ``Retry-After``), and the Prefect task that calls
:meth:`PagerDutySender.deliver` has no retries of its own. Each event gets at most
``RetryPolicy.max_attempts`` attempts on 429, 5xx and network errors, waiting what
``Retry-After`` asks or an exponential backoff; a wait longer than ``RetryPolicy.max_wait``
ends the run's delivery and leaves the rest pending. A 4xx other than 429 is PagerDuty
rejecting the event: it stays pending (and is reported) but does not stop the others.

Outbox events hold a reference to the routing key (``{"ref": "sinks.pagerduty_routing_key"}``),
never the key: the sender is built from that setting and its session puts the key on each
request, so events written while no key was configured (embedded mode, or a misspelt key) are
delivered like any other once one is. An event whose reference names a setting this sender does
not hold stays pending and is reported (``unroutable``). A trigger whose resolve is also still
pending describes a problem that cleared before anyone could be told; both are recorded as
``suppressed`` instead of paging for the past (``send_cleared=True`` sends them anyway); so
turning a key on after a quiet week pages only for what is still open.

The pure parts live beside it: the retry rule and :class:`DeliveryError` in
``connectors.sinks.pagerduty_retry``, the ledger, the delivery plan and its report in
``connectors.sinks.pagerduty_ledger``, change-event bodies in
``connectors.sinks.pagerduty_change_events``; the pdpyras sessions (imported on first use: only
runs that page need it) in ``connectors.sinks.pagerduty_sessions``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from connectors.sinks.jsonl_log import exclusive_lock
from connectors.sinks.pagerduty_change_events import promotion_change_event, validate_change_event
from connectors.sinks.pagerduty_ledger import (
    CHANGE_ACTION,
    DELIVERED,
    SUPPRESSED,
    DeliveryFailure,
    DeliveryLedger,
    DeliveryReport,
    ledger_path,
    ledger_record,
    plan_delivery,
)
from connectors.sinks.pagerduty_outbox import (
    ROUTING_KEY_SETTING,
    Outbox,
    routing_key_setting,
)
from connectors.sinks.pagerduty_retry import DeliveryError, RetryPolicy, retry_after_seconds
from connectors.sinks.pagerduty_sessions import pdpyras, post_event, refusal_text, single_attempt
from foresight.redact import redact_url

if TYPE_CHECKING:
    from pdpyras import ChangeEventsAPISession, EventsAPISession

    from foresight.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_EVENTS_URL = "https://events.pagerduty.com"
ROUTING_KEY_LENGTH = 32  # PagerDuty integration keys are 32 characters
REQUEST_TIMEOUT_SECONDS = 10.0

T = TypeVar("T")


class PagerDutySender:
    """Sends Events API v2 events with bounded retries, and delivers an outbox exactly once per event."""

    def __init__(
        self,
        routing_key: str,
        *,
        events_url: str = DEFAULT_EVENTS_URL,
        retry: RetryPolicy | None = None,
        send_cleared: bool = False,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        key_setting: str = ROUTING_KEY_SETTING,
    ) -> None:
        if not isinstance(routing_key, str) or len(routing_key) != ROUTING_KEY_LENGTH:
            length = len(routing_key) if isinstance(routing_key, str) else type(routing_key).__name__
            raise ValueError(
                f"PagerDuty routing key must be the {ROUTING_KEY_LENGTH}-character integration key, got {length}"
            )
        if not events_url.startswith(("http://", "https://")):
            raise ValueError(f"events_url must be an http(s) URL, got {redact_url(events_url)!r}")
        self._routing_key = routing_key
        self.key_setting = key_setting  # the outbox reference this key answers
        self.events_url = events_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.send_cleared = send_cleared
        self.timeout = timeout
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> PagerDutySender | None:
        """The sender the settings describe, or None in embedded mode (no routing key)."""
        sinks = settings.sinks
        if sinks.pagerduty_routing_key is None:
            return None
        return cls(
            sinks.pagerduty_routing_key.get_secret_value(),
            events_url=sinks.pagerduty_events_url,
            retry=RetryPolicy(
                max_attempts=sinks.pagerduty_max_attempts, max_wait=sinks.pagerduty_max_wait_seconds
            ),
        )

    def __repr__(self) -> str:  # never show the key
        return (
            f"PagerDutySender(events_url={redact_url(self.events_url)!r}, key_setting={self.key_setting!r})"
        )

    # sessions ---------------------------------------------------------------------------------
    def _events_session(self) -> EventsAPISession:
        session = pdpyras().EventsAPISession(self._routing_key)
        single_attempt(session, self.events_url, self.timeout)
        return session

    def _change_session(self) -> ChangeEventsAPISession:
        session = pdpyras().ChangeEventsAPISession(self._routing_key)
        single_attempt(session, self.events_url, self.timeout)
        return session

    # one request, retried -----------------------------------------------------------------------
    def _with_retries(self, what: str, call: Callable[[], T]) -> T:
        PDClientError = pdpyras().PDClientError  # noqa: N806 - the library's class
        attempt = 0
        while True:
            attempt += 1
            try:
                return call()
            except PDClientError as exc:
                response = exc.response
                status = None if response is None else int(response.status_code)
                detail = refusal_text(exc)
                if status is not None and status != 429 and status < 500:
                    raise DeliveryError(what, status, detail, attempt, retryable=False) from exc
                retry_after = (
                    None if response is None else retry_after_seconds(response.headers.get("Retry-After"))
                )
                wait = self.retry.wait_before_retry(attempt, retry_after)
                if wait is None:
                    raise DeliveryError(what, status, detail, attempt, retryable=True) from exc
                log.warning(
                    "PagerDuty %s: %s; retrying in %.1f s (attempt %d of %d)",
                    what,
                    "no response" if status is None else f"HTTP {status}",
                    wait,
                    attempt + 1,
                    self.retry.max_attempts,
                )
                self._sleep(wait)

    def send(self, event: Mapping[str, Any], session: EventsAPISession | None = None) -> str:
        """Send one outbox event (trigger / acknowledge / resolve); returns PagerDuty's dedup_key.

        The event's routing-key reference must name this sender's setting; the request carries
        the key it was built with. Raises :class:`DeliveryError` once retries are exhausted or
        PagerDuty rejects the event.
        """
        reference = routing_key_setting(event)
        if reference != self.key_setting:
            named = "no reference" if reference is None else f"a reference to {reference}"
            raise ValueError(
                f"event {event.get('dedup_key')!r} holds {named}; this sender sends for {self.key_setting}"
            )
        own = session is None
        active = session or self._events_session()
        what = f"{event.get('event_action')} {event.get('dedup_key')}"
        try:
            return self._with_retries(what, lambda: post_event(active, event))
        finally:
            if own:
                active.close()

    def send_change(self, event: Mapping[str, Any]) -> None:
        """Send one change event (``promotion_change_event``) to ``/v2/change/enqueue``, retried."""
        validate_change_event(event)
        payload = event["payload"]
        with self._change_session() as session:
            self._with_retries(
                f"change event {payload['summary'][:60]!r}",
                lambda: session.submit(
                    payload["summary"],
                    source=payload.get("source"),
                    custom_details=payload.get("custom_details"),
                    links=event.get("links") or None,
                    timestamp=payload.get("timestamp"),
                ),
            )

    # the outbox ---------------------------------------------------------------------------------
    def deliver(self, outbox: Outbox, ledger: DeliveryLedger) -> DeliveryReport:
        """Send every pending outbox event in order and record each success in the ledger.

        Runs hold a lock beside the ledger, so two concurrent runs cannot both send an event.
        After a failure, later events of the same dedup key wait (a resolve must not overtake
        its trigger); after a retryable failure (PagerDuty throttling or down) the rest of
        the run's events wait too.
        """
        outbox.scrub()  # lines an older version wrote with a literal key: rewritten without it
        with exclusive_lock(ledger.path.with_name(f"{ledger.path.name}.deliver.lock")):
            plan = plan_delivery(
                outbox.read(),
                ledger.identities(),
                send_cleared=self.send_cleared,
                key_setting=self.key_setting,
            )
            report = DeliveryReport(
                suppressed=len(plan.suppress), unroutable=len(plan.unroutable), pending=len(plan.unroutable)
            )
            for event in plan.unroutable:
                reference = routing_key_setting(event)
                report.failures.append(
                    DeliveryFailure(
                        str(event.get("dedup_key")),
                        str(event.get("event_action")),
                        None,
                        f"no routing key configured for {reference or 'an event without a reference'}",
                        retryable=False,
                    )
                )
            if plan.suppress:
                ledger.append(
                    [
                        ledger_record(
                            str(e["dedup_key"]),
                            str(e["event_action"]),
                            SUPPRESSED,
                            reason="cleared before it could be delivered",
                        )
                        for e in plan.suppress
                    ]
                )
            if not plan.send:
                return report
            blocked_keys: set[str] = set()
            unavailable = False
            with self._events_session() as session:
                for event in plan.send:
                    key, action = str(event["dedup_key"]), str(event["event_action"])
                    if unavailable or key in blocked_keys:
                        report.pending += 1
                        continue
                    try:
                        self.send(event, session)
                    except DeliveryError as exc:
                        log.warning("%s; it stays pending for the next run", exc)
                        report.pending += 1
                        report.failures.append(
                            DeliveryFailure(key, action, exc.status, exc.detail, exc.retryable)
                        )
                        blocked_keys.add(key)
                        unavailable = exc.retryable
                        continue
                    ledger.append([ledger_record(key, action, DELIVERED)])
                    report.delivered += 1
            return report


# -- entry points for flows --------------------------------------------------------------------
def deliver_outbox(settings: Settings, sender: PagerDutySender | None = None) -> DeliveryReport | None:
    """Deliver the settings' outbox through ``sender`` (default: from the settings); None in embedded mode."""
    sender = sender or PagerDutySender.from_settings(settings)
    if sender is None:
        return None
    return sender.deliver(Outbox(settings.outbox_path), DeliveryLedger(ledger_path(settings.outbox_path)))


def notify_promotion(
    settings: Settings,
    registered_name: str,
    version: str,
    reason: str,
    *,
    metrics: Mapping[str, float] | None = None,
    run_id: str | None = None,
    sender: PagerDutySender | None = None,
) -> bool:
    """Tell PagerDuty (a change event) that ``registered_name`` v``version`` became champion.

    Best effort: returns True once PagerDuty has it (now or on an earlier call: the ledger
    keeps a retried train task from announcing twice), False in embedded mode or when it could
    not be delivered (logged; a promotion notice is context for responders, not a page).
    """
    sender = sender or PagerDutySender.from_settings(settings)
    if sender is None:
        return False
    ledger = DeliveryLedger(ledger_path(settings.outbox_path))
    key = f"change/{registered_name}/{version}"
    if (key, CHANGE_ACTION) in ledger.identities():
        return True
    links = (
        [{"href": settings.sinks.dashboard_url, "text": "Foresight dashboard"}]
        if settings.sinks.dashboard_url
        else []
    )
    event = promotion_change_event(
        registered_name,
        version,
        reason,
        timestamp=datetime.now(UTC),
        metrics=metrics,
        run_id=run_id,
        links=links,
    )
    try:
        sender.send_change(event)
    except DeliveryError as exc:
        log.warning("promotion of %s v%s not announced to PagerDuty: %s", registered_name, version, exc)
        return False
    ledger.append([ledger_record(key, CHANGE_ACTION, DELIVERED)])
    return True
