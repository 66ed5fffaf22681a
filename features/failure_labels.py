"""Labels of "incident soon" for the failure predictor's feature rows, from the incident history.

:func:`failure_labels` marks each ``service, ds`` row of :func:`features.windows.service_features`
followed by an incident start within the horizon, from the incident history less the rows
flagged ``false_positive`` (:func:`confirmed_incidents`); with ``as_of`` only from what was known
at that moment (for rolling-origin evaluation).

Pure: frames in, frames out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.windows import KEY_COLUMNS
from foresight.schemas import TIME_COL, UTC_DTYPE, require_columns
from foresight.timeutil import utc_series

EXCLUDED, NEGATIVE, POSITIVE = -1, 0, 1
# Incident-history flag for a page that turned out to be no incident (PagerDuty / labels file).
FALSE_POSITIVE_COL = "false_positive"


def confirmed_incidents(incidents: pd.DataFrame) -> pd.DataFrame:
    """The incident history less rows flagged ``false_positive`` (a page that was no incident).

    The flag is optional; missing values count as confirmed. Accepts booleans, 0/1 and the
    strings ``true`` / ``false`` / ``yes`` / ``no`` (a labels file read as text); anything else
    raises, since guessing would turn noise into training positives.
    """
    if FALSE_POSITIVE_COL not in incidents.columns:
        return incidents
    flag = _truthy(incidents[FALSE_POSITIVE_COL], f"incidents.{FALSE_POSITIVE_COL}")
    return incidents[~flag]


def _truthy(values: pd.Series, what: str) -> np.ndarray:
    """A flag column as booleans (NaN = False); unknown spellings raise naming a few."""
    if pd.api.types.is_bool_dtype(values):
        return values.fillna(False).to_numpy(dtype=bool)
    text = values.astype("string").str.strip().str.lower()
    known = {
        "true": True,
        "1": True,
        "yes": True,
        "y": True,
        "t": True,
        "false": False,
        "0": False,
        "no": False,
        "n": False,
        "f": False,
        "": False,
        "1.0": True,
        "0.0": False,
    }
    mapped = text.map(known)
    bad = text.notna() & mapped.isna()
    if bad.any():
        raise ValueError(f"{what}: expected true/false, got {sorted(set(text[bad]))[:5]}")
    return mapped.fillna(False).to_numpy(dtype=bool)


def failure_labels(
    features: pd.DataFrame,
    incidents: pd.DataFrame,
    horizon: str | pd.Timedelta = "60min",
    *,
    as_of: pd.Timestamp | None = None,
) -> pd.Series:
    """Per feature row: 1 if an incident of its service starts within ``(ds, ds + horizon]``, else 0;
    -1 while an incident of the service is ongoing (``start <= ds < end``; an open incident, with
    no end, is ongoing from its start on).

    When the history records ``precursor_start``, rows from it until ``start - horizon`` are -1
    too (an incident is coming, just beyond the horizon). Rows labelled -1 describe a failure
    already happening or ambiguous lead-up, not its immediate precursors: the failure
    predictor drops them from training (``FailurePredictor.fit``) so it learns to warn early
    instead of to recognise outages. Ongoing wins over an upcoming start. Aligned with
    ``features.index``; named ``label``.

    Incidents flagged ``false_positive`` are no incidents (:func:`confirmed_incidents`). With
    ``as_of``, labels use only what was known then: incidents starting later are unknown, one
    still going on has no end yet, and rows whose horizon reaches past ``as_of`` (or lie after
    it) are -1, since whether an incident followed them was not yet known.
    """
    require_columns(features, list(KEY_COLUMNS), "features")
    require_columns(incidents, ["service", "start", "end"], "incidents")
    horizon_td = pd.Timedelta(horizon)
    if horizon_td <= pd.Timedelta(0):
        raise ValueError(f"horizon must be positive, got {horizon!r}")
    incidents = confirmed_incidents(incidents)
    if as_of is not None:
        labels = failure_labels(features, _known_at(incidents, as_of), horizon_td)
        undecided = (features[TIME_COL] > as_of - horizon_td).to_numpy() & (labels.to_numpy() == NEGATIVE)
        return labels.mask(undecided | (features[TIME_COL] > as_of).to_numpy(), EXCLUDED)
    labels = np.zeros(len(features), dtype=np.int64)
    ds_all = features[TIME_COL].astype(UTC_DTYPE).to_numpy(dtype="datetime64[us]")
    services = features["service"].to_numpy(dtype=object)
    starts_all = utc_series(incidents["start"], "incidents.start", allow_nat=True)
    ends_all = utc_series(incidents["end"], "incidents.end", allow_nat=True)
    for service, group in incidents.groupby("service", sort=False):
        rows = np.flatnonzero(services == service)
        if rows.size == 0:
            continue
        ds = ds_all[rows]
        order = np.argsort(starts_all[group.index].to_numpy(dtype="datetime64[us]"))
        starts = starts_all[group.index].to_numpy(dtype="datetime64[us]")[order]
        ends = ends_all[group.index].to_numpy(dtype="datetime64[us]")[order]
        # An incident starts in (ds, ds + horizon] when the count of starts <= ds + h exceeds that <= ds.
        upcoming = np.searchsorted(starts, ds + horizon_td.to_timedelta64(), "right") > np.searchsorted(
            starts, ds, "right"
        )
        ongoing = _ongoing(ds, starts, ends)
        if "precursor_start" in incidents.columns:
            # A known precursor beyond the horizon (a leak 6 h before its OOM) is neither "fine"
            # nor "failing within the horizon": leave it out of training rather than call it 0.
            pre = utc_series(incidents["precursor_start"], "incidents.precursor_start", allow_nat=True)
            pre = pre[group.index].to_numpy(dtype="datetime64[us]")[order]
            pre_order = np.argsort(pre)
            ongoing |= (
                _ongoing(ds, pre[pre_order], (starts - horizon_td.to_timedelta64())[pre_order]) & ~upcoming
            )
        labels[rows] = np.where(ongoing, EXCLUDED, np.where(upcoming, POSITIVE, NEGATIVE))
    return pd.Series(labels, index=features.index, name="label")


def _known_at(incidents: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The incident history as it stood at ``as_of``: later starts dropped, later ends still open."""
    as_of = pd.Timestamp(as_of)
    if as_of.tzinfo is None:
        raise ValueError(f"as_of must be timezone-aware (UTC), got {as_of}")
    start = pd.to_datetime(incidents["start"])
    known = incidents[(start <= as_of).to_numpy()].copy()
    end = pd.to_datetime(known["end"])
    known["end"] = end.where(end <= as_of)  # NaT: still open at as_of
    return known


def _ongoing(ds: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Is any interval ``[start, end)`` (sorted by start; NaT end = open) covering each ds?"""
    open_end = np.datetime64("9999-12-31", "us")
    ends = np.where(np.isnat(ends), open_end, ends)
    reach = np.maximum.accumulate(ends)  # furthest end among incidents started so far
    last = np.searchsorted(starts, ds, "right") - 1
    return (last >= 0) & (reach[np.clip(last, 0, None)] > ds)
