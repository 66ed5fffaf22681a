"""Per-series PromQL for Prometheus-sourced series, kept next to the forecast store's tables.

The capacity dashboard draws a series' actuals straight from Prometheus (full resolution, live)
against its forecast band from the forecast store. A Grafana panel cannot derive "the PromQL of
series ``checkout/i-01/cpu_pct``" by itself: the expression lives in the ``prometheus`` source's
options (``series[].promql``) and the series' identity in the catalogue's ``labels`` (the label
set Prometheus returned for it). :func:`series_promql_frame` joins the two into one exact PromQL
per series (pure), and :class:`SeriesPromqlTable` keeps them in the table ``series_promql`` of the
forecast store's database (written by the publish flow), where the dashboard's hidden
``promql`` variable looks up the selected series' expression.

Exact selection of one series from a configured expression:

- a plain selector (``foresight_sim_cpu_pct`` or ``up{job="node"}``) gets the series' labels as
  equality matchers: ``foresight_sim_cpu_pct{instance="i-01",job="checkout"}``;
- any other expression is kept whole and intersected with a one-element vector carrying the
  labels: ``(<expr>) and on(instance, job) label_replace(label_replace(vector(1), "instance",
  "i-01", "", ""), "job", "checkout", "", "")`` (``label_replace`` on the empty source label
  sets a constant label; the intersection keeps the one matching series);
- ``counter: true`` series were ingested as per-second rates, so their PromQL is
  ``rate(<selector>[$__rate_interval])`` (a subquery for non-selector expressions).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from sqlalchemy import Column, Engine, MetaData, Table, Text, delete, insert, select

from connectors.sinks.forecast_store_schema import widen_to_text
from foresight.schemas import require_columns
from foresight.series_ids import unique_id_problem

SERIES_PROMQL_COLUMNS: tuple[str, ...] = ("unique_id", "source", "promql")
_METRIC_NAME_LABEL = "__name__"
_SELECTOR = re.compile(r"^\s*(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(?P<matchers>.*)\})?\s*$", re.S)
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

metadata = MetaData()
series_promql = Table(
    "series_promql",
    metadata,
    Column("unique_id", Text, primary_key=True),  # text, like the forecast store's tables
    Column("source", Text, nullable=False),
    Column("promql", Text, nullable=False),
)


# -- building (pure) -----------------------------------------------------------------------------
def quote_label_value(value: str) -> str:
    """A PromQL double-quoted string literal for a label value."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def series_selector(expression: str, labels: Mapping[str, str], *, counter: bool = False) -> str:
    """PromQL that returns exactly the one series of ``expression`` carrying ``labels``.

    ``labels`` is the label set Prometheus returned for the series (the catalogue's ``labels``);
    ``__name__`` is ignored (the expression names the metric). Raises ``ValueError`` for an
    empty expression or a label name PromQL cannot express.
    """
    if not expression.strip():
        raise ValueError("expression must not be empty")
    wanted = {str(k): str(v) for k, v in labels.items() if k != _METRIC_NAME_LABEL}
    bad = sorted(k for k in wanted if not _LABEL_NAME.match(k))
    if bad:
        raise ValueError(f"not valid Prometheus label names: {bad}")
    plain = _SELECTOR.match(expression)
    if plain is not None:
        matchers = [m for m in [(plain.group("matchers") or "").strip().rstrip(",")] if m]
        matchers += [f"{k}={quote_label_value(v)}" for k, v in sorted(wanted.items())]
        selector = plain.group("name") + ("{" + ",".join(matchers) + "}" if matchers else "")
        return f"rate({selector}[$__rate_interval])" if counter else selector
    body = f"({expression.strip()})"
    if counter:
        body = f"rate({body}[$__rate_interval:])"
    if not wanted:
        return body
    constant = "vector(1)"
    for name, value in sorted(wanted.items()):
        # label_replace's replacement expands $1-style references: a literal $ is written $$.
        constant = (
            f'label_replace({constant}, "{name}", {quote_label_value(value.replace("$", "$$"))}, "", "")'
        )
    return f"{body} and on({', '.join(sorted(wanted))}) {constant}"


def series_promql_frame(catalogue: pd.DataFrame, sources: Iterable[Any]) -> pd.DataFrame:
    """``unique_id, source, promql`` for every catalogue series that came from a ``prometheus``
    source in ``sources`` (``foresight.settings.SourceConfig``-like: ``name``, ``kind``,
    ``options``); other series are left out (their actuals come from the store)."""
    require_columns(catalogue, ["unique_id", "source", "metric", "labels"], "series catalogue")
    specs: dict[tuple[str, str], Mapping[str, Any]] = {}
    for source in sources:
        if getattr(source, "kind", None) != "prometheus":
            continue
        for spec in (getattr(source, "options", None) or {}).get("series") or []:
            specs[(source.name, str(spec["name"]))] = spec
    rows = []
    for row in catalogue.drop_duplicates("unique_id", keep="last").itertuples(index=False):
        spec = specs.get((str(row.source), str(row.metric)))
        if spec is None:
            continue
        labels = _labels(row.labels, str(row.unique_id))
        promql = series_selector(str(spec["promql"]), labels, counter=bool(spec.get("counter", False)))
        rows.append({"unique_id": str(row.unique_id), "source": str(row.source), "promql": promql})
    return pd.DataFrame(rows, columns=list(SERIES_PROMQL_COLUMNS))


def _labels(raw: object, unique_id: str) -> dict[str, str]:
    if raw is None or (isinstance(raw, float) and pd.isna(raw)) or raw == "":
        return {}
    try:
        labels = json.loads(str(raw)) if not isinstance(raw, Mapping) else dict(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"series {unique_id!r}: catalogue labels are not JSON: {raw!r}") from exc
    if not isinstance(labels, dict):
        raise ValueError(f"series {unique_id!r}: catalogue labels must be a JSON object, got {raw!r}")
    return {str(k): str(v) for k, v in labels.items()}


# -- storing (I/O) -------------------------------------------------------------------------------
class SeriesPromqlTable:
    """The ``series_promql`` table in the forecast store's database (any SQLAlchemy engine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self) -> None:
        """Create the table when missing, and widen an older ``varchar`` one to ``text`` (idempotent)."""
        metadata.create_all(self.engine, checkfirst=True)
        widen_to_text(self.engine, metadata.tables.values())

    def write(self, frame: pd.DataFrame) -> int:
        """Upsert by ``unique_id`` (delete-then-insert in one transaction); returns rows written.
        Series whose id the store cannot hold (``foresight.series_ids``) are left out, like
        ``ForecastStore.write_series`` does, so one cannot fail the write for the others."""
        require_columns(frame, SERIES_PROMQL_COLUMNS, "series PromQL")
        frame = frame[list(SERIES_PROMQL_COLUMNS)].drop_duplicates("unique_id", keep="last")
        holdable = frame["unique_id"].map(lambda uid: unique_id_problem(str(uid)) is None).astype(bool)
        rows = frame[holdable].to_dict("records")
        if not rows:
            return 0
        ids = [r["unique_id"] for r in rows]
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 1000):
                conn.execute(
                    delete(series_promql).where(series_promql.c.unique_id.in_(ids[start : start + 1000]))
                )
            conn.execute(insert(series_promql), rows)
        return len(rows)

    def read(self) -> pd.DataFrame:
        """Every stored row, sorted by ``unique_id``."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(series_promql).order_by(series_promql.c.unique_id)).all()
        return pd.DataFrame.from_records(rows, columns=list(SERIES_PROMQL_COLUMNS))
