"""The later stages on really ingested data: seed the local stack with two weeks, ingest them from
Prometheus, CloudWatch (moto) and Kafka (tansu) with the example config, then train, forecast and
detect on what landed in the lake, with the seeded incident history as the labels file."""

from __future__ import annotations

from pathlib import Path

import pytest

from foresight.cli.local_stack.servers import MissingBinaryError, require_binaries
from foresight.cli.local_stack.stack import LocalStack, StackPorts
from foresight.lake import Lake
from support.moto import use_test_credentials
from support.servers import free_port, missing_dependency

pytestmark = pytest.mark.e2e

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "infra" / "local" / "foresight.yaml"
LABELS_IN_EXAMPLE = ".foresight/stack/incident-labels.csv"


def _config_for(ports: StackPorts, labels: Path, target: Path) -> Path:
    """The example config on the test's ports, reading the seeded labels where this stack wrote them."""
    text = EXAMPLE_CONFIG.read_text()
    defaults = StackPorts()
    for service in ("prometheus", "kafka", "moto"):
        text = text.replace(f"127.0.0.1:{getattr(defaults, service)}", f"127.0.0.1:{getattr(ports, service)}")
    assert LABELS_IN_EXAMPLE in text, "the example config should read the seeded incident history"
    target.write_text(text.replace(LABELS_IN_EXAMPLE, str(labels)))
    return target


def test_train_forecast_and_detect_run_on_data_ingested_from_the_local_stack(
    prefect_harness, foresight_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        require_binaries()
    except MissingBinaryError as exc:
        missing_dependency(str(exc))
    use_test_credentials(monkeypatch)
    monkeypatch.chdir(foresight_home.parent)  # dashboards and mlruns land beside the home
    ports = StackPorts(*(free_port() for _ in range(5)))
    stack = LocalStack(foresight_home, ports)
    try:
        report = stack.up(seed_days=14, timeout=90)
        assert report is not None and report.incident_labels is not None and report.incidents >= 3
        config = str(_config_for(ports, report.incident_labels, foresight_home.parent / "foresight.yaml"))

        from flows.detect import detect
        from flows.forecast_plan import forecast_and_plan
        from flows.ingest import ingest
        from flows.resources import open_forecast_store
        from flows.train import train
        from foresight.settings import load_settings

        assert all(o["passed"] for o in ingest(config_file=config))
        catalogue = Lake(foresight_home / "lake").read("catalogue")
        assert set(catalogue["source"]) == {"local-prometheus", "local-cloudwatch", "local-kafka"}

        trained = train(config_file=config)
        for family in ("forecaster", "anomaly", "failure"):
            assert trained[family]["version"], f"{family}: a version was registered from stack data"
        planned = forecast_and_plan(config_file=config)
        assert planned["forecast_rows"] > 0 and planned["plan_rows"] > 0
        store = open_forecast_store(load_settings(config))
        forecast_series = set(store.read_forecasts()["unique_id"])
        store.dispose()
        assert set(catalogue.loc[catalogue["unique_id"].isin(forecast_series), "source"]) == {
            "local-prometheus", "local-cloudwatch", "local-kafka"}, "every source's metrics are forecast"
        detected = detect(config_file=config)
        assert detected["anomaly_detector_version"] is not None
        assert detected["blocked_sources"] == []
    finally:
        stack.down(grace=5)
