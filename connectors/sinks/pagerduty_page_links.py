"""What a page links to: Grafana's incidents dashboard and a rendered panel, the runbook, the client URL.

Pure URL building from the sink settings (:class:`PageLinks`); no request is made. Grafana links
carry the dashboard's ``service`` variable and the incident's time range in epoch milliseconds
(``from`` / ``to``, padded by :data:`PAD` either side; an open incident's range is
:data:`OPEN_SPAN` from its start, so the link stays the same on every run). The
rendered image is Grafana's ``/render/d-solo/<uid>/<slug>?panelId=...`` (it needs Grafana's image
renderer, and PagerDuty fetches it itself: it must be reachable from PagerDuty, over https, which
PagerDuty requires of every image, so none is attached for an http Grafana).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pandas as pd

from foresight.timeutil import utc_timestamp

if TYPE_CHECKING:
    from foresight.settings_sections import SinkConfig

PAD = pd.Timedelta(hours=1)  # shown before the start and after the end of an incident
OPEN_SPAN = pd.Timedelta(hours=2)  # an open incident's range runs this long past its start (or to now)
IMAGE_WIDTH, IMAGE_HEIGHT = 1000, 500


@dataclass(frozen=True)
class PageLinks:
    """The link settings of a page (``sinks``): Grafana base URL, dashboard and panel, runbooks."""

    grafana_url: str | None = None
    dashboard_uid: str = "foresight-incidents"
    panel_id: int = 4
    dashboard_url: str | None = None
    runbook_url: str | None = None
    runbooks: Mapping[str, str] = field(default_factory=dict)
    client_url: str | None = None

    @classmethod
    def from_sinks(cls, sinks: SinkConfig) -> PageLinks:
        return cls(
            grafana_url=sinks.grafana_url,
            dashboard_uid=sinks.grafana_incidents_dashboard_uid,
            panel_id=sinks.grafana_incident_panel_id,
            dashboard_url=sinks.dashboard_url,
            runbook_url=sinks.runbook_url,
            runbooks=dict(sinks.runbooks),
            client_url=sinks.pagerduty_client_url,
        )

    def grafana_link(self, service: str, start: Any, end: Any = None) -> str | None:
        """The incidents dashboard for ``service`` over the incident's padded time range."""
        if not self.grafana_url:
            return None
        query = _dashboard_query(service, start, end)
        return f"{self.grafana_url.rstrip('/')}/d/{self.dashboard_uid}/?{urlencode(query)}"

    def panel_image_url(self, service: str, start: Any, end: Any = None) -> str | None:
        """Grafana's server-side render of the evidence panel for ``service`` (None without Grafana)."""
        if not self.grafana_url:
            return None
        query = {
            "orgId": 1,
            "panelId": self.panel_id,
            **_dashboard_query(service, start, end),
            "width": IMAGE_WIDTH,
            "height": IMAGE_HEIGHT,
            "tz": "UTC",
        }
        return (
            f"{self.grafana_url.rstrip('/')}/render/d-solo/{self.dashboard_uid}/incidents?{urlencode(query)}"
        )

    def runbook(self, fault_type: str | None, category: str | None) -> str | None:
        """The runbook for the fault type, else for the category, else the default one."""
        for name in (fault_type, category):
            if name and name in self.runbooks:
                return self.runbooks[name]
        return self.runbook_url

    def links(
        self, service: str, start: Any, end: Any, fault_type: str | None, category: str | None
    ) -> list[dict[str, str]]:
        """``links`` of a page, each ``{href, text}``: Grafana, runbook, dashboard (those configured)."""
        out = []
        grafana = self.grafana_link(service, start, end)
        if grafana:
            out.append({"href": grafana, "text": f"Grafana: {service} around the incident"})
        runbook = self.runbook(fault_type, category)
        if runbook:
            named = next((n for n in (fault_type, category) if n and n in self.runbooks), None)
            out.append(
                {"href": runbook, "text": f"Runbook: {named.replace('_', ' ')}" if named else "Runbook"}
            )
        if self.dashboard_url:
            out.append({"href": self.dashboard_url, "text": "Foresight dashboard"})
        return out

    def images(self, service: str, start: Any, end: Any) -> list[dict[str, str]]:
        """``images`` of a page, each ``{src, href, alt}``: the rendered panel, only from an https Grafana."""
        src = self.panel_image_url(service, start, end)
        if not src or not src.startswith("https://"):
            return []
        return [
            {
                "src": src,
                "href": self.grafana_link(service, start, end) or src,
                "alt": f"Foresight evidence for {service}",
            }
        ]

    def client(self, service: str, start: Any, end: Any) -> str | None:
        """``client_url``: the configured one, else the dashboard URL, else the Grafana deep link."""
        return self.client_url or self.dashboard_url or self.grafana_link(service, start, end)


def _dashboard_query(service: str, start: Any, end: Any) -> dict[str, Any]:
    begin = utc_timestamp(start, "incident start")
    finish = begin + OPEN_SPAN if end is None or _missing(end) else utc_timestamp(end, "incident end")
    return {
        "var-service": service,
        "from": _epoch_ms(begin - PAD),
        "to": _epoch_ms(finish + PAD),
    }


def _epoch_ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))
