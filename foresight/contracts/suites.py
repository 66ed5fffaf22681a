"""What the telemetry contract demands, and the Great Expectations suites that check it.

The limits (retention, clock skew, sanity bounds per unit), what a source kind adds
(:class:`SourceContract`: sampling grid, series limit), the per-row columns the row suite reads,
and the suites themselves: ``<suite>.rows`` (which rows leave the batch, each expectation naming
its reason in ``meta``) and ``<suite>.batch`` (whether the accepted rows make a usable batch),
run by one GE engine per process.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from foresight import series_ids
from foresight.contracts.reasons import Reason
from foresight.schemas import ID_COL, TARGET_COL, TELEMETRY_COLUMNS, TIME_COL, UNIT_BOUNDS

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult

__all__ = [
    "DATASET",
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_RETENTION",
    "GENERIC_CONTRACT",
    "GRID_OFFSET",
    "ROW_COLUMNS",
    "SANITY_BOUND",
    "UNIT_SANITY_BOUNDS",
    "GxContractEngine",
    "SourceContract",
    "catalogue_units",
    "gx_engine",
    "sanity_bound",
    "warm_up",
    "with_grid_offset",
    "with_series_columns",
]

DATASET = "telemetry"
DEFAULT_RETENTION = pd.Timedelta(days=400)
# Samples up to this far past ``now`` are accepted: collectors' clocks drift a little.
DEFAULT_CLOCK_SKEW = pd.Timedelta(minutes=5)
# Sanity bounds: no real measurement reaches these magnitudes, in any unit, so a value beyond one
# is a sentinel, an overflow or a wrapped counter (1e308, 2**63, 2**64 - 1), not telemetry; let
# through, it overflows the models' sums and squares and the forecast write refuses the NaN/inf.
# Every unit gets one on top of its physical bounds (``schemas.UNIT_BOUNDS``: percent 0..100),
# |y| <= bound, so units that can be negative (temperatures, deltas) keep both signs. 1e15: a
# quadrillion requests per second or seconds (31 million years) is no measurement.
SANITY_BOUND = 1e15
# Except where real values pass 1e15: storage and traffic totals (a 100 Gb/s link moves 1e15
# bytes in a day; clusters hold petabytes). 1e18 still catches a wrapped 64-bit counter.
UNIT_SANITY_BOUNDS: dict[str, float] = {"bytes": 1e18, "count": 1e18}


def sanity_bound(unit: str | None) -> float:
    """The largest |y| the contract accepts for ``unit`` (unknown units and none: ``SANITY_BOUND``)."""
    return UNIT_SANITY_BOUNDS.get(unit, SANITY_BOUND) if isinstance(unit, str) else SANITY_BOUND


@dataclass(frozen=True)
class SourceContract:
    """What one source kind adds to the telemetry suites (each kind gets its own GE suites).

    ``grid``: the source samples on an epoch-aligned grid (a Prometheus range query's step, a
    CloudWatch period); a sample off it means a misconfigured or misbehaving source, and is
    quarantined. ``max_series``: the most distinct series one batch may carry; more fails the
    batch, the usual sign of a label-cardinality explosion (a pod or request id in a label).
    """

    kind: str = "telemetry"
    grid: pd.Timedelta | None = None
    max_series: int | None = None

    def __post_init__(self) -> None:
        if self.grid is not None and self.grid <= pd.Timedelta(0):
            raise ValueError(f"source contract {self.kind!r}: grid must be positive, got {self.grid}")
        if self.max_series is not None and self.max_series < 1:
            raise ValueError(f"source contract {self.kind!r}: max_series must be >= 1, got {self.max_series}")

    @property
    def suite_name(self) -> str:
        return DATASET if self.kind == DATASET else f"{DATASET}.{self.kind}"


GENERIC_CONTRACT = SourceContract()


# -- the per-row columns the row suite reads ---------------------------------------------------
# What the row suite validates: the parsed columns plus per-series bounds and id facts (and the
# grid offset when the source has a sampling grid).
ROW_COLUMNS = (ID_COL, TIME_COL, TARGET_COL, "y_min", "y_max", "y_sane_min", "y_sane_max", "id_bytes",
               "id_controls")
GRID_OFFSET = "ds_grid_offset"


def catalogue_units(catalogue: pd.DataFrame | None) -> pd.Series | None:
    """``unique_id -> unit`` (unit may be null) from the catalogue, or None without a catalogue."""
    if catalogue is None:
        return None
    if ID_COL not in catalogue.columns:
        raise ValueError(f"catalogue: missing column 'unique_id'; got {list(catalogue.columns)}")
    units = catalogue["unit"] if "unit" in catalogue.columns else pd.Series(None, index=catalogue.index)
    table = pd.Series(units.to_numpy(dtype=object), index=catalogue[ID_COL].astype(str).to_numpy())
    return table[~table.index.duplicated(keep="first")]


def with_series_columns(parsed: pd.DataFrame, units: pd.Series | None) -> pd.DataFrame:
    """Add the per-row columns the row expectations read, each worked out once per series:
    ``unit``, ``y_min`` / ``y_max`` (physical bounds, open as -inf/inf), ``y_sane_min`` /
    ``y_sane_max`` (the sanity bounds, ±``sanity_bound(unit)``), ``id_bytes`` (UTF-8 length)
    and ``id_controls`` (1: has control characters)."""
    frame = parsed.copy()
    codes, distinct = pd.factorize(frame[ID_COL])  # look each series up once, not per row
    unit_by_id = units.to_dict() if units is not None else {}
    unit_of = pd.Series(distinct, dtype=object).map(unit_by_id).astype(object)
    lower = unit_of.map({u: (-np.inf if lo is None else lo) for u, (lo, _) in UNIT_BOUNDS.items()})
    upper = unit_of.map({u: (np.inf if hi is None else hi) for u, (_, hi) in UNIT_BOUNDS.items()})
    sanity = unit_of.map(sanity_bound, na_action="ignore").fillna(SANITY_BOUND)
    ids = [str(uid) for uid in distinct]  # valid Unicode: parsing nulled every other id
    id_bytes = [len(uid.encode("utf-8")) for uid in ids]
    id_controls = [float(series_ids.has_control_characters(uid)) for uid in ids]

    def per_row(per_series: Any, no_series: Any, dtype: Any) -> np.ndarray:
        # One trailing entry for "no series" (code -1 indexes it): a row whose id did not parse.
        return np.append(np.asarray(per_series, dtype=dtype), np.array([no_series], dtype=dtype))[codes]

    frame["unit"] = per_row(unit_of.to_numpy(dtype=object), None, object)
    frame["y_min"] = per_row(lower.to_numpy(dtype="float64", na_value=-np.inf), -np.inf, "float64")
    frame["y_max"] = per_row(upper.to_numpy(dtype="float64", na_value=np.inf), np.inf, "float64")
    frame["y_sane_max"] = per_row(sanity.to_numpy(dtype="float64"), np.inf, "float64")
    frame["y_sane_min"] = -frame["y_sane_max"]
    frame["id_bytes"] = per_row(id_bytes, np.nan, "float64")
    frame["id_controls"] = per_row(id_controls, np.nan, "float64")
    return frame


def with_grid_offset(frame: pd.DataFrame, grid: pd.Timedelta | None) -> pd.DataFrame:
    """Add ``ds_grid_offset`` (microseconds past the last grid instant; null where ds is null)."""
    if grid is None:
        return frame
    ds = frame[TIME_COL]
    micros = ds.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]").view("int64")
    offset = (micros % int(grid / pd.Timedelta(microseconds=1))).astype("float64")
    frame[GRID_OFFSET] = np.where(ds.notna().to_numpy(), offset, np.nan)
    return frame


# -- Great Expectations ------------------------------------------------------------------------
class GxContractEngine:
    """The Great Expectations context, data asset and telemetry suites, built once per process.

    Importing GE and building a context costs seconds, so :func:`gx_engine` caches one engine;
    suites use ``$PARAMETER`` placeholders (``now``-relative limits, catalogue ids) so they are
    defined once and each validation passes its own values. Validations are serialised by a lock.
    """

    def __init__(self) -> None:
        try:
            import great_expectations as gx  # lazy: Great Expectations takes ~5 s
            from great_expectations.data_context.types.base import (  # lazy: Great Expectations takes ~5 s
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise ImportError(
                "data contracts need great_expectations>=1.0: pip install great_expectations"
            ) from exc
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            progress_bars=ProgressBarsConfig(globally=False),
            analytics_enabled=False,
        )
        self._context = gx.get_context(mode="ephemeral", project_config=config)
        asset = self._context.data_sources.add_pandas("foresight").add_dataframe_asset(DATASET)
        self._batch_definition = asset.add_batch_definition_whole_dataframe("whole-batch")
        self._gx = gx
        self._suites: dict[tuple[str, SourceContract, bool], Any] = {}
        self._lock = threading.Lock()

    def validate_rows(
        self, frame: pd.DataFrame, params: dict[str, Any], *, with_catalogue: bool,
        contract: SourceContract = GENERIC_CONTRACT,
    ) -> ExpectationSuiteValidationResult:
        """Row suite on the parsed frame, listing every failing row's index (COMPLETE)."""
        suite = self._suite("rows", contract, with_catalogue)
        return self._validate(frame, suite, params)

    def validate_batch(
        self, frame: pd.DataFrame, params: dict[str, Any], *, contract: SourceContract = GENERIC_CONTRACT
    ) -> ExpectationSuiteValidationResult:
        """Batch suite on the accepted rows."""
        return self._validate(frame, self._suite("batch", contract, False), params)

    def _suite(self, stage: str, contract: SourceContract, with_catalogue: bool) -> Any:
        """Each (stage, source contract) suite is built once and reused."""
        key = (stage, contract, with_catalogue)
        with self._lock:
            if key not in self._suites:
                self._suites[key] = (
                    _rows_suite(self._gx, with_catalogue=with_catalogue, contract=contract)
                    if stage == "rows" else _batch_suite(self._gx, contract=contract)
                )
            return self._suites[key]

    def _validate(
        self, frame: pd.DataFrame, suite: Any, params: dict[str, Any]
    ) -> ExpectationSuiteValidationResult:
        with self._lock:
            batch = self._batch_definition.get_batch(batch_parameters={"dataframe": frame})
            return batch.validate(
                suite,
                result_format={"result_format": "COMPLETE", "partial_unexpected_count": 0},
                expectation_parameters=params,
            )


