"""The HTML report's page as a browser dumped it, read the way a capacity planner reads it: the
plotted figures (what each band spans) and the capacity plan's runway claims, with what a planner
must not see listed by :func:`report_findings`."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np

CHANCE = re.compile(r"(<1|>99|\d+) % chance")
CLAIM = re.compile(r"in (\d+(?:\.\d+)?) days")
RUNWAY, EARLIEST, P_CROSS = "runway, median (days)", "earliest, upper band (days)", "P(cross in horizon)"


class ReportPage(HTMLParser):
    """The figures (attributes, caption attributes and text) and the capacity-plan table of a DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[dict[str, str]] = []
        self.plan_header: list[str] = []
        self.plan_rows: list[list[str]] = []
        self._section = ""
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "section":
            self._section = found.get("id", "")
        elif tag == "figure":
            self.figures.append(found)
        elif tag == "figcaption":
            self.figures[-1].update({f"caption-{k}": v for k, v in found.items()})
            self._caption = []
        elif self._section == "capacity-plan" and tag == "tr":
            self.plan_rows.append([])
        elif self._section == "capacity-plan" and tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data: str) -> None:
        for sink in (self._cell, self._caption):
            if sink is not None:
                sink.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "figcaption" and self._caption is not None:
            self.figures[-1]["caption"] = " ".join("".join(self._caption).split())
            self._caption = None
        elif tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            (self.plan_header if tag == "th" else self.plan_rows[-1]).append(text)
            self._cell = None


def chance(text: str) -> float:
    return {"<1": 0.005, ">99": 0.995}.get(text, float(text) / 100 if text.isdigit() else np.nan)


def report_findings(dom: str, units: dict[str, tuple[float, float]]) -> list[str]:
    """What a planner must not see: a band outside its series' bounds (``units``: unique_id ->
    the lowest and highest value it can take; unlisted: unbounded), a runway without its chance,
    or a chance too small for the claim it backs (a median crossing is at least even odds, an
    upper-band crossing at least 1 in 10 for the 80 % band)."""
    page = ReportPage()
    page.feed(dom)
    problems = []
    for fig in page.figures:
        uid, (lo, hi) = fig["data-unique-id"], units.get(fig["data-unique-id"], (-np.inf, np.inf))
        if fig["data-band-low"] and not lo <= float(fig["data-band-low"]) <= float(fig["data-band-high"]) <= hi:
            problems.append(f"{uid}: band {fig['data-band-low']}..{fig['data-band-high']} leaves [{lo}, {hi}]")
        caption, claims = fig.get("caption", ""), CLAIM.findall(fig.get("caption", ""))
        said = CHANCE.search(caption)
        probability = float(fig.get("caption-data-probability") or "nan")
        if claims and (said is None or np.isnan(probability)):
            problems.append(f"{uid}: runway without its probability: {caption!r}")
        elif claims and said is not None and abs(chance(said.group(1)) - probability) > 0.006:
            problems.append(f"{uid}: caption says {said.group(0)}, the plan {probability}")
        elif ("expected to reach" in caption and probability < 0.5) or ("earliest" in caption and probability < 0.1):
            problems.append(f"{uid}: {probability:.0%} cannot back {caption!r}")
    header = page.plan_header
    if not header:  # no plan rows: the table is not drawn
        return problems
    runway, earliest, p_cross = (header.index(c) for c in (RUNWAY, EARLIEST, P_CROSS))
    for row in (r for r in page.plan_rows if r):
        said = CHANCE.search(f"{row[p_cross]} chance")
        if row[runway] != "—" or row[earliest] != "—":
            if said is None:
                problems.append(f"plan row {row[0]}: runway without its probability ({row[p_cross]!r})")
            elif row[runway] != "—" and chance(said.group(1)) < 0.5:
                problems.append(f"plan row {row[0]}: median runway {row[runway]} backed by only {row[p_cross]}")
    return problems
