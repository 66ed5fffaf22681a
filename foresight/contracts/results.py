"""What a contract run decided about one batch, and why.

Which rows are quarantined and with what reason (read from the row suite's failed expectations),
the batch checks (from the batch suite, plus pandas checks of the quarantined share and of the
row accounting), the clean and quarantined frames, and the verdict: :class:`ContractResult`,
:func:`require_passed` / :class:`ContractViolation`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from foresight.contracts.parsing import decode_or_none, raw_column
from foresight.contracts.reasons import Reason
from foresight.contracts.suites import DATASET, SANITY_BOUND
from foresight.quarantine import QUARANTINE_COLUMNS
from foresight.schemas import TELEMETRY_COLUMNS, UTC_DTYPE, empty_telemetry, validate_telemetry

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult

__all__ = [
    "CheckResult",
    "ContractResult",
    "ContractViolation",
    "accounting_check",
    "canonical_clean",
    "catalogue_check",
    "checks_from_batch_suite",
    "quarantine_frame",
    "quarantine_ratio_check",
    "reasons_from_rows_suite",
    "require_passed",
    "schema_check",
]


@dataclass
class CheckResult:
    """One batch-level check: its stable name, whether it passed, and what it saw."""

    name: str
    passed: bool
    detail: str


@dataclass
class ContractResult:
    """What a contract run decided about one batch.

    ``clean`` is always returned so a failed batch can be inspected, but when ``passed`` is
    False it must not be used for training or forecasting: call :func:`require_passed` first.
    Row accounting: ``len(clean) + len(quarantined) + collapsed_duplicates == n_raw``.
    """

    dataset: str
    source: str
    batch_id: str
    passed: bool
    clean: pd.DataFrame
    quarantined: pd.DataFrame
    checks: list[CheckResult]
    n_raw: int = 0
    collapsed_duplicates: int = 0
    checked_at: pd.Timestamp | None = None
    suite: str = DATASET

    @property
    def reasons(self) -> dict[str, int]:
        """Quarantined row count per reason, most frequent first."""
        if self.quarantined.empty:
            return {}
        counts = self.quarantined["reason"].value_counts(sort=True)
        return {str(k): int(v) for k, v in counts.items()}

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def summary_markdown(self) -> str:
        """A human summary for a Prefect artifact: verdict, counts, reasons, batch checks."""
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"### Data contract `{self.dataset}` from `{self.source}`: **{verdict}**",
            "",
            f"Batch `{self.batch_id}`, suites `{self.suite}.rows` and `{self.suite}.batch`"
            + (f", checked at {self.checked_at.isoformat()}" if self.checked_at is not None else ""),
            "",
            "| rows received | accepted | quarantined | exact duplicates collapsed |",
            "|---:|---:|---:|---:|",
            f"| {self.n_raw} | {len(self.clean)} | {len(self.quarantined)} | {self.collapsed_duplicates} |",
            "",
        ]
        if self.reasons:
            lines += ["**Why rows were quarantined**", "", "| reason | rows |", "|---|---:|"]
            lines += [f"| {_md(reason)} | {count} |" for reason, count in self.reasons.items()]
            lines.append("")
        lines += ["**Batch checks**", "", "| check | result | detail |", "|---|---|---|"]
        lines += [f"| {c.name} | {'pass' if c.passed else 'FAIL'} | {_md(c.detail)} |" for c in self.checks]
        if not self.passed:
            lines += ["", "This batch must not be used for training: its clean rows are for inspection only."]
        return "\n".join(lines) + "\n"


class ContractViolation(RuntimeError):
    """A batch failed its data contract; ``.result`` holds the full :class:`ContractResult`."""

    def __init__(self, result: ContractResult) -> None:
        self.result = result
        failed = "; ".join(f"{c.name} ({c.detail})" for c in result.failed_checks) or "no check recorded"
        super().__init__(
            f"{result.dataset} batch {result.batch_id} from source {result.source!r} "
            f"failed its contract: {failed}"
        )


def require_passed(result: ContractResult) -> None:
    """Raise :class:`ContractViolation` naming the failed checks unless the batch passed."""
    if not result.passed:
        raise ContractViolation(result)


def _md(text: str) -> str:
    """Make text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


