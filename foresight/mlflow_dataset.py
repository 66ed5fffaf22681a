"""A :class:`~foresight.lake_snapshot.LakeSnapshot` as an MLflow dataset, for ``log_input``.

MLflow's pandas dataset would need the frames themselves and hashes only their first rows; this
one carries the snapshot's own content digest and a profile with the time range and sources,
and points its source at the lake. Imports MLflow at the top: import this module only where a
run is being logged (:mod:`foresight.mlflow_runs` does, on first use).
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset import Dataset
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.exceptions import MlflowException

from foresight.lake_snapshot import LakeSnapshot

TRAINING_CONTEXT = "training"  # MLflow's input tag ``mlflow.data.context``


class LakeSnapshotDataset(Dataset):
    """The lake data of one train run: named for the family, the snapshot's digest and profile."""

    def __init__(self, snapshot: LakeSnapshot, name: str) -> None:
        self.snapshot = snapshot
        super().__init__(source=lake_source(snapshot.location), name=name, digest=snapshot.digest)

    def _compute_digest(self) -> str:
        return self.snapshot.digest

    @property
    def profile(self) -> dict[str, Any]:
        return self.snapshot.profile()

    @property
    def schema(self) -> None:
        return None  # several lake datasets, each with its own columns (docs/data-model.md)

    def to_dict(self) -> dict[str, str]:
        return {**super().to_dict(), "profile": json.dumps(self.profile)}


def lake_source(location: str) -> DatasetSource:
    """MLflow's source for a lake URL (a local folder, ``s3://...``); an unknown scheme is kept
    as text in a code source rather than failing the run."""
    with warnings.catch_warnings():  # a local path matches two equivalent source kinds: either will do
        warnings.simplefilter("ignore", UserWarning)
        try:
            return resolve_dataset_source(location)
        except MlflowException:
            return CodeDatasetSource({"lake": location})


def snapshot_dataset(snapshot: LakeSnapshot, family: str) -> LakeSnapshotDataset:
    """The dataset a ``family``'s train run logs: ``foresight-lake-<family>``."""
    return LakeSnapshotDataset(snapshot, name=f"foresight-lake-{family}")
