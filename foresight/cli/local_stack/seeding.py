"""Seeding the local stack with the built-in simulator's last ``N`` days, so ingestion shows real
history: CPU and memory are backfilled into Prometheus' TSDB with ``promtool`` *before* Prometheus
starts (a scrape cannot give history), disk usage is put into moto's CloudWatch with past
timestamps, and request/error rates plus raw log lines are produced to Kafka topics in the formats
of :mod:`connectors.sources.kafka.messages`. ``infra/local/foresight.yaml`` reads all three, and its
``stream:`` section points ``foresight stream`` at the same Kafka topics: both have
:data:`KAFKA_PARTITIONS` partitions, every message is keyed by its service and each topic is produced
in time order, as the stream processor requires (docs/stream.md).

Pure builders (a batch in, what a server takes out) first, then the calls that load the servers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from connectors.sources.base import SourceBatch
from foresight.cli.local_stack.launcher import StackError
from foresight.cli.local_stack.servers import backfill_tsdb
from foresight.schemas import INCIDENT_COLUMNS
from simulator import SimulatorSource

SEED_STEP = "5min"  # the simulator's step: also the example config's Prometheus step and CloudWatch period
PROMETHEUS_METRICS = ("cpu_pct", "mem_pct")  # backfilled as foresight_sim_<metric>{job=service, instance=id}
PROMETHEUS_PREFIX = "foresight_sim_"
CLOUDWATCH_METRICS = {"disk_pct": "disk_used_percent"}  # simulator metric -> CloudWatch MetricName
CLOUDWATCH_NAMESPACE = "CWAgent"
CLOUDWATCH_REGION = "us-east-1"
CLOUDWATCH_PERIOD = "1h"  # seeded as hourly means (see cloudwatch_metric_data); the example config's period
KAFKA_METRICS = ("request_rate", "error_rate")
METRICS_TOPIC = "foresight-metrics"
LOGS_TOPIC = "foresight-logs"
INCIDENTS_TOPIC = "foresight-incidents"  # the stream processor's outputs, created with the inputs
DEAD_LETTER_TOPIC = "foresight-dead-letter"
KAFKA_PARTITIONS = 3  # both input topics alike: a service's metrics and logs share a partition number
INCIDENT_LABELS_FILE = "incident-labels.csv"  # under the stack's state directory
_LOCAL_AWS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto accepts any


# -- seeding: pure builders --------------------------------------------------------------------
def simulated_batch(days: int, *, seed: int = 7, end: pd.Timestamp | None = None) -> SourceBatch:
    """The simulator's last ``days`` days ending at ``end`` (default: now, on the step grid)."""
    end = pd.Timestamp.now(tz="UTC").floor(SEED_STEP) if end is None else end
    step_minutes = int(pd.Timedelta(SEED_STEP).total_seconds() // 60)
    return SimulatorSource(name="simulator", seed=seed, days=days, step_minutes=step_minutes, end=end).fetch()


def write_incident_labels(batch: SourceBatch, path: Path) -> int:
    """The batch's incidents as an incident-history CSV (times in ISO 8601 UTC); returns the count.

    No server in the stack holds incident history (PagerDuty is not local), so the seed hands
    it over as a file, the way teams export a post-mortem log for ``detect.labels_path``.
    """
    incidents = batch.incidents if batch.incidents is not None else pd.DataFrame(columns=list(INCIDENT_COLUMNS))
    out = incidents.copy()
    for column in ("start", "end", "precursor_start"):
        if column in out.columns:
            out[column] = pd.to_datetime(out[column], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    return len(out)


def _series_of(batch: SourceBatch, metrics: Sequence[str]) -> pd.DataFrame:
    """Telemetry rows of ``metrics`` joined with their catalogue row (service, resource, unit, labels)."""
    info = batch.catalogue[["unique_id", "metric", "service", "resource_id", "instance_type", "unit", "labels"]]
    rows = batch.telemetry.merge(info[info["metric"].isin(list(metrics))], on="unique_id", how="inner")
    return rows.sort_values(["metric", "unique_id", "ds"], kind="stable").reset_index(drop=True)


def _epoch_seconds(ds: pd.Series) -> np.ndarray:
    return (ds.astype("datetime64[us, UTC]").astype("int64") // 1_000_000).to_numpy()


def openmetrics_text(batch: SourceBatch, metrics: Sequence[str] = PROMETHEUS_METRICS) -> tuple[str, int]:
    """OpenMetrics for ``promtool``: one gauge family per metric, each series in time order; and the sample count."""
    rows = _series_of(batch, metrics)
    family = PROMETHEUS_PREFIX + rows["metric"].astype(str)
    prefix = (family + '{instance="' + rows["resource_id"].astype(str) + '",job="' + rows["service"].astype(str)
              + '",instance_type="' + rows["instance_type"].astype(str) + '"} ')
    lines = prefix + pd.Series(np.char.mod("%.10g", rows["y"].to_numpy()), index=rows.index) + " " \
        + pd.Series(_epoch_seconds(rows["ds"]).astype(str), index=rows.index)
    parts = []
    for name, group in lines.groupby(family, sort=True):  # a handful of families, not rows
        parts.append(f"# TYPE {name} gauge\n" + "\n".join(group.tolist()) + "\n")
    return "".join(parts) + "# EOF\n", len(rows)


def cloudwatch_metric_data(batch: SourceBatch, metrics: dict[str, str] = CLOUDWATCH_METRICS) -> list[dict]:
    """PutMetricData items (dimensions InstanceId and Service) for the simulator's ``metrics``,
    as hourly means: moto's ListMetrics and GetMetricData scan every stored datapoint, so two
    weeks at 5 minutes (48k points) time out where real CloudWatch would not."""
    rows = _series_of(batch, list(metrics))
    keys = ["metric", "unique_id", "resource_id", "service"]
    rows = (rows.assign(ds=rows["ds"].dt.floor(CLOUDWATCH_PERIOD)).groupby(keys + ["ds"], observed=True, sort=True)
            ["y"].mean().reset_index())
    stamps = rows["ds"].dt.to_pydatetime()
    return [{"MetricName": metrics[m], "Timestamp": ts, "Value": float(y), "Unit": "Percent",
             "Dimensions": [{"Name": "InstanceId", "Value": r}, {"Name": "Service", "Value": s}]}
            for m, r, s, ts, y in zip(rows["metric"], rows["resource_id"], rows["service"], stamps, rows["y"],
                                      strict=True)]


def kafka_metric_messages(batch: SourceBatch, metrics: Sequence[str] = KAFKA_METRICS) -> list[tuple[bytes, bytes]]:
    """Metric-sample JSON values (see :mod:`connectors.sources.kafka.messages`), one per telemetry
    row, keyed by service, in time order."""
    rows = _series_of(batch, metrics).sort_values(["ds", "service", "unique_id"], kind="stable")
    frame = pd.DataFrame({
        "metric": rows["metric"].astype(str), "service": rows["service"].astype(str),
        "resource": rows["resource_id"].astype(str), "ts": rows["ds"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "value": rows["y"], "unit": rows["unit"].astype(str),
        "labels": rows["instance_type"].astype(str).map(lambda t: {"instance_type": t}),
    })
    return _keyed(frame)


def kafka_log_messages(batch: SourceBatch) -> list[tuple[bytes, bytes]]:
    """Log-record JSON values (see :mod:`connectors.sources.kafka.messages`) for the batch's logs,
    keyed by service, in time order: the raw line in ``message`` (what the stream's template miner
    reads) and the simulator's ``template_id`` (what the batch source keeps)."""
    logs = batch.logs if batch.logs is not None else pd.DataFrame()
    if logs.empty:
        return []
    logs = logs.sort_values(["ts", "service"], kind="stable")
    frame = pd.DataFrame({
        "ts": logs["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "service": logs["service"].astype(str),
        "resource": logs["resource_id"].astype(str), "level": logs["level"].astype(str),
        "message": logs["message"].astype(str), "template_id": logs["template_id"].astype(str),
    })
    return _keyed(frame)


def _keyed(frame: pd.DataFrame) -> list[tuple[bytes, bytes]]:
    """``(service, JSON line)`` per row."""
    return [(service.encode(), value) for service, value in zip(frame["service"], _json_lines(frame), strict=True)]


def _json_lines(frame: pd.DataFrame) -> list[bytes]:
    if frame.empty:
        return []
    text = frame.to_json(orient="records", lines=True, force_ascii=False, double_precision=15)
    return [line.encode() for line in text.splitlines() if line]


# -- loading the servers ------------------------------------------------------------------------
def backfill_prometheus(promtool: str, tsdb: Path, batch: SourceBatch, *, workdir: Path) -> int:
    """Write the batch's CPU/memory series into TSDB blocks under ``tsdb`` (Prometheus must be stopped)."""
    text, samples = openmetrics_text(batch)
    source = workdir / "backfill.om"
    source.write_text(text)
    try:
        backfill_tsdb(promtool, source, tsdb, timeout=300)
    finally:
        source.unlink(missing_ok=True)
    return samples


def seed_cloudwatch(endpoint: str, batch: SourceBatch, *, region: str = CLOUDWATCH_REGION) -> int:
    """Put the batch's disk series into moto's CloudWatch, 1000 datapoints per call (the API's limit)."""
    try:
        import boto3  # lazy: boto3 only for CloudWatch
    except ImportError as exc:
        raise StackError("seeding CloudWatch needs boto3: pip install boto3") from exc
    client = boto3.client("cloudwatch", endpoint_url=endpoint, region_name=region, **_LOCAL_AWS)
    data = cloudwatch_metric_data(batch)
    for i in range(0, len(data), 1000):
        client.put_metric_data(Namespace=CLOUDWATCH_NAMESPACE, MetricData=data[i:i + 1000])
    return len(data)


def seed_kafka(bootstrap: str, batch: SourceBatch) -> tuple[int, int]:
    """Create the topics (inputs with :data:`KAFKA_PARTITIONS` partitions, the stream's outputs with
    one) and produce metric samples and log records keyed by service; returns both counts."""
    try:
        from kafka import KafkaProducer  # lazy: kafka-python is optional
        from kafka.admin import KafkaAdminClient, NewTopic  # lazy: kafka-python is optional
        from kafka.errors import TopicAlreadyExistsError  # lazy: kafka-python is optional
    except ImportError as exc:
        raise StackError("seeding Kafka needs kafka-python: pip install kafka-python") from exc
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    topics = {METRICS_TOPIC: KAFKA_PARTITIONS, LOGS_TOPIC: KAFKA_PARTITIONS, INCIDENTS_TOPIC: 1, DEAD_LETTER_TOPIC: 1}
    try:
        for topic, partitions in topics.items():
            try:
                admin.create_topics([NewTopic(topic, partitions, 1)])
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    metrics, logs = kafka_metric_messages(batch), kafka_log_messages(batch)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024)
    try:
        # the default partitioner hashes the key: a service's metrics and logs land in the same partition number
        futures = [producer.send(METRICS_TOPIC, key=k, value=v) for k, v in metrics]
        futures += [producer.send(LOGS_TOPIC, key=k, value=v) for k, v in logs]
        producer.flush(timeout=60)
        failed = [f.exception for f in futures if f.failed()]
    finally:
        producer.close(timeout=10)
    if failed:
        raise StackError(f"{len(failed)} of {len(futures)} Kafka messages were not acknowledged, e.g. {failed[0]}")
    return len(metrics), len(logs)