# -- which rows leave the batch, and why -------------------------------------------------------
def _config(outcome: Any) -> Any:
    """The expectation configuration behind one GE outcome (always present for suite runs)."""
    if outcome.expectation_config is None:
        raise RuntimeError("Great Expectations returned an outcome without its expectation configuration")
    return outcome.expectation_config


def _in_suite_order(result: ExpectationSuiteValidationResult) -> list[Any]:
    """GE outcomes in the order the suite declared them (reasons are assigned first come)."""
    return sorted(result.results, key=lambda r: _config(r).meta["order"])


def reasons_from_rows_suite(result: ExpectationSuiteValidationResult, frame: pd.DataFrame) -> pd.Series:
    """Per-row reason (null = accepted) from the failed expectations' unexpected indexes."""
    reasons = pd.Series(None, index=frame.index, dtype=object)
    for outcome in _in_suite_order(result):
        config = _config(outcome)
        if outcome.exception_info and outcome.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"Great Expectations could not evaluate {config.type}: "
                f"{outcome.exception_info.get('exception_message')}"
            )
        if outcome.success:
            continue
        rows = pd.Index(outcome.result.get("unexpected_index_list") or [])
        rows = rows[reasons.loc[rows].isna().to_numpy()]
        if rows.empty:  # every flagged row already has an earlier reason
            continue
        reasons.loc[rows] = _reason_text(config.meta["reason"], frame.loc[rows])
    # The not-null expectations flag every parse failure; this only guards against a GE change.
    return reasons.fillna(frame["parse_reason"])


def _reason_text(template: str, rows: pd.DataFrame) -> pd.Series | str:
    """The reason for the flagged rows: fixed text, the parse reason, or a per-unit bounds text."""
    if template == "parse":
        return rows["parse_reason"]
    if template in (Reason.Y_ABOVE, Reason.Y_BELOW):
        bound = rows["y_max"] if template == Reason.Y_ABOVE else rows["y_min"]
        word = "above" if template == Reason.Y_ABOVE else "below"
        return "y: " + word + " " + bound.map("{:g}".format) + " for unit " + rows["unit"].astype(str)
    if template == Reason.Y_BEYOND_SANITY:
        units = rows["unit"].astype(object).where(rows["unit"].notna(), "(none)").astype(str)
        return "y: beyond the sanity bound ±" + rows["y_sane_max"].map("{:g}".format) + " for unit " + units
    return template


# -- batch checks ------------------------------------------------------------------------------
def schema_check(raw: pd.DataFrame, missing: list[str]) -> CheckResult:
    if missing:
        return CheckResult(
            "schema", False, f"missing required column(s) {missing}; got {[str(c) for c in raw.columns]}"
        )
    extra = [str(c) for c in raw.columns if c not in TELEMETRY_COLUMNS]
    ignored = f"; ignored extra {extra}" if extra else ""
    return CheckResult("schema", True, f"unique_id, ds, y present{ignored}")


