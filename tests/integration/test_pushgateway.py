"""Detect metrics through a real Pushgateway (Debian package) scraped by a real Prometheus.

The detect flow's snapshot is pushed, Prometheus scrapes the Pushgateway (``honor_labels``),
and the values are read back through Prometheus' HTTP API; every PromQL expression and the
``label_values`` variable of the incidents dashboard run there and return data. A second push
replaces the group: a service no longer scored disappears. A Pushgateway behind basic auth
(``--web.config.file`` with a bcrypt hash) takes credentials given in the URL.
"""

from __future__ import annotations

import shutil
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
import requests

from connectors.sinks import flow_metrics
from connectors.sinks.flow_metrics import push_flow_metrics
from connectors.sinks.pushgateway import (
    JOB,
    LAST_SUCCESS,
    detection_registry,
    detection_snapshot,
    push_detection_metrics,
    split_credentials,
)
from dashboards import health, incidents
from dashboards.alerts import SINCE_LAST_RUN_PROMQL
from dashboards.queries import expand_promql, label_values_queries, promql_queries
from flows.self_metrics import flow_run_from_result
from support.prometheus import PrometheusServer
from support.servers import free_port, missing_dependency, server_process

T0 = pd.Timestamp("2026-03-01T12:00", tz="UTC")
CATALOGUE = pd.DataFrame(
    {
        "unique_id": ["checkout/i-01/cpu_pct", "checkout/i-01/mem_pct", "cart/i-03/mem_pct"],
        "service": ["checkout", "checkout", "cart"],
        "metric": ["cpu_pct", "mem_pct", "mem_pct"],
    }
)


def _scores(last: dict[str, float]) -> pd.DataFrame:
    """Two samples per series; only the newest must be pushed."""
    rows = []
    for uid, value in last.items():
        rows += [
            {"unique_id": uid, "ds": T0, "score": 0.01},
            {"unique_id": uid, "ds": T0 + pd.Timedelta("5min"), "score": value},
        ]
    return pd.DataFrame(rows)


RISK = pd.DataFrame(
    {
        "service": ["checkout", "checkout", "cart"],
        "ds": [T0, T0 + pd.Timedelta("5min"), T0],
        "risk": [0.2, 0.81, 0.1],
    }
)
INCIDENTS = pd.DataFrame(
    {"service": ["checkout", "cart"], "end": pd.Series([pd.NaT, T0], dtype="datetime64[us, UTC]")}
)
SOURCES = pd.DataFrame({"source": ["prom", "backfill"], "contract_failed": [0, 1], "series_held_back": [0, 12]})


def test_snapshot_keeps_the_newest_values_and_open_services() -> None:
    snap = detection_snapshot(
        _scores({"checkout/i-01/cpu_pct": 0.99995, "cart/i-03/mem_pct": 0.3}), RISK, INCIDENTS, CATALOGUE
    )
    assert snap.scores.set_index("unique_id")["score"].to_dict() == {
        "cart/i-03/mem_pct": 0.3,
        "checkout/i-01/cpu_pct": 0.99995,
    }
    assert snap.risk.set_index("service")["risk"].to_dict() == {"cart": 0.1, "checkout": 0.81}
    assert snap.open_incidents.set_index("service")["open"].to_dict() == {"cart": 0, "checkout": 1}
    with pytest.warns(UserWarning, match="not in the catalogue"):
        partial = detection_snapshot(
            _scores({"nope/i-9/cpu_pct": 0.5, "cart/i-03/mem_pct": 0.3}), None, None, CATALOGUE
        )
    assert partial.scores["unique_id"].tolist() == ["cart/i-03/mem_pct"]


def test_each_sources_contract_verdict_is_a_metric() -> None:
    from prometheus_client import generate_latest

    snap = detection_snapshot(_scores({"cart/i-03/mem_pct": 0.3}), None, None, CATALOGUE, SOURCES)
    text = generate_latest(detection_registry(snap)).decode()
    assert 'foresight_source_contract_failed{source="backfill"} 1.0' in text
    assert 'foresight_source_contract_failed{source="prom"} 0.0' in text
    assert 'foresight_series_held_back{source="backfill"} 12.0' in text
    assert detection_snapshot(_scores({"cart/i-03/mem_pct": 0.3}), None, None, CATALOGUE).sources.empty


