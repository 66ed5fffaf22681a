"""What a source whose data contract failed holds back, and the error that says so.

A source *fails* while the newest batch it sent (the lake's ``batches`` ledger) failed its data
contract. It then holds back only what depends on it:

- its series (the catalogue's ``source`` column) are left out of detection, so nothing is
  scored, replayed or paged from data the contract could not vouch for;
- incidents of every service with such a series stay open: they may still page (the service's
  other series are healthy evidence), but they never resolve while part of their signal is
  missing, because a missing signal is not a recovery. Where one incident spans a *system* (the
  stream builder: a connected part of the call graph, or every service without one), every
  service of that system stays open.

Everything else (other services' pages, events pending from earlier runs, annotations, metrics)
goes out as usual; the run then ends Failed with :class:`SourceContractFailedError`, so the
scheduler, the CLI's exit code and a metric all show it. Pure: frames in, frames out.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from foresight.errors import ForesightError

RESUME_HINT = "fix the source; its pages resume after its next clean batch"


class SourceContractFailedError(ForesightError):
    """One or more sources' newest batch failed its data contract. Raised at the end of a run,
    after everything that did not depend on them was stored or published; ``result`` is what the
    run would have returned, so a caller that carries on (the demo, the pipeline) still has it."""

    def __init__(self, message: str, *, sources: Sequence[str], result: Any = None,
                 hint: str | None = RESUME_HINT) -> None:
        super().__init__(message, hint=hint)
        self.sources = list(sources)
        self.result = result


def newest_verdicts(batches: pd.DataFrame, configured: Collection[str] | None = None) -> dict[str, bool]:
    """Every source in the ledger -> whether its newest batch passed. With ``configured`` only
    those sources: one removed from the settings can never send the clean batch that would clear
    it, so it must not hold anything back forever."""
    if batches.empty:
        return {}
    newest = batches.sort_values("started_at", kind="stable").groupby("source").tail(1)
    verdicts = {str(s): bool(p) for s, p in zip(newest["source"], newest["passed"], strict=True)}
    return {s: p for s, p in sorted(verdicts.items()) if configured is None or s in configured}


@dataclass(frozen=True)
class SourceHold:
    """What this run leaves out because ``sources`` failed their contracts (see the module doc)."""

    sources: tuple[str, ...] = ()
    series: frozenset[str] = frozenset()  # unique_ids of the failed sources' series
    services: frozenset[str] = frozenset()  # services with at least one such series
    kept_open: frozenset[str] = frozenset()  # services whose incidents may not resolve this run
    series_per_source: Mapping[str, int] = field(default_factory=dict)  # every verdict's source -> held series
    failed: Mapping[str, bool] = field(default_factory=dict)  # every source with a verdict -> failed?

    def __bool__(self) -> bool:
        return bool(self.sources)

    def healthy(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (``unique_id, ...``: telemetry or the catalogue) without the held series."""
        if not self.series or frame.empty:
            return frame
        return frame[~frame["unique_id"].astype(str).isin(self.series)]

    def keep_open(self, incidents: pd.DataFrame) -> pd.DataFrame:
        """``incidents`` with ``end`` cleared (open) where the incident's service is in
        ``kept_open``: no resolve, annotation end or closed gauge is built from a partial signal."""
        if not self.kept_open or incidents.empty:
            return incidents
        closing = incidents["service"].astype(str).isin(self.kept_open) & incidents["end"].notna()
        if not closing.any():
            return incidents
        out = incidents.copy()
        out.loc[closing, "end"] = pd.NaT
        return out

    def verdicts(self) -> pd.DataFrame:
        """``source, contract_failed, series_held_back`` for every source with a verdict (the metrics)."""
        names = sorted(self.failed)
        return pd.DataFrame({
            "source": pd.Series(names, dtype=str),
            "contract_failed": pd.Series([int(self.failed[s]) for s in names], dtype="int64"),
            "series_held_back": pd.Series([int(self.series_per_source.get(s, 0)) for s in names], dtype="int64"),
        })

    def error(self, result: Any = None) -> SourceContractFailedError:
        """The run's closing error: which sources, how much they held back."""
        held = f"{len(self.series)} series of {len(self.services)} services left out" if self.series else \
            "none of their series in the lake yet"
        names = ", ".join(self.sources)
        return SourceContractFailedError(
            f"held back source{'s' if len(self.sources) > 1 else ''} {names}: newest batch failed its data "
            f"contract ({held}); everything else was published",
            sources=self.sources, result=result,
        )


def source_hold(
    batches: pd.DataFrame,
    catalogue: pd.DataFrame,
    *,
    configured: Collection[str] | None = None,
    systems: Mapping[str, Hashable] | None = None,
) -> SourceHold:
    """The hold for the newest verdicts in ``batches`` over the series in ``catalogue``
    (``unique_id, source, service``). ``systems`` (service -> system, as the stream builder
    groups them: one incident per system) spreads the services kept open over their systems."""
    verdicts = newest_verdicts(batches, configured)
    failed = sorted(s for s, passed in verdicts.items() if not passed)
    if not failed:
        return SourceHold(failed={s: False for s in verdicts},
                          series_per_source={s: 0 for s in verdicts})
    owned = catalogue.drop_duplicates("unique_id", keep="last")
    held = owned[owned["source"].astype(str).isin(failed)]
    services = frozenset(str(s) for s in held["service"].dropna() if str(s))
    kept_open = services
    if systems:
        touched = {systems[s] for s in services if s in systems}
        kept_open = services | {s for s, system in systems.items() if system in touched}
    per_source = held.groupby(held["source"].astype(str))["unique_id"].nunique()
    return SourceHold(
        sources=tuple(failed),
        series=frozenset(held["unique_id"].astype(str)),
        services=services,
        kept_open=frozenset(kept_open),
        series_per_source={s: int(per_source.get(s, 0)) for s in verdicts},
        failed={s: not passed for s, passed in verdicts.items()},
    )