def checks_from_batch_suite(
    result: ExpectationSuiteValidationResult, now: pd.Timestamp, max_staleness: pd.Timedelta
) -> list[CheckResult]:
    """Turn the GE batch suite's outcomes into named checks with readable details."""
    checks = []
    for outcome in _in_suite_order(result):
        name = _config(outcome).meta["check"]
        observed = outcome.result.get("observed_value")
        if name == "freshness":
            detail = (
                f"newest accepted sample {pd.Timestamp(observed).isoformat()}; must be at or after "
                f"{(now - max_staleness).isoformat()} (now - {max_staleness})"
                if observed is not None
                else "no accepted samples, so nothing is fresh"
            )
        elif name == "row_count":
            detail = f"{observed} accepted row(s); at least 1 required"
        elif name == "unique_keys":
            detail = f"{outcome.result.get('unexpected_count', 0)} accepted row(s) repeat (unique_id, ds)"
        elif name == "series_count":
            limit = _config(outcome).kwargs.get("max_value")
            detail = f"{observed} distinct series in the batch; at most {limit} allowed (label churn?)"
        else:
            detail = f"accepted columns {observed}"
        checks.append(CheckResult(name, bool(outcome.success), detail))
    return checks


def quarantine_ratio_check(n_quarantined: int, n_raw: int, limit: float, *, rejected: int = 0) -> CheckResult:
    share = n_quarantined / n_raw if n_raw else 0.0
    unread = f", {rejected} of them unreadable at the source" if rejected else ""
    return CheckResult(
        "quarantine_ratio",
        share <= limit,
        f"{n_quarantined} of {n_raw} row(s) quarantined{unread} ({share:.2%}); limit {limit:.2%}",
    )


def accounting_check(n_raw: int, n_clean: int, n_quarantined: int, collapsed: int) -> CheckResult:
    """Nothing silently dropped: every received row is accepted, quarantined or a counted duplicate."""
    total = n_clean + n_quarantined + collapsed
    return CheckResult(
        "rows_accounted",
        total == n_raw,
        f"{n_clean} accepted + {n_quarantined} quarantined + {collapsed} duplicate(s) = {total} of {n_raw}",
    )


def catalogue_check(units: pd.Series | None) -> CheckResult:
    if units is None:
        return CheckResult(
            "catalogue",
            True,
            f"no catalogue given: series membership and unit bounds not checked (|y| <= {SANITY_BOUND:g} is)",
        )
    return CheckResult("catalogue", True, f"{len(units)} catalogued series; unit bounds from the catalogue")


# -- output frames -----------------------------------------------------------------------------
def canonical_clean(accepted: pd.DataFrame) -> pd.DataFrame:
    """Accepted rows in the canonical telemetry shape, checked by ``schemas.validate_telemetry``."""
    if accepted.empty:
        return empty_telemetry()
    return validate_telemetry(accepted[list(TELEMETRY_COLUMNS)])


def quarantine_frame(
    raw: pd.DataFrame, reasons: pd.Series, *, source: str, batch_id: str, now: pd.Timestamp
) -> pd.DataFrame:
    """Rejected rows with their original values as text, so nothing about them is lost."""
    positions = reasons.index.to_numpy(dtype="int64")
    out = pd.DataFrame(index=pd.RangeIndex(len(positions)))
    for name in TELEMETRY_COLUMNS:
        if name in raw.columns:
            out[name] = _render_text(raw_column(raw, name).iloc[positions]).to_numpy()
        else:
            out[name] = pd.Series(pd.NA, index=out.index, dtype="string")
    out["reason"] = pd.Series(reasons.to_numpy(), dtype="string")
    out["source"] = pd.Series(source, index=out.index, dtype="string")
    out["batch_id"] = pd.Series(batch_id, index=out.index, dtype="string")
    out["quarantined_at"] = pd.Series(now, index=out.index, dtype=UTC_DTYPE)
    out["row"] = positions
    return out[list(QUARANTINE_COLUMNS)].astype({c: "string" for c in TELEMETRY_COLUMNS})


def _render_text(values: pd.Series) -> pd.Series:
    """Original values as text (bytes as their repr, invalid Unicode escaped); nulls stay null."""
    if values.dtype != object:
        text = values.astype(str).astype(object)
        text[values.isna().to_numpy()] = None
        return text
    return values.map(_text_of, na_action="ignore")


def _text_of(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        decoded = decode_or_none(bytes(value))
        return decoded if decoded is not None else repr(bytes(value))
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)
