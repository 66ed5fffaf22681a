"""The stable reason strings a quarantined telemetry row can carry.

One vocabulary for every stage: parsing gives the parse reasons, each row expectation carries
its reason in ``meta`` (:mod:`foresight.contracts.suites`), and the quarantine stores them
(:mod:`foresight.contracts.results`). People and tests match on these texts.
"""

from __future__ import annotations

from foresight import series_ids

__all__ = ["Reason"]


class Reason:
    """The stable reason strings a quarantined row can carry (bounds reasons add the unit)."""

    SCHEMA = "schema: missing column(s) {columns}"
    ID_MISSING = "unique_id: missing"
    ID_NOT_TEXT = "unique_id: not text"
    ID_NOT_UTF8 = series_ids.ID_NOT_UTF8
    ID_TOO_LONG = series_ids.ID_TOO_LONG
    ID_CONTROL_CHARACTERS = series_ids.ID_CONTROL_CHARACTERS
    DS_MISSING = "ds: missing"
    DS_NOT_TIMESTAMP = "ds: not a timestamp"
    DS_NAIVE = "ds: naive timestamp (no timezone)"
    Y_NOT_NUMERIC = "y: not numeric"
    Y_NOT_FINITE = "y: not finite (NaN/inf)"
    NOT_IN_CATALOGUE = "unique_id: not in catalogue"
    DS_FUTURE = "ds: in the future"
    DS_TOO_OLD = "ds: older than retention"
    Y_ABOVE = "y: above {bound:g} for unit {unit}"
    Y_BELOW = "y: below {bound:g} for unit {unit}"
    Y_BEYOND_SANITY = "y: beyond the sanity bound ±{bound:g} for unit {unit}"
    CONFLICTING_DUPLICATE = "duplicate (unique_id, ds) with different values"
    DS_OFF_GRID = "ds: not on the source's {grid} sampling grid"
