"""The same lake code on an S3 URL, against moto_server on loopback."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from foresight.lake import Lake
from support.servers import free_port, missing_dependency, server_process

pytestmark = pytest.mark.integration

MOTO = str(Path(sys.executable).with_name("moto_server"))  # the locked moto, not a system one


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory):
    if not Path(MOTO).exists():
        missing_dependency("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with server_process([MOTO, "-p", str(port)], health_url=f"http://127.0.0.1:{port}/moto-api/data.json",
                        log=log):
        yield f"127.0.0.1:{port}"


def test_upsert_and_read_on_s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=f"http://{s3_endpoint}", region_name="us-east-1").create_bucket(Bucket="lake")
    lake = Lake(f"s3://lake/foresight?endpoint_override={s3_endpoint}&scheme=http&region=us-east-1")
    ds = pd.date_range("2026-03-01 22:00", periods=48, freq="5min", tz="UTC")
    df = pd.DataFrame({"unique_id": "a", "ds": ds, "y": np.arange(48, dtype=float)})
    assert lake.upsert("telemetry", df).inserted == 48
    assert lake.upsert("telemetry", df.assign(y=1.0)).updated == 48
    back = lake.read("telemetry", start=pd.Timestamp("2026-03-01 23:00", tz="UTC"))
    assert len(back) == 36 and set(back["y"]) == {1.0}
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=f"http://{s3_endpoint}", region_name="us-east-1")
            .list_objects_v2(Bucket="lake")["Contents"]]
    assert sorted(k for k in keys if not k.endswith("/")) == ["foresight/telemetry/date=2026-03-01/part-0.parquet",
                            "foresight/telemetry/date=2026-03-02/part-0.parquet"]
