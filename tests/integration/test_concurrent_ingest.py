"""Two `foresight run ingest` processes at once against one FORESIGHT_HOME keep every row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from foresight.lake import Lake

pytestmark = pytest.mark.integration

FORESIGHT = str(Path(sys.executable).with_name("foresight"))
SOURCES, SERIES, STEPS = 3, 4, 288  # per process: three file sources, each a day of four series at 5 min
SEEDED = 1000  # series already in the lake over the same day: each upsert then rewrites a large partition


def _times() -> pd.DatetimeIndex:
    return pd.date_range(end=pd.Timestamp.now(tz="UTC").floor("5min"), periods=STEPS, freq="5min")


def _config(directory: Path, writer: int) -> Path:
    """A settings file with file sources only this writer reads; their series ids name writer and source."""
    ds = _times().strftime("%Y-%m-%dT%H:%M:%SZ")
    rng = np.random.default_rng(writer)
    sources = []
    for k in range(SOURCES):
        path = directory / f"writer{writer}-source{k}.csv"
        pd.concat([pd.DataFrame({"unique_id": f"w{writer}s{k}/i-{j}/cpu_pct", "ds": ds,
                                 "y": rng.uniform(5, 95, STEPS).round(2)}) for j in range(SERIES)]).to_csv(path, index=False)
        sources.append({"name": f"w{writer}s{k}", "kind": "file", "options": {"path": str(path), "unit": "percent"}})
    config = directory / f"writer{writer}.yaml"
    config.write_text(yaml.safe_dump({"sources": sources}))
    return config


def test_two_ingest_processes_at_once_keep_every_row_and_the_ledger_matches_the_lake(
    tmp_path: Path, prefect_api_env: dict[str, str]
) -> None:
    home = tmp_path / "home"
    ds = _times()
    seeded = pd.DataFrame({"unique_id": np.repeat([f"seed/i-{j}/cpu_pct" for j in range(SEEDED)], STEPS),
                           "ds": np.tile(ds, SEEDED), "y": 50.0})
    Lake(home / "lake").upsert("telemetry", seeded)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("FORESIGHT_", "PREFECT_API"))}
    runs = []
    for writer in (0, 1):
        # Both run against one Prefect API, the session's, as two deployments' runs would.
        env = {**base_env, **prefect_api_env, "FORESIGHT_HOME": str(home),
               "PREFECT_HOME": str(tmp_path / f"prefect-{writer}")}
        log = open(tmp_path / f"ingest-{writer}.log", "wb")  # noqa: SIM115 (closed below)
        runs.append((subprocess.Popen([FORESIGHT, "run", "ingest", "--config", str(_config(tmp_path, writer))],
                                      cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    for process, log in runs:
        process.wait(timeout=300)
        log.close()
    for writer, (process, _) in enumerate(runs):
        output = (tmp_path / f"ingest-{writer}.log").read_text(errors="replace")
        assert process.returncode == 0, output[-3000:]

    lake = Lake(home / "lake")
    sources = sorted(f"w{w}s{k}" for w in (0, 1) for k in range(SOURCES))
    stored = lake.read("telemetry", columns=["unique_id"])["unique_id"].str.split("/").str[0].value_counts()
    assert stored.to_dict() == {"seed": SEEDED * STEPS, **dict.fromkeys(sources, SERIES * STEPS)}, \
        "every row of both ingests is in the lake, and every row that was there before"
    ledger = lake.read("batches")
    assert sorted(ledger["source"]) == sources, "every batch of both ingests is in the ledger"
    assert ledger.set_index("source")["accepted"].to_dict() == stored.drop("seed").to_dict(), \
        "the ledger's accepted counts are what the lake holds"
    assert len(lake.read("catalogue")) == 2 * SOURCES * SERIES
