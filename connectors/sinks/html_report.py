"""The run report: one self-contained HTML file (no external assets) a person can open or mail.

Sections: summary, forecast plots (actuals, forecast and interval band, threshold, the expected
and earliest crossings) for the series closest to their threshold, capacity plan (each runway with
the chance of crossing that backs it, and the forecast-start warnings),
rightsizing (per service: current -> proposed type, why, exceed probabilities, monthly cost
change, and the fleet's net total), incidents, and detection-vs-ground-truth evaluation. Plots are matplotlib (Agg, no pyplot state) PNGs embedded as base64 data URIs; the
page is a Jinja2 template with autoescaping on, so series names and incident text are escaped.
Each figure carries what it plotted as ``data-`` attributes (the band's lowest and highest value)
and each runway sentence its numbers, so a browser-rendered check can hold the page to its data
(tests/integration/test_report_in_browser.py).
"""

from __future__ import annotations

import base64
import io
import math
import numbers
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

MAX_TABLE_ROWS = 500  # longer tables are cut (the store / outbox hold everything)

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
 h1 { margin-bottom: 0.2rem; } .generated { color: #666; margin-top: 0; }
 table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.85rem; }
 th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
 th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
 .plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1rem; }
 figure { margin: 0; } figure img { max-width: 100%; height: auto; } figcaption { font-size: 0.85rem; color: #444; }
 .note { color: #666; font-size: 0.85rem; }
</style>
</head>
<body>
{% macro kv_table(rows) -%}
{% if rows %}<table><tbody>
{% for key, value in rows %}<tr><th>{{ key }}</th>
<td{% if value.num %} class="num"{% endif %}>{{ value.text }}</td></tr>
{% endfor %}</tbody></table>
{% else %}<p class="note">Nothing to report.</p>{% endif %}
{%- endmacro %}

{% macro frame_table(frame) -%}
{% if frame.rows %}<table><thead><tr>{% for col in frame.columns %}<th>{{ col }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in frame.rows %}<tr>{% for cell in row -%}
<td{% if cell.num %} class="num"{% endif %}>{{ cell.text }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% if frame.cut %}<p class="note">Showing {{ frame.rows|length }} of {{ frame.total }} rows.</p>{% endif %}
{% else %}<p class="note">None.</p>{% endif %}
{%- endmacro %}
<h1>{{ title }}</h1>
<p class="generated">Generated {{ generated }}</p>

<section id="summary">
<h2>Summary</h2>
{{ kv_table(summary) }}
</section>

<section id="forecasts">
<h2>Forecasts closest to threshold</h2>
{% if plots %}<div class="plots">
{% for plot in plots %}<figure data-unique-id="{{ plot.unique_id }}" data-band-low="{{ plot.band_low }}"
 data-band-high="{{ plot.band_high }}">
<img src="data:image/png;base64,{{ plot.png }}" alt="Forecast for {{ plot.unique_id }}" width="640">
<figcaption{% if plot.runway %} class="runway" data-days="{{ plot.runway.days }}"
 data-days-earliest="{{ plot.runway.earliest }}" data-probability="{{ plot.runway.probability }}"{% endif %}>
{{- plot.unique_id }}{% if plot.caption %}: {{ plot.caption }}{% endif %}</figcaption>
</figure>
{% endfor %}</div>
{% else %}<p class="note">No forecasts in this run.</p>{% endif %}
</section>

<section id="capacity-plan">
<h2>Capacity plan</h2>
{% if start_warnings %}<p><strong>Forecast start warnings</strong> (the forecast does not start where
the series is; check these series before planning on them):</p>
<ul>{% for uid, text in start_warnings %}<li><code>{{ uid }}</code>: {{ text }}</li>{% endfor %}</ul>{% endif %}
<p class="note">Runway: when the median forecast reaches the threshold. Earliest: when the upper
edge of the {{ level }} % band does. P(cross): the chance of reaching the threshold within the
forecast horizon, read from the same band.</p>
{{ frame_table(capacity_plan) }}
</section>

<section id="rightsizing">
<h2>Rightsizing</h2>
{% if rightsizing.rows %}{{ frame_table(rightsizing) }}
<p><strong>Net monthly cost change: {{ rightsizing_total }}</strong> (negative saves, positive costs
more; held changes cost nothing).</p>
{% else %}<p class="note">No rightsizing in this run.</p>{% endif %}
</section>

<section id="incidents">
<h2>Incidents</h2>
{{ frame_table(incidents) }}
</section>

<section id="evaluation">
<h2>Detection vs ground truth</h2>
{{ kv_table(evaluation) }}
</section>

</body>
</html>
"""


def render_report(
    path: str | Path,
    *,
    title: str,
    summary: Mapping[str, Any],
    forecasts: pd.DataFrame,
    actuals: pd.DataFrame,
    capacity_plan: pd.DataFrame,
    incidents: pd.DataFrame,
    evaluation: Mapping[str, Any],
    max_plots: int = 12,
    rightsizing: pd.DataFrame | None = None,
    level: int = 80,
) -> Path:
    """Write the report to ``path`` (parents created) and return the path; ``level`` is the
    forecasts' interval level, named where the report explains the runway."""
    chosen = series_to_plot(forecasts, capacity_plan, max_plots)
    plan = capacity_plan.set_index("unique_id") if "unique_id" in capacity_plan.columns else None
    plots = [_plot(uid, forecasts, actuals, plan, level) for uid in chosen]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(_TEMPLATE).render(
        title=title,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        summary=_flatten(summary),
        plots=plots,
        capacity_plan=_table(plan_report_rows(capacity_plan)),
        level=level,
        start_warnings=start_warnings(capacity_plan),
        rightsizing=_table(rightsizing_rows(rightsizing)),
        rightsizing_total=_signed_usd(rightsizing_total(rightsizing)),
        incidents=_table(incidents),
        evaluation=_flatten(evaluation),
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


PLAN_REPORT_COLUMNS: tuple[str, ...] = (
    "series", "metric", "current", "threshold", "runway, median (days)", "crossing date (median)",
    "earliest, upper band (days)", "P(cross in horizon)", "peak p50", "peak p90", "capacity needed",
    "target utilisation",
)
_PLAN_SOURCES: tuple[str, ...] = (
    "unique_id", "metric", "current", "threshold", "days_to_threshold", "threshold_date",
    "days_to_threshold_earliest", "crossing_probability", "peak_p50", "peak_p90", "capacity_needed",
    "target_utilisation",
)


def plan_report_rows(plan: pd.DataFrame) -> pd.DataFrame:
    """The capacity plan as the report's table shows it (``PLAN_REPORT_COLUMNS``): each runway
    beside the probability that backs it, which is shown as a percentage."""
    frame = plan.reindex(columns=list(_PLAN_SOURCES))
    frame["crossing_probability"] = [chance_text(p) for p in frame["crossing_probability"]]
    return frame.set_axis(list(PLAN_REPORT_COLUMNS), axis=1).reset_index(drop=True)


def chance_text(probability: Any) -> str:
    """A probability as a whole percentage; '<1 %' / '>99 %' rather than a rounded 0 or 100."""
    if probability is None or pd.isna(probability):
        return "—"
    p = float(probability)
    if 0 < p < 0.005:
        return "<1 %"
    if 0.995 <= p < 1:
        return ">99 %"
    return f"{100 * p:.0f} %"


def runway_text(row: Mapping[str, Any]) -> str:
    """One plan row's runway as a sentence: the median's crossing, the band's earliest, and the
    chance within the horizon that backs them (none claimed without it)."""
    days, earliest = _number(row.get("days_to_threshold")), _number(row.get("days_to_threshold_earliest"))
    chance = chance_text(row.get("crossing_probability"))
    if chance == "—":
        if days is None:
            return "does not reach its threshold within the horizon"
        return f"median reaches its threshold in {days:.1f} days (no crossing probability in this plan)"
    date = row.get("threshold_date")
    when = f" ({pd.Timestamp(date):%Y-%m-%d})" if date is not None and pd.notna(date) else ""
    soonest = "" if earliest is None else f"; earliest plausible in {earliest:.1f} days (upper band)"
    if days is not None:
        return f"expected to reach its threshold in {days:.1f} days{when}{soonest}; {chance} chance within the horizon"
    if earliest is not None:
        return (f"median stays below its threshold over the horizon; earliest plausible crossing in "
                f"{earliest:.1f} days (upper band), {chance} chance within the horizon")
    return f"stays below its threshold over the horizon ({chance} chance of crossing)"


def _number(value: Any) -> float | None:
    number = pd.to_numeric(value, errors="coerce") if value is not None else None
    return None if number is None or pd.isna(number) else float(number)


RIGHTSIZING_REPORT_COLUMNS: tuple[str, ...] = (
    "service", "instances", "current type", "proposed type", "action", "P(exceed) current",
    "P(exceed) proposed", "monthly cost change (USD)", "reason",
)


def rightsizing_rows(recommendations: pd.DataFrame | None) -> pd.DataFrame:
    """The rightsizing table as the report shows it (``RIGHTSIZING_REPORT_COLUMNS``); a held
    change names the type the sizing alone picked beside the kept one."""
    if recommendations is None or recommendations.empty:
        return pd.DataFrame(columns=list(RIGHTSIZING_REPORT_COLUMNS))
    rows = []
    for rec in recommendations.to_dict("records"):
        proposed = rec.get("recommended_instance_type") or "none fits"
        sized = rec.get("sized_instance_type")
        if rec.get("action") == "hold" and sized:
            proposed = f"{proposed} (sized: {sized}, held)"
        rows.append(dict(zip(RIGHTSIZING_REPORT_COLUMNS, (
            rec["service"], rec.get("instance_count"), rec.get("current_instance_type"), proposed, rec.get("action"),
            _percent(rec.get("current_exceed_probability")), _percent(rec.get("exceed_probability")),
            _signed_usd(rec.get("monthly_cost_change")), rec.get("reason")), strict=True)))
    return pd.DataFrame(rows, columns=list(RIGHTSIZING_REPORT_COLUMNS))


def rightsizing_total(recommendations: pd.DataFrame | None) -> float:
    """The fleet's net monthly cost change (signed; NaN rows, e.g. none fits, count as no change)."""
    if recommendations is None or recommendations.empty or "monthly_cost_change" not in recommendations:
        return 0.0
    return float(pd.to_numeric(recommendations["monthly_cost_change"], errors="coerce").fillna(0.0).sum())


def start_warnings(capacity_plan: pd.DataFrame) -> list[tuple[str, str]]:
    """(unique_id, warning) of the plan rows whose forecast-start check fired."""
    if "start_warning" not in capacity_plan.columns:
        return []
    flagged = capacity_plan[capacity_plan["start_warning"].notna() & capacity_plan["start_warning"].astype(bool)]
    return [(str(u), str(w)) for u, w in zip(flagged["unique_id"], flagged["start_warning"], strict=True)]


def _percent(probability: Any) -> str:
    return "—" if probability is None or pd.isna(probability) else f"{100 * float(probability):.1f} %"


def _signed_usd(amount: Any) -> str:
    if amount is None or pd.isna(amount):
        return "—"
    if round(float(amount), 2) == 0:
        return "$0.00"
    return f"{'-' if float(amount) < 0 else '+'}${abs(float(amount)):,.2f}"


def series_to_plot(forecasts: pd.DataFrame, capacity_plan: pd.DataFrame, limit: int) -> list[str]:
    """Forecast series closest to their threshold first.

    Order: soonest median crossing, then the likeliest to cross (plans without probabilities
    skip this), then the highest p90 peak as a share of the threshold, then series without a
    plan row.
    """
    if forecasts.empty or limit <= 0:
        return []
    forecast_ids = pd.unique(forecasts["unique_id"].astype(str))
    if capacity_plan.empty or "unique_id" not in capacity_plan.columns:
        return sorted(forecast_ids)[:limit]
    plan = capacity_plan[capacity_plan["unique_id"].astype(str).isin(forecast_ids)].copy()
    plan["_days"] = pd.to_numeric(plan.get("days_to_threshold"), errors="coerce")
    peak = pd.to_numeric(plan.get("peak_p90"), errors="coerce")
    threshold = pd.to_numeric(plan.get("threshold"), errors="coerce")
    plan["_share"] = (peak / threshold.where(threshold > 0)).fillna(-math.inf)
    plan["_chance"] = pd.to_numeric(plan.get("crossing_probability"), errors="coerce")
    ranked = plan.sort_values(
        ["_days", "_chance", "_share", "unique_id"], ascending=[True, False, False, True], na_position="last"
    )
    ordered = list(ranked["unique_id"].astype(str))
    rest = sorted(set(forecast_ids) - set(ordered))
    return (ordered + rest)[:limit]


# -- plots -------------------------------------------------------------------------------------
def _plot(
    uid: str, forecasts: pd.DataFrame, actuals: pd.DataFrame, plan: pd.DataFrame | None, level: int
) -> dict[str, Any]:
    """One series' actuals, forecast band, threshold and crossings as a base64 PNG, with a caption
    and what was plotted (the band's extremes, the runway's numbers) for the page's attributes."""
    from matplotlib.figure import Figure  # lazy: only reports need matplotlib

    fc = forecasts[forecasts["unique_id"].astype(str) == uid].sort_values("ds")
    act = actuals[actuals["unique_id"].astype(str) == uid].sort_values("ds") if not actuals.empty else actuals
    fig = Figure(figsize=(8, 3), dpi=80, layout="constrained")
    ax = fig.add_subplot()
    if len(act):
        ax.plot(act["ds"], act["y"], color="#333333", linewidth=1, label="actual")
    lower, upper = fc["yhat_lower"].to_numpy(dtype="float64"), fc["yhat_upper"].to_numpy(dtype="float64")
    ax.fill_between(fc["ds"], lower, upper, color="#1f77b4", alpha=0.2, label=f"{level} % band")
    ax.plot(fc["ds"], fc["yhat"], color="#1f77b4", linewidth=1.2, linestyle="--", label="forecast (median)")
    caption, runway = "", None
    row = plan.loc[uid] if plan is not None and uid in plan.index else None
    if row is not None and isinstance(row, pd.Series):
        threshold = row.get("threshold")
        if threshold is not None and pd.notna(threshold):
            ax.axhline(float(threshold), color="#d62728", linewidth=1, label="threshold")
        for column, style, label in (("threshold_date", "-", "expected crossing"),
                                     ("threshold_date_earliest", ":", "earliest plausible")):
            when = row.get(column)
            if when is not None and pd.notna(when):
                ax.axvline(pd.Timestamp(when), color="#d62728", linewidth=1, linestyle=style, label=label)
        caption = runway_text(row)
        runway = {k: "" if v is None else f"{v:.6g}" for k, v in (
            ("days", _number(row.get("days_to_threshold"))),
            ("earliest", _number(row.get("days_to_threshold_earliest"))),
            ("probability", _number(row.get("crossing_probability"))))}
    ax.set_title(uid, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7)
    fig.autofmt_xdate()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return {"unique_id": uid, "png": base64.b64encode(buffer.getvalue()).decode("ascii"), "caption": caption,
            "runway": runway, "band_low": _extreme(lower, np.nanmin), "band_high": _extreme(upper, np.nanmax)}


def _extreme(values: np.ndarray, pick: Any) -> str:
    """The plotted band's lowest / highest value as text ('' when it plotted none)."""
    finite = values[np.isfinite(values)]
    return f"{float(pick(finite)):.6g}" if finite.size else ""


# -- tables (plain values; the template escapes them) -------------------------------------------
def _cell(value: Any) -> dict[str, Any]:
    """One value as display text: numbers to 4 significant digits, times to minutes, gaps to a dash."""
    if value is None or (isinstance(value, (float, pd.Timestamp, np.datetime64)) and pd.isna(value)):
        return {"text": "—", "num": False}
    if value is pd.NA or value is pd.NaT:
        return {"text": "—", "num": False}
    if isinstance(value, (bool, np.bool_)):
        return {"text": str(bool(value)), "num": False}
    if isinstance(value, numbers.Real):
        number = float(value)
        text = f"{number:,.0f}" if number.is_integer() and abs(number) >= 1e4 else f"{number:.4g}"
        return {"text": text, "num": True}
    if isinstance(value, (pd.Timestamp, datetime, np.datetime64)):
        return {"text": pd.Timestamp(value).strftime("%Y-%m-%d %H:%M"), "num": False}
    return {"text": str(value), "num": False}


def _table(frame: pd.DataFrame) -> dict[str, Any]:
    head = frame.head(MAX_TABLE_ROWS)
    rows = [[_cell(v) for v in record] for record in head.itertuples(index=False, name=None)]
    columns = [str(c) for c in frame.columns]
    return {"columns": columns, "rows": rows, "total": len(frame), "cut": len(frame) > len(head)}


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Nested mappings as ``(dotted key, cell)`` rows, e.g. ``anomaly.recall``."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, f"{name}."))
        else:
            rows.append((name, _cell(value)))
    return rows
