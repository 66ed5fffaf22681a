"""A source that reads long-format telemetry (``unique_id, ds, y``) from a CSV or Parquet file.

For backfills, exports from other tools and replaying benchmark data. The file is read as-is:
timestamps and values are not coerced here, so a bad file meets the data contract, which
quarantines what it cannot accept. The catalogue comes from a second file, or is derived from
the ``service/resource/metric`` convention of the series ids with the unit given in options.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from connectors.base import SOURCES, SourceBatch, Window
from foresight.schemas import CATALOGUE_COLUMNS


@SOURCES.register("file")
class FileSource:
    def __init__(self, name: str, path: str, catalogue: str | None = None, unit: str = "count") -> None:
        self.name = name
        self.path = Path(path)
        self.catalogue_path = Path(catalogue) if catalogue else None
        self.unit = unit

    def fetch(self, window: Window | None = None) -> SourceBatch:
        raw = _read(self.path, dtype=str)
        if window is not None and "ds" in raw.columns:
            ds = pd.to_datetime(raw["ds"], utc=True, errors="coerce")
            raw = raw[(ds >= window.start) & (ds < window.end)]
        catalogue = (_read(self.catalogue_path) if self.catalogue_path else self._derived_catalogue(raw))
        return SourceBatch(source=self.name, telemetry=raw.reset_index(drop=True), catalogue=catalogue)

    def _derived_catalogue(self, raw: pd.DataFrame) -> pd.DataFrame:
        ids = pd.Series(raw["unique_id"].dropna().unique() if "unique_id" in raw else [], dtype="string")
        parts = ids.str.split("/", n=2, expand=True).reindex(columns=[0, 1, 2])
        return pd.DataFrame({
            "unique_id": ids, "source": self.name, "metric": parts[2].fillna(ids),
            "labels": [json.dumps({"file": self.path.name})] * len(ids),
            "service": parts[0].where(parts[2].notna(), ""), "resource_id": parts[1].fillna(""),
            "instance_type": "", "unit": self.unit,
        })[list(CATALOGUE_COLUMNS)]


def _read(path: Path, dtype: type | None = None) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"telemetry file not found: {path}")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=dtype, keep_default_na=False, na_values=[""])