def test_push_rejects_a_gateway_url_without_scheme() -> None:
    with pytest.raises(ValueError, match="http"):
        push_detection_metrics("127.0.0.1:9091", _scores({"cart/i-03/mem_pct": 0.3}), None, None, CATALOGUE)
    with pytest.raises(ValueError, match="http") as caught:
        push_detection_metrics(
            "ftp://ops:hunter2@gw:9091", _scores({"cart/i-03/mem_pct": 0.3}), None, None, CATALOGUE
        )
    assert "hunter2" not in str(caught.value) and "ftp://ops:***@gw:9091" in str(caught.value)


def test_credentials_are_taken_out_of_the_gateway_url() -> None:
    assert split_credentials("https://gw.example:9091/") == ("https://gw.example:9091/", None)
    assert split_credentials("http://ops:p%40ss%3Aw%2Frd@[::1]:9091") == (
        "http://[::1]:9091",
        ("ops", "p@ss:w/rd"),
    )
    assert split_credentials("https://token@gw") == ("https://gw", ("token", ""))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(pushgateway URL, Prometheus URL): Prometheus scrapes the Pushgateway every second."""
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        missing_dependency(
            "prometheus-pushgateway not found on PATH (apt-get install -y prometheus-pushgateway)"
        )
    work: Path = tmp_path_factory.mktemp("pushgateway")
    gw_port, prom_port = free_port(), free_port()
    gateway = f"http://127.0.0.1:{gw_port}"
    config = work / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
        f"  - job_name: pushgateway\n    honor_labels: true\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{gw_port}']\n"
    )
    with server_process(
        # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: every gateway
        # on the machine would start with the groups earlier runs pushed. Each test keeps its own.
        [binary, f"--web.listen-address=127.0.0.1:{gw_port}", f"--persistence.file={work / 'gateway.data'}"],
        health_url=f"{gateway}/-/ready",
        log=work / "pushgateway.log",
        timeout=30,
    ):
        server = PrometheusServer(
            url=f"http://127.0.0.1:{prom_port}",
            port=prom_port,
            tsdb=work / "tsdb",
            config=config,
            log=work / "prometheus.log",
            lookback="5m",
        )
        server.start()
        try:
            yield gateway, server.url
        finally:
            server.stop()


def _instant(url: str, expr: str) -> list[dict]:
    answer = requests.post(f"{url}/api/v1/query", data={"query": expr}, timeout=10)
    assert answer.status_code == 200, f"{expr}: {answer.text}"
    return answer.json()["data"]["result"]


def _wait_for(url: str, expr: str, predicate, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        result = _instant(url, expr)
        if predicate(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@pytest.mark.integration
def test_pushed_metrics_reach_prometheus_and_feed_the_incidents_dashboard(stack: tuple[str, str]) -> None:
    gateway, prom = stack
    scores = _scores(
        {"checkout/i-01/cpu_pct": 0.99995, "checkout/i-01/mem_pct": 0.4, "cart/i-03/mem_pct": 0.3}
    )
    push_detection_metrics(
        gateway,
        scores,
        RISK,
        INCIDENTS,
        CATALOGUE,
        instance="test-run",
        anomaly_threshold=0.9999,
        risk_threshold=0.5,
        sources=SOURCES,
    )
    result = _wait_for(prom, "foresight_anomaly_score", lambda r: len(r) == 3)
    got = {r["metric"]["unique_id"]: float(r["value"][1]) for r in result}
    assert got == {"checkout/i-01/cpu_pct": 0.99995, "checkout/i-01/mem_pct": 0.4, "cart/i-03/mem_pct": 0.3}
    labels = result[0]["metric"]
    assert labels["job"] == JOB and labels["instance"] == "test-run"  # the grouping key, kept by honor_labels
    risk = {r["metric"]["service"]: float(r["value"][1]) for r in _instant(prom, "foresight_failure_risk")}
    assert risk == {"checkout": 0.81, "cart": 0.1}
    open_ = {r["metric"]["service"]: float(r["value"][1]) for r in _instant(prom, "foresight_incident_open")}
    assert open_ == {"checkout": 1.0, "cart": 0.0}
    failed = {r["metric"]["source"]: float(r["value"][1]) for r in _instant(prom, "foresight_source_contract_failed")}
    assert failed == {"prom": 0.0, "backfill": 1.0}

    # Let a few scrapes land so range queries have points, then run every dashboard query.
    _wait_for(
        prom, "count_over_time(foresight_incident_open[1m])", lambda r: r and float(r[0]["value"][1]) >= 3
    )
    board = incidents.build()
    (variable,) = label_values_queries(board)
    values = requests.get(
        f"{prom}/api/v1/label/{variable.label}/values", params={"match[]": variable.metric}, timeout=10
    ).json()["data"]
    assert values == ["cart", "checkout"]
    queries = promql_queries(board, variables={"service": values})
    assert len(queries) == 8
    now = time.time()
    for query in queries:
        if query.instant:
            answer = requests.post(f"{prom}/api/v1/query", data={"query": query.expr}, timeout=10)
        else:
            answer = requests.post(
                f"{prom}/api/v1/query_range",
                timeout=10,
                data={"query": query.expr, "start": now - 120, "end": now, "step": 1},
            )
        assert answer.status_code == 200, f"{query.panel}: {query.expr}: {answer.text}"
        assert answer.json()["data"]["result"], f"{query.panel}: no data from {query.expr}"
    risk_now = _instant(prom, next(q.expr for q in queries if q.panel == "Risk now"))
    assert [r["metric"]["service"] for r in risk_now] == ["checkout", "cart"]  # highest risk first

    # A second run without cart: the PUT replaces the group, so cart's series are gone.
    push_detection_metrics(
        gateway, _scores({"checkout/i-01/cpu_pct": 0.2}), None, None, CATALOGUE, instance="test-run"
    )
    result = _wait_for(prom, "foresight_anomaly_score", lambda r: len(r) == 1)
    assert [(r["metric"]["unique_id"], float(r["value"][1])) for r in result] == [
        ("checkout/i-01/cpu_pct", 0.2)
    ]
    assert _instant(prom, "foresight_failure_risk") == []


# bcrypt (cost 4: fast) of PASSWORD, as the Pushgateway's web config wants; made with
# crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)).
USER, PASSWORD = "foresight", "s3cr3t@push:/"
PASSWORD_BCRYPT = "$2b$04$KehKOE..HG2pHii/lzoQaerV4C1ogNXLUZsJzfG47ufJTYx2KVs/6"


@pytest.fixture(scope="module")
def auth_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Pushgateway that answers only ``USER`` / ``PASSWORD`` (basic auth); its URL without them."""
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        missing_dependency(
            "prometheus-pushgateway not found on PATH (apt-get install -y prometheus-pushgateway)"
        )
    work: Path = tmp_path_factory.mktemp("pushgateway-auth")
    web_config = work / "web.yml"
    web_config.write_text(f'basic_auth_users:\n  {USER}: "{PASSWORD_BCRYPT}"\n')
    port = free_port()
    with server_process(
        [binary, f"--web.listen-address=127.0.0.1:{port}", f"--web.config.file={web_config}",
         f"--persistence.file={work / 'gateway.data'}"],
        health_url=f"http://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/-/ready",
        log=work / "pushgateway.log",
        timeout=30,
    ):
        yield f"http://127.0.0.1:{port}"


