"""The demo's closing summary, printed with rich.

A source whose data contract failed is shown in red at ingest, as held back at detect, and in a
closing line that says what it held back and what to do (:func:`failed_sources`); the demo's
other stages still ran on every other source.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from foresight.redact import redact_url
from foresight.settings import Settings


def render_summary(console: Console, results: dict[str, Any], settings: Settings, elapsed: float,
                   timings: dict[str, float] | None = None) -> None:
    ingest = results.get("ingest", [])
    table = Table(title="Foresight demo", show_lines=False)
    table.add_column("stage", style="bold")
    table.add_column("result", overflow="fold")  # long paths wrap, never cut
    for outcome in ingest:
        written = ", ".join(f"{k} {v:,}" for k, v in outcome["written"].items())
        status = "[green]contract passed[/green]" if outcome["passed"] else "[red]contract FAILED[/red]"
        counts = (f"{outcome['accepted']:,} rows accepted, {outcome['quarantined']:,} quarantined"
                  + (f", {outcome['rejected_messages']:,} messages rejected" if outcome["rejected_messages"] else "")
                  if "accepted" in outcome else "")
        why = "; ".join(f"{reason} ({n:,})" for reason, n in list(outcome.get("reasons", {}).items())[:3])
        table.add_row("ingest", f"{outcome['source']}: {status}; {counts}{f' ({why})' if why else ''}; "
                      f"upserted {written or 'nothing'}")
    for res in results.get("train", {}).values():
        colour = "green" if res["decision"] == "promote" else "yellow"  # foresight.promotion.Decision.label
        table.add_row(
            "train", f"{res['registered_model']} v{res['version']} ({res['model']}): "
            f"[{colour}]{res['decision']}[/{colour}] — {res['reason']}",
        )
    for res in results.get("train", {}).values():
        m = res.get("metrics", {})
        if "recall" in m:  # event-wise, on the held-out part of history (after the train split)
            table.add_row("held out", f"{res['model']}: {_events_text(m)}")
        if "stream_recall" in m:  # the pages, when the incident stream builds them: same split
            stream = {k.removeprefix("stream_"): v for k, v in m.items() if k.startswith("stream_")}
            table.add_row("held out", f"incident stream (the pages): {_events_text(stream)}")
    fc = results.get("forecast")
    if fc:
        made_by = ", ".join(f"{name} {n}" for name, n in (fc.get("series_models") or {}).items())
        table.add_row("forecast", f"{fc['series']} series x {settings.forecast.horizon} steps by {fc['model']} "
                      f"v{fc['model_version']}{f' ({made_by})' if made_by else ''}; {fc['crossing_within_horizon']} "
                      f"of {fc['plan_rows']} resources cross their threshold within the horizon on the median"
                      + (f" ({fc['plausible_crossing_within_horizon']} on the p90 band)"
                         if "plausible_crossing_within_horizon" in fc else ""))
        for warning in fc.get("forecast_start_warnings") or []:
            table.add_row("warning", f"[yellow]forecast start: {warning}[/yellow]")
        if "rightsizing_rows" in fc:
            table.add_row("rightsize", rightsizing_line(fc))
    det = results.get("detect")
    if det:
        table.add_row("detect", f"{det['incidents']} incidents; outbox +{det['events_written']} events "
                      f"({det['events_skipped']} already sent)")
        if det.get("blocked_sources"):
            table.add_row("held back", f"[red]{', '.join(det['blocked_sources'])}: newest batch failed its data "
                          f"contract; {det.get('held_back_series', 0):,} series left out of detection[/red]")
        ev = det.get("evaluation") or {}
        if ev:
            hours = settings.detect.lookback_hours
            table.add_row("vs truth", f"last {hours} h of incidents: {_events_text(ev)}")
    pub = results.get("publish")
    if pub:
        table.add_row("publish", f"report {pub['report']}; dashboards {', '.join(pub['dashboards'])}")
    stages = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in (timings or {}).items())
    table.add_row("wall time", f"{elapsed:.1f} s" + (f" ({stages})" if stages else ""))
    console.print(table)
    failed = failed_sources(results)
    if failed:
        console.print(
            f"[bold red]Data contract FAILED for {', '.join(failed)}[/bold red]: its rows wait in the lake's "
            f"quarantine ({settings.lake_location}/quarantine) and its series' pages are held back; every "
            "other source went through every stage. Fix the source: its pages resume after its next clean batch."
        )
    console.print(
        f"\nOpen the MLflow UI on what this run produced:\n"
        f"  [bold]mlflow ui --backend-store-uri {redact_url(settings.tracking_uri)} --port 5000[/bold]\n"
        f"then browse http://127.0.0.1:5000 (experiments foresight-*, models capacity-forecaster, "
        f"anomaly-detector, failure-predictor).\nForecast store: {redact_url(settings.forecast_store_url)}\n"
        f"PagerDuty outbox: {settings.outbox_path}"
    )


def rightsizing_line(fc: dict[str, Any]) -> str:
    """The rightsizing row: what changes and the fleet's net monthly cost change, signed, with
    its savings and increases, so a saving of $0.00 never hides an increase."""
    actions = ", ".join(f"{n} {a}" for a, n in fc["rightsizing_actions"].items()) or "none"
    net = fc.get("net_monthly_cost_change", fc["monthly_upsize_cost"] - fc["monthly_savings"])
    return (f"{fc['rightsizing_rows']} services ({actions}); net monthly cost change {_usd(net)} "
            f"(savings ${abs(fc['monthly_savings']):,.2f}, increases ${abs(fc['monthly_upsize_cost']):,.2f}; "
            f"prices: {fc['price_source']}); {fc['scaling_actions']} scheduled scaling actions")


def _usd(amount: float) -> str:
    return f"{'-' if round(amount, 2) < 0 else '+'}${abs(amount):,.2f}/month"


def failed_sources(results: dict[str, Any]) -> list[str]:
    """Sources whose contract failed in this demo's ingest, or that its detect held back."""
    names = {o["source"] for o in results.get("ingest") or [] if not o.get("passed", True)}
    names |= set((results.get("detect") or {}).get("blocked_sources", []))
    return sorted(names)


def _events_text(m: dict[str, Any]) -> str:
    lead = m.get("median_lead_minutes")
    lead_text = "n/a" if lead is None or lead != lead else f"{lead:.0f} min"
    return (f"recall {m['recall']:.2f}, precision {m['precision']:.2f}, median lead time {lead_text} "
            f"({int(m['detected'])} detected, {int(m['missed'])} missed, {int(m['false_alarms'])} false alarms)")