def _rows_suite(gx: Any, *, with_catalogue: bool, contract: SourceContract = GENERIC_CONTRACT) -> Any:
    """Row-level expectations in reason-precedence order; ``meta['reason']`` names the quarantine reason."""
    gxe = gx.expectations
    parse = {"reason": "parse"}
    specs: list[tuple[Any, dict[str, str]]] = [
        (gxe.ExpectColumnValuesToNotBeNull(column=ID_COL), parse),
        (gxe.ExpectColumnValuesToNotBeNull(column=TIME_COL), parse),
        (gxe.ExpectColumnValuesToNotBeNull(column=TARGET_COL), parse),
        # Ids the sinks cannot hold: every row of the series goes, the other series stay.
        (
            gxe.ExpectColumnValuesToBeBetween(column="id_bytes", max_value=series_ids.MAX_UNIQUE_ID_BYTES),
            {"reason": Reason.ID_TOO_LONG},
        ),
        (
            gxe.ExpectColumnValuesToBeBetween(column="id_controls", max_value=0),
            {"reason": Reason.ID_CONTROL_CHARACTERS},
        ),
    ]
    if with_catalogue:
        specs.append(
            (
                gxe.ExpectColumnValuesToBeInSet(column=ID_COL, value_set={"$PARAMETER": "known_ids"}),
                {"reason": Reason.NOT_IN_CATALOGUE},
            )
        )
    specs += [
        (
            gxe.ExpectColumnValuesToBeBetween(column=TIME_COL, max_value={"$PARAMETER": "latest"}),
            {"reason": Reason.DS_FUTURE},
        ),
        (
            gxe.ExpectColumnValuesToBeBetween(column=TIME_COL, min_value={"$PARAMETER": "earliest"}),
            {"reason": Reason.DS_TOO_OLD},
        ),
        (
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=TARGET_COL, column_B="y_min", or_equal=True, ignore_row_if="either_value_is_missing"
            ),
            {"reason": Reason.Y_BELOW},
        ),
        (
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="y_max", column_B=TARGET_COL, or_equal=True, ignore_row_if="either_value_is_missing"
            ),
            {"reason": Reason.Y_ABOVE},
        ),
        # After the physical bounds, so a percent of 1e300 is "above 100", the tighter reason.
        (
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=TARGET_COL, column_B="y_sane_min", or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
            {"reason": Reason.Y_BEYOND_SANITY},
        ),
        (
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="y_sane_max", column_B=TARGET_COL, or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
            {"reason": Reason.Y_BEYOND_SANITY},
        ),
    ]
    if contract.grid is not None:
        specs.append(
            (
                gxe.ExpectColumnValuesToBeBetween(column=GRID_OFFSET, min_value=0, max_value=0),
                {"reason": Reason.DS_OFF_GRID.format(grid=_duration(contract.grid))},
            )
        )
    specs.append(
        (
            gxe.ExpectCompoundColumnsToBeUnique(column_list=[ID_COL, TIME_COL]),
            {"reason": Reason.CONFLICTING_DUPLICATE},
        )
    )
    name = f"{contract.suite_name}.rows" + ("+catalogue" if with_catalogue else "")
    return _suite(gx, name, specs)