def _with_credentials(url: str, password: str) -> str:
    return url.replace("http://", f"http://{USER}:{quote(password, safe='')}@")


@pytest.mark.integration
def test_a_gateway_behind_basic_auth_takes_credentials_from_the_url(auth_gateway: str) -> None:
    assert requests.get(f"{auth_gateway}/metrics", timeout=10).status_code == 401  # auth is enforced
    push_detection_metrics(
        _with_credentials(auth_gateway, PASSWORD),
        _scores({"cart/i-03/mem_pct": 0.3}),
        None,
        None,
        CATALOGUE,
        instance="auth-run",
    )
    exposed = requests.get(f"{auth_gateway}/metrics", auth=(USER, PASSWORD), timeout=10).text
    assert 'foresight_anomaly_score{instance="auth-run",job="foresight-detect",metric="mem_pct"' in exposed


@pytest.mark.integration
def test_wrong_credentials_fail_without_showing_them(auth_gateway: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        push_detection_metrics(
            _with_credentials(auth_gateway, "wrong-Pa55"),
            _scores({"cart/i-03/mem_pct": 0.3}),
            None,
            None,
            CATALOGUE,
        )
    assert caught.value.code == 401
    shown = f"{caught.value} {caught.value!r} {caught.value.url} {caught.value.headers}"
    assert "wrong-Pa55" not in shown and "@" not in caught.value.url


def test_an_open_critical_incident_is_its_own_metric() -> None:
    incidents = INCIDENTS.assign(severity=["critical", "critical"])  # cart's incident has ended
    snap = detection_snapshot(_scores({"checkout/i-01/cpu_pct": 0.9}), RISK, incidents, CATALOGUE)
    assert snap.open_incidents.set_index("service")["critical"].to_dict() == {"cart": 0, "checkout": 1}
    warning = detection_snapshot(_scores({"checkout/i-01/cpu_pct": 0.9}), RISK,
                                 INCIDENTS.assign(severity="warning"), CATALOGUE)
    assert warning.open_incidents["critical"].sum() == 0
    from prometheus_client import generate_latest

    exposed = generate_latest(detection_registry(snap)).decode()
    assert 'foresight_incident_open_critical{service="checkout"} 1.0' in exposed
    assert 'foresight_incident_open_critical{service="cart"} 0.0' in exposed


@pytest.mark.integration
def test_flow_runs_push_their_own_metrics_for_the_health_dashboard(stack: tuple[str, str]) -> None:
    """Each flow's group (job foresight_flow, flow=...) reaches Prometheus; every health-dashboard
    query on flow metrics returns data; a failed run keeps the last success and flags itself."""
    gateway, prom = stack
    now = time.time()
    runs = [
        flow_run_from_result("ingest", [{"source": "prom", "accepted": 90, "quarantined": 10}], succeeded=True,
                             duration=4.0, finished_at=now - 60),
        flow_run_from_result("train", {"forecaster": {"decision": "promote"}}, succeeded=True, duration=30.0,
                             finished_at=now - 50),
        flow_run_from_result("detect", {"paging": {"delivered": 2, "pending": 1}}, succeeded=True, duration=8.0,
                             finished_at=now - 40),
    ]
    for run in runs:
        push_flow_metrics(gateway, run, instance="health-test")
    # detect then fails: POST keeps its last success (the alert's metric) and its page counts.
    push_flow_metrics(gateway, flow_run_from_result("detect", None, succeeded=False, duration=2.0,
                                                    finished_at=now), instance="health-test")
    failed = _wait_for(prom, f'{flow_metrics.RUN_SUCCEEDED}{{flow="detect"}}',
                       lambda r: bool(r) and float(r[0]["value"][1]) == 0.0)
    assert failed and failed[0]["metric"]["job"] == flow_metrics.JOB
    (kept,) = _instant(prom, f'{LAST_SUCCESS}{{job="{flow_metrics.JOB}"}}')  # the alert's metric, not a second one
    assert float(kept["value"][1]) == pytest.approx(now - 40)  # the successful run's, not the failure's
    assert float(_instant(prom, SINCE_LAST_RUN_PROMQL)[0]["value"][1]) < 600
    since = {r["metric"]["flow"]: float(r["value"][1]) for r in _instant(prom, health.SINCE_LAST_SUCCESS)}
    assert set(since) >= {"ingest", "train", "detect"} and since["ingest"] > since["detect"]
    rows = {r["metric"]["kind"]: float(r["value"][1]) for r in _instant(prom, health.INGEST_ROWS)}
    assert rows == {"in": 100.0, "accepted": 90.0, "quarantined": 10.0}
    assert float(_instant(prom, health.PAGES)[0]["value"][1]) == 2.0  # kept from the successful run

    board = health.build()
    queries = promql_queries(board, variables={})
    assert {q.expr for q in queries} == set(health.FLOW_QUERIES) | {
        expand_promql(e, {}) for e in health.STREAM_QUERIES}
    for query in queries:
        answer = requests.post(f"{prom}/api/v1/query", data={"query": query.expr}, timeout=10)
        assert answer.status_code == 200, f"{query.panel}: {query.expr}: {answer.text}"
        if "foresight_stream" not in query.expr:  # no stream processor runs here
            assert answer.json()["data"]["result"], f"{query.panel}: no data from {query.expr}"
