"""The HTML report as a capacity planner sees it: rendered by Debian's headless Chromium, every
plotted band inside its metric's bounds and every runway claim backed by its probability.

The report comes from a small deterministic plan built the way the forecast flow builds it:
raw forecasts whose bands leave what a percentage can be (the issue's mem_pct up to 121 %, a
cpu_pct down to -40 %), the flow's bounding (``served_forecasts``), then ``capacity_plan``. The
checks read the DOM Chromium dumps after the page loaded, so they see what the browser shows, and
they are run once on a report made without the bounds and the probabilities, to show they catch
both. ``FORESIGHT_REPORT_SCREENSHOT=docs/img/report.png`` also writes the docs' screenshot.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from PIL import Image

from connectors.sinks.html_report import render_report
from flows.forecast_plan import served_forecasts
from models.capacity.plan import capacity_plan
from support.browser import dump_dom, screenshot
from support.report_page import P_CROSS, RUNWAY, ReportPage, chance, report_findings

pytestmark = pytest.mark.integration

ORIGIN = pd.Timestamp("2026-03-01", tz="UTC")
H = 168  # a week of hourly steps
MEM, DISK, CPU = "search/i-1/mem_pct", "cart/i-2/disk_pct", "web/i-3/cpu_pct"
THRESHOLDS = {"mem_pct": 90.0, "disk_pct": 90.0, "cpu_pct": 85.0}
PERCENT = (0.0, 100.0)  # what a percentage can be: the test's own oracle, not the code's table


def _inputs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """History (3 days), the catalogue and raw week-ahead forecasts of three percent series."""
    past = pd.date_range(ORIGIN - pd.Timedelta(hours=71), ORIGIN, freq="h")
    wave = np.sin(np.arange(len(past)) * 2 * np.pi / 24)
    history = pd.concat([
        pd.DataFrame({"unique_id": MEM, "ds": past, "y": 65.0 + 0.5 * wave}),
        pd.DataFrame({"unique_id": DISK, "ds": past, "y": np.linspace(58.0, 70.0, len(past))}),
        pd.DataFrame({"unique_id": CPU, "ds": past, "y": 12.0 + 3 * wave}),
    ], ignore_index=True)
    catalogue = pd.DataFrame({"unique_id": [MEM, DISK, CPU], "service": ["search", "cart", "web"],
                              "resource_id": ["i-1", "i-2", "i-3"], "metric": ["mem_pct", "disk_pct", "cpu_pct"],
                              "unit": "percent"})
    k = np.arange(1, H + 1)
    future = pd.date_range(ORIGIN + pd.Timedelta(hours=1), periods=H, freq="h")
    rising = 70.0 + 4 * k / 24  # reaches 90 on day 5
    raw = pd.concat([
        # The series: median flat at 65.7 %, its upper band widening to 121 % within days.
        pd.DataFrame({"unique_id": MEM, "ds": future, "yhat": 65.7, "yhat_lower": 60.0,
                      "yhat_upper": np.minimum(66.0 + k, 121.0)}),
        pd.DataFrame({"unique_id": DISK, "ds": future, "yhat": rising, "yhat_lower": rising - 6,
                      "yhat_upper": rising + 6}),
        pd.DataFrame({"unique_id": CPU, "ds": future, "yhat": 12.0, "yhat_lower": 12.0 - 52 * k / H,
                      "yhat_upper": 20.0}),
    ], ignore_index=True)
    return history, catalogue, raw


def _report(path: Path, forecasts: pd.DataFrame, history: pd.DataFrame, plan: pd.DataFrame) -> Path:
    return render_report(path, title="Foresight report", summary={"series forecast": 3, "resources planned": 3},
                         forecasts=forecasts, actuals=history, capacity_plan=plan, incidents=pd.DataFrame(),
                         evaluation={})


def test_the_report_in_a_browser_keeps_bands_in_bounds_and_backs_every_runway(tmp_path: Path) -> None:
    history, catalogue, raw = _inputs()
    forecasts, moved = served_forecasts([raw], history, catalogue)
    assert moved > 0, "the raw bands do leave [0, 100]: the bounding has work to do"
    plan = capacity_plan(forecasts, history, THRESHOLDS, catalogue, 70.0)
    page = _report(tmp_path / "report.html", forecasts, history, plan)
    dom = dump_dom(page)
    units = dict.fromkeys(catalogue["unique_id"], PERCENT)

    assert report_findings(dom, units) == []
    parsed = ReportPage()
    parsed.feed(dom)
    assert sorted(f["data-unique-id"] for f in parsed.figures) == sorted(units), "every planned series is plotted"
    captions = {f["data-unique-id"]: f["caption"] for f in parsed.figures}
    # The case: no 1.4-day runway for a median flat far below; the band's crossing is the
    # earliest plausible one, with its chance.
    assert "median stays below its threshold" in captions[MEM] and "earliest plausible crossing in 1.0 days" \
        in captions[MEM]
    assert captions[DISK].startswith(f"{DISK}: expected to reach its threshold in 5.0 days (2026-03-06)")
    rows = {r[0]: dict(zip(parsed.plan_header, r, strict=True)) for r in parsed.plan_rows if r}
    assert rows[MEM][RUNWAY] == "—" and 0.1 <= chance(rows[MEM][P_CROSS].removesuffix(" %")) < 0.5

    shot = screenshot(page, tmp_path / "report.png", height=1120)
    pixels = imread(shot)
    assert pixels.shape[:2] == (1120, 1280)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50, "the page rendered, not a blank"
    if target := os.environ.get("FORESIGHT_REPORT_SCREENSHOT"):  # the docs' picture, kept small
        Image.open(shot).convert("RGB").quantize(colors=96).save(target, optimize=True)


def test_the_browser_check_catches_unbounded_bands_and_bare_runways(tmp_path: Path) -> None:
    history, catalogue, raw = _inputs()
    # As before the bounds and the probabilities: raw bands, and a plan that lost its chances.
    plan = capacity_plan(raw, history, THRESHOLDS, catalogue, 70.0).assign(crossing_probability=np.nan)
    dom = dump_dom(_report(tmp_path / "bad.html", raw, history, plan))
    problems = report_findings(dom, dict.fromkeys(catalogue["unique_id"], PERCENT))
    assert any(p.startswith(f"{MEM}: band") and "leaves [0.0, 100.0]" in p for p in problems), problems
    assert any(p.startswith(f"{CPU}: band") for p in problems), problems
    assert any(p.startswith(f"{DISK}: runway without its probability") for p in problems), problems
    assert any(p.startswith(f"plan row {DISK}: runway without") for p in problems), problems
