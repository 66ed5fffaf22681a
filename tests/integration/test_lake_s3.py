"""The same lake code on an S3 URL, against moto_server on loopback: reads, upserts, and the
lease that keeps concurrent writers from losing each other's rows."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from foresight.lake import Lake
from foresight.lake_locks import LakeLeaseLost, LakeLockTimeout
from support.lake_writers import in_lockstep
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


def _s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, bucket: str):
    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=f"http://{s3_endpoint}", region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    return client, f"s3://{bucket}/foresight?endpoint_override={s3_endpoint}&scheme=http&region=us-east-1"


def _rows(writer: int, round_: int, n: int = 50) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": f"w{writer}/r{round_}",
                         "ds": pd.date_range("2026-03-01", periods=n, freq="1min", tz="UTC"), "y": float(writer)})


def _lease(client, bucket: str, *, pid: int, ttl: float) -> None:
    body = json.dumps({"host": "ghost", "pid": pid, "since": "2026-03-01T00:00:00+00:00", "ttl_seconds": ttl})
    client.put_object(Bucket=bucket, Key="foresight/.locks/telemetry.lock", Body=body.encode())


def test_two_s3_writers_of_one_partition_keep_every_row(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client, url = _s3(s3_endpoint, monkeypatch, "two-writers")
    rounds = 8
    lakes = [Lake(url) for _ in (0, 1)]
    in_lockstep(lambda writer, r: lakes[writer].upsert("telemetry", _rows(writer, r)), rounds=rounds)
    counts = Lake(url).read("telemetry")["unique_id"].value_counts()
    lost = [f"w{w}/r{r}" for w in (0, 1) for r in range(rounds) if counts.get(f"w{w}/r{r}", 0) != 50]
    assert not lost, f"{len(lost)} of {2 * rounds} writer-rounds lost rows: {lost}"
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="two-writers")["Contents"]]
    assert not [k for k in keys if "/.locks/" in k], "every lease is released"


def test_a_live_s3_lease_times_out_naming_its_holder(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client, url = _s3(s3_endpoint, monkeypatch, "live-lease")
    _lease(client, "live-lease", pid=4242, ttl=3600)
    with pytest.raises(LakeLockTimeout, match=r"'telemetry' is locked by pid 4242 on ghost since 2026-03-01"):
        Lake(url, lock_timeout=1.5).upsert("telemetry", _rows(0, 0))
    assert not Lake(url).exists("telemetry")


def test_an_expired_s3_lease_of_a_crashed_writer_is_taken_over(s3_endpoint: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    client, url = _s3(s3_endpoint, monkeypatch, "stale-lease")
    _lease(client, "stale-lease", pid=4242, ttl=1)
    assert Lake(url, lock_timeout=30).upsert("telemetry", _rows(0, 0)).inserted == 50
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="stale-lease")["Contents"]]
    assert "foresight/.locks/telemetry.lock" not in keys, "the taken-over lease is released after the write"


def test_a_holder_whose_s3_lease_was_taken_over_stops_writing(s3_endpoint: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    client, url = _s3(s3_endpoint, monkeypatch, "lost-lease")
    lake = Lake(url, lease_ttl=2)
    with lake.lock("telemetry") as lease:
        lease.keep()  # fresh: nothing to renew
        _lease(client, "lost-lease", pid=4242, ttl=3600)  # another writer took it over
        time.sleep(1.1)  # past half the TTL: the next keep() renews, and finds the lease gone
        with pytest.raises(LakeLeaseLost, match="lost the S3 lease on lake dataset 'telemetry'"):
            lease.keep()
    body = client.get_object(Bucket="lost-lease", Key="foresight/.locks/telemetry.lock")["Body"].read()
    assert json.loads(body)["pid"] == 4242, "releasing a lost lease leaves the new holder's lease alone"
