"""The response audit log in the lake (dataset ``response_audit``): append-only and idempotent.

:meth:`ResponseAuditStore.append` inserts only rows whose ``(decision_id, step)`` the lake does not
hold yet, under the dataset's writer lock, and returns the ones it inserted: a row is never
rewritten, and two processes appending the same step (the detect flow and the stream processor on
one incident, or a re-run) insert it once. That makes the ``planned`` row a claim: whoever inserts
it owns the decision.
"""

from __future__ import annotations

import pandas as pd

from foresight.lake import Lake

DATASET = "response_audit"
KEYS = ["decision_id", "step"]


class ResponseAuditStore:
    """Reads and appends the audit rows of one lake."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def read(self) -> pd.DataFrame:
        """Every row, oldest first (an empty frame with the key columns when there are none)."""
        return self.lake.read(DATASET)

    def append(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Insert the rows whose keys are new; returns those (empty: all were there already)."""
        if rows.empty:
            return rows
        if rows.duplicated(KEYS).any():
            raise ValueError(f"response audit rows repeat keys {KEYS}")
        with self.lake.lock(DATASET):
            existing = self.lake.read(DATASET, columns=KEYS) if self.lake.exists(DATASET) else pd.DataFrame()
            if len(existing):
                held = set(zip(existing["decision_id"], existing["step"], strict=True))
                fresh = [(d, s) not in held for d, s in zip(rows["decision_id"], rows["step"], strict=True)]
                rows = rows[fresh]
            if len(rows):
                self.lake.upsert(DATASET, rows)
        return rows.reset_index(drop=True)
