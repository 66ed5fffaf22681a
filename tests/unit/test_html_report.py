"""HTML report: one self-contained file with every section, embedded PNG plots, escaped text."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from connectors.sinks.html_report import (
    PLAN_REPORT_COLUMNS,
    plan_report_rows,
    render_report,
    runway_text,
    series_to_plot,
)

NOW = pd.Timestamp("2026-03-01", tz="UTC")
EVIL = "web/<script>alert('x')</script>/cpu_pct"
IDS = ["cart/i-1/cpu_pct", "cart/i-2/mem_pct", "search/i-3/disk_pct", EVIL]


def _frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    past = pd.date_range(NOW - pd.Timedelta(hours=48), periods=48, freq="h")
    future = pd.date_range(NOW, periods=24, freq="h")
    actuals = pd.DataFrame(
        {"unique_id": np.repeat(IDS, 48), "ds": np.tile(past, len(IDS)), "y": rng.uniform(20, 60, 48 * len(IDS))}
    )
    yhat = rng.uniform(30, 70, 24 * len(IDS))
    forecasts = pd.DataFrame(
        {
            "unique_id": np.repeat(IDS, 24),
            "ds": np.tile(future, len(IDS)),
            "yhat": yhat,
            "yhat_lower": yhat - 5,
            "yhat_upper": yhat + 5,
        }
    )
    plan = pd.DataFrame(
        {
            "unique_id": IDS,
            "metric": ["cpu_pct", "mem_pct", "disk_pct", "cpu_pct"],
            "threshold": [80.0, 90.0, 85.0, 80.0],
            "peak_p90": [70.0, 89.0, 60.0, 50.0],
            "days_to_threshold": [np.nan, 3.5, np.nan, 12.0],
            "days_to_threshold_earliest": [np.nan, 2.0, 1.4, 9.0],
            "crossing_probability": [0.004, 0.74, 0.29, 0.62],
            "threshold_date": [pd.NaT, NOW + pd.Timedelta(days=3.5), pd.NaT, NOW + pd.Timedelta(days=12)],
            "capacity_needed": [0.0, 1.0, 0.0, 0.5],
        }
    )
    incidents = pd.DataFrame(
        {
            "incident_id": ["inc-1"],
            "service": ["cart"],
            "category": ["resource_leak"],
            "start": [NOW - pd.Timedelta(hours=5)],
            "end": [pd.NaT],
            "severity": ["critical"],
            "description": ["<b>OOM</b> & restart"],
        }
    )
    return forecasts, actuals, plan, incidents


def test_series_closest_to_threshold_come_first() -> None:
    forecasts, _, plan, _ = _frames()
    # Median runway ascending, then unreached series by their chance of crossing (0.29 > 0.004),
    # then, without probabilities, by peak share (70/80 > 60/85).
    assert series_to_plot(forecasts, plan, 10) == ["cart/i-2/mem_pct", EVIL, "search/i-3/disk_pct", "cart/i-1/cpu_pct"]
    assert series_to_plot(forecasts, plan, 2) == ["cart/i-2/mem_pct", EVIL]
    unknown = plan.drop(columns="crossing_probability")
    assert series_to_plot(forecasts, unknown, 10)[2:] == ["cart/i-1/cpu_pct", "search/i-3/disk_pct"]
    assert series_to_plot(forecasts, plan.iloc[0:0], 2) == sorted(IDS)[:2]


def test_report_is_self_contained_with_all_sections(tmp_path) -> None:
    forecasts, actuals, plan, incidents = _frames()
    path = render_report(
        tmp_path / "reports" / "run.html",
        title="Foresight run <2026-03-01>",
        summary={"series": 4, "run_id": "abc123", "champion": {"forecaster": "lgbm_global"}},
        forecasts=forecasts,
        actuals=actuals,
        capacity_plan=plan,
        incidents=incidents,
        evaluation={"anomaly": {"recall": 0.8, "precision": 0.6667, "lead_time_minutes": 12.0}},
        max_plots=3,
    )
    html = path.read_text(encoding="utf-8")
    for section in ("summary", "forecasts", "capacity-plan", "incidents", "evaluation"):
        assert f'<section id="{section}">' in html
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 3  # max_plots honoured
    assert all(base64.b64decode(img).startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    assert "anomaly.recall" in html and "0.6667" in html and "champion.forecaster" in html
    assert ("expected to reach its threshold in 3.5 days (2026-03-04); earliest plausible in 2.0 days "
            "(upper band); 74 % chance within the horizon") in html
    # No external assets: nothing fetched over the network.
    assert not re.search(r'(src|href)="https?://', html)


def test_report_escapes_html_in_names_and_text(tmp_path) -> None:
    forecasts, actuals, plan, incidents = _frames()
    html = render_report(
        tmp_path / "r.html",
        title="<i>title</i>",
        summary={"<k>": "<v>"},
        forecasts=forecasts,
        actuals=actuals,
        capacity_plan=plan,
        incidents=incidents,
        evaluation={},
    ).read_text()
    assert "<script>" not in html and "<b>OOM</b>" not in html and "<i>title</i>" not in html
    assert "web/&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;/cpu_pct" in html
    assert "&lt;b&gt;OOM&lt;/b&gt; &amp; restart" in html
    assert "&lt;k&gt;" in html


def test_report_handles_an_empty_run(tmp_path) -> None:
    forecasts, actuals, plan, incidents = _frames()
    html = render_report(
        tmp_path / "empty.html",
        title="empty",
        summary={},
        forecasts=forecasts.iloc[0:0],
        actuals=actuals.iloc[0:0],
        capacity_plan=plan.iloc[0:0],
        incidents=incidents.iloc[0:0],
        evaluation={},
    ).read_text()
    assert "No forecasts in this run." in html and "<img" not in html


@pytest.mark.parametrize("max_plots", [0, 1])
def test_max_plots_limits_images(tmp_path, max_plots: int) -> None:
    forecasts, actuals, plan, incidents = _frames()
    html = render_report(
        tmp_path / "m.html", title="t", summary={}, forecasts=forecasts, actuals=actuals,
        capacity_plan=plan, incidents=incidents, evaluation={}, max_plots=max_plots,
    ).read_text()
    assert html.count("<img ") == max_plots


def test_the_rightsizing_section_shows_each_change_its_risks_and_the_signed_total(tmp_path) -> None:
    forecasts, actuals, plan, incidents = _frames()
    plan = plan.assign(start_warning=[None, "forecast starts 22.0 below the last actual 72.0", None, None])
    recs = pd.DataFrame({
        "service": ["search", "cart", "web"], "instance_count": [2, 2, 3],
        "current_instance_type": ["c6i.2xlarge", "r6i.large", "m6i.2xlarge"],
        "recommended_instance_type": ["c6i.2xlarge", "r6i.xlarge", "m6i.xlarge"],
        "sized_instance_type": ["c6i.4xlarge", "r6i.xlarge", "m6i.xlarge"],
        "action": ["hold", "upsize", "downsize"],
        "current_exceed_probability": [0.0018, 0.3717, 0.0], "exceed_probability": [0.0018, 0.0, 0.001],
        "monthly_cost_change": [0.0, 183.96, -840.96],
        "reason": ["held: P(exceed c6i.2xlarge) is 0.2 %, within the risk budget 5.0 %", "memory binds",
                   "m6i.xlarge holds it for less"],
    })
    html = render_report(tmp_path / "r.html", title="t", summary={}, forecasts=forecasts, actuals=actuals,
                         capacity_plan=plan, incidents=incidents, evaluation={}, rightsizing=recs).read_text()
    assert '<section id="rightsizing">' in html
    section = html[html.index('<section id="rightsizing">'):]
    for text in ("c6i.2xlarge (sized: c6i.4xlarge, held)", "r6i.xlarge", "37.2 %", "0.2 %", "+$183.96",
                 "-$840.96", "$0.00", "within the risk budget 5.0 %", "P(exceed) current", "P(exceed) proposed"):
        assert text in section, text
    assert "Net monthly cost change: -$657.00" in section  # 183.96 - 840.96: the fleet's total, signed
    assert "Forecast start warnings" in html and "forecast starts 22.0 below the last actual 72.0" in html
    empty = render_report(tmp_path / "e.html", title="t", summary={}, forecasts=forecasts, actuals=actuals,
                          capacity_plan=plan.drop(columns="start_warning"), incidents=incidents,
                          evaluation={}).read_text()
    assert "No rightsizing in this run." in empty and "Forecast start warnings" not in empty


def test_every_runway_sentence_carries_its_chance() -> None:
    _, _, plan, _ = _frames()
    rows = plan.to_dict("records")
    assert runway_text(rows[0]) == "stays below its threshold over the horizon (<1 % chance of crossing)"
    assert runway_text(rows[2]) == ("median stays below its threshold over the horizon; earliest plausible "
                                    "crossing in 1.4 days (upper band), 29 % chance within the horizon")
    assert runway_text({**rows[1], "crossing_probability": 0.9999}).endswith(">99 % chance within the horizon")
    # A plan written without probabilities says so rather than claiming a bare runway.
    assert runway_text({**rows[1], "crossing_probability": None}) == (
        "median reaches its threshold in 3.5 days (no crossing probability in this plan)")


def test_the_plan_table_puts_each_runway_beside_its_probability() -> None:
    _, _, plan, _ = _frames()
    table = plan_report_rows(plan)
    assert list(table.columns) == list(PLAN_REPORT_COLUMNS)
    assert table["P(cross in horizon)"].tolist() == ["<1 %", "74 %", "29 %", "62 %"]
    assert table["runway, median (days)"].tolist()[1] == 3.5
    assert table["earliest, upper band (days)"].tolist()[2] == 1.4