def _batch_suite(gx: Any, *, contract: SourceContract = GENERIC_CONTRACT) -> Any:
    """Batch-level expectations on the accepted rows; ``meta['check']`` names the CheckResult."""
    gxe = gx.expectations
    specs = [
        (
            gxe.ExpectTableColumnsToMatchSet(column_set=list(TELEMETRY_COLUMNS), exact_match=True),
            {"check": "columns"},
        ),
        (gxe.ExpectTableRowCountToBeBetween(min_value=1), {"check": "row_count"}),
        (
            gxe.ExpectColumnMaxToBeBetween(column=TIME_COL, min_value={"$PARAMETER": "fresh_after"}),
            {"check": "freshness"},
        ),
        (gxe.ExpectCompoundColumnsToBeUnique(column_list=[ID_COL, TIME_COL]), {"check": "unique_keys"}),
    ]
    if contract.max_series is not None:
        specs.append(
            (
                gxe.ExpectColumnUniqueValueCountToBeBetween(column=ID_COL, max_value=contract.max_series),
                {"check": "series_count"},
            )
        )
    return _suite(gx, f"{contract.suite_name}.batch", specs)


def _duration(delta: pd.Timedelta) -> str:
    """A short human duration for reasons: 60s, 5min, 1h."""
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}min"
    return f"{delta.total_seconds():g}s"


def _suite(gx: Any, name: str, specs: list[tuple[Any, dict[str, str]]]) -> Any:
    suite = gx.ExpectationSuite(name=name)
    for order, (expectation, meta) in enumerate(specs):
        expectation.meta = {**meta, "order": order}
        suite.add_expectation(expectation)
    return suite


def warm_up() -> None:
    """Import GE and build its context now, so the first batch checked does not pay for it."""
    gx_engine()


@functools.cache
def gx_engine() -> GxContractEngine:
    """The process's one GE engine, built on first use (never at import time)."""
    return GxContractEngine()
