"""Pages that explain themselves: summary and flat details from the evidence, the instance nearest
full for a resource fault, predictor contributions as sentences, Grafana / runbook links, the
incident pipeline's dedup key (and the one older versions wrote), all within PagerDuty's limits."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest

from connectors.sinks.pagerduty_outbox import (
    InvalidEventError,
    Outbox,
    dedup_key,
    incident_dedup_key,
    resolve_event,
    trigger_event,
)
from connectors.sinks.pagerduty_page_links import PAD, PageLinks
from flows.incident_pages import incident_events
from models.failure.feature_sentences import feature_sentence
from models.incidents.evidence import evidence_payload, series_record
from models.incidents.exhaustion import resource_outlook
from models.incidents.page_text import describe_incident, format_value
from streaming.incident_outputs import publish
from streaming.keyed_scoring import IncidentEvent
from support.fake_pagerduty import alert_event_errors

START = pd.Timestamp("2026-12-06 16:15", tz="UTC")
LEAKING, NEIGHBOUR = "i-09a8706fefe8d78b9", "i-014e7d46a7213ecd7"
CATALOGUE = pd.DataFrame(
    {
        "unique_id": [
            f"cart/{i}/{m}" for i in (LEAKING, NEIGHBOUR) for m in ("mem_pct", "cpu_pct", "error_rate")
        ],
        "service": "cart",
        "metric": ["mem_pct", "cpu_pct", "error_rate"] * 2,
        "unit": ["percent", "percent", "ratio"] * 2,
        "resource_id": [LEAKING] * 3 + [NEIGHBOUR] * 3,
    }
)


def _telemetry() -> pd.DataFrame:
    """A day of 5-minute samples: the leaking instance's memory climbs 0.1 points a minute to 92 %
    at the start; its neighbour's memory sits at 81 %, its CPU jumps at the end."""
    ds = pd.date_range(START - pd.Timedelta(hours=24), START, freq="5min")
    minutes = ((ds - ds[-1]).total_seconds() / 60).to_numpy()
    leak = np.clip(92.0 + 0.1 * minutes, 60.0, None)
    frames = [
        (f"cart/{LEAKING}/mem_pct", leak),
        (f"cart/{NEIGHBOUR}/mem_pct", np.full(len(ds), 81.0)),
        (f"cart/{NEIGHBOUR}/cpu_pct", np.where(minutes > -10, 54.0, 29.0)),
    ]
    return pd.concat([pd.DataFrame({"unique_id": u, "ds": ds, "y": y}) for u, y in frames], ignore_index=True)


def _evidence(fault_type: str = "memory_leak") -> str:
    """The demo's memory-leak incident: the leaking instance's error ratio and its neighbour's CPU
    tie for most surprising; the only memory series in the evidence is the neighbour's."""
    series = [
        series_record(
            unique_id=f"cart/{NEIGHBOUR}/cpu_pct",
            service="cart",
            metric="cpu_pct",
            resource_id=NEIGHBOUR,
            surprise=4.494,
            observed=53.96,
            expected=28.87,
        ),
        series_record(
            unique_id=f"cart/{LEAKING}/error_rate",
            service="cart",
            metric="error_rate",
            resource_id=LEAKING,
            surprise=4.493,
            observed=0.034945,
            expected=0.000546,
        ),
        series_record(
            unique_id=f"cart/{NEIGHBOUR}/mem_pct",
            service="cart",
            metric="mem_pct",
            resource_id=NEIGHBOUR,
            surprise=2.621,
            observed=81.36,
            expected=76.58,
        ),
    ]
    return evidence_payload(
        series=series,
        ranked_services=["cart", "checkout"],
        evidence_level=7.075686,
        open_threshold=6.0,
        fault_type=fault_type,
        fault_type_confidence=0.8,
        page_score=0.577708,
    )


def _incident(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "incident_id": "inc-4df77962b7ee4dc3",
        "service": "cart",
        "category": "errors",
        "start": START,
        "end": pd.NaT,
        "severity": "error",
        "score": 0.9999999159932854,
        "evidence": _evidence(),
        "window_start": START.floor("30min"),
        "resource_id": NEIGHBOUR,
        "ranked_services": "cart;checkout",
    }
    return base | overrides


UNITS = dict(zip(CATALOGUE["unique_id"], CATALOGUE["unit"], strict=True))
TOP = [
    {"feature": "util_tte_30min", "value": 90.02, "contribution": 3.85},
    {"feature": "minutes_since_deploy", "value": 1440.0, "contribution": -0.4},
]


# -- what the page says ------------------------------------------------------------------------
def test_a_memory_leak_is_paged_on_the_instance_nearest_full_with_its_time_to_full() -> None:
    outlook = resource_outlook(_telemetry(), CATALOGUE, service="cart", at=START, kinds=("memory",))
    assert outlook is not None and outlook.resource_id == LEAKING
    assert outlook.value == pytest.approx(92.0) and outlook.minutes_to_full == pytest.approx(80.0, rel=0.01)
    text = describe_incident(_incident(), top_features=TOP, outlook=outlook, units=UNITS)
    assert text.summary.startswith(f"[cart] {LEAKING}: memory 92 % (normal ")
    assert "full in ~80 min. Likely memory leak (confidence 0.8). Since 2026-12-06 16:15Z" in text.summary
    # Led by the fault type, not the coarse category's "anything failing is errors".
    assert (text.fault_type, text.category, text.instance) == ("memory_leak", "resource_leak", LEAKING)
    assert text.details["incident_category"] == "errors" and text.details["time_to_full"] == "80 min"


def test_without_telemetry_the_headline_is_the_evidence_series_of_the_faults_kind() -> None:
    text = describe_incident(_incident(), units=UNITS)
    assert text.headline is not None and text.headline.metric == "mem_pct"  # not the top (CPU) series
    assert text.summary.startswith(f"[cart] {NEIGHBOUR}: memory 81 % (normal 77 %). Likely memory leak")
    errors = describe_incident(_incident(evidence=_evidence("bad_deploy")), units=UNITS)
    assert errors.summary.startswith(
        f"[cart] {LEAKING}: error ratio 3.5 % (normal 0.055 %). Likely bad deploy"
    )


def test_details_are_flat_readable_and_rounded() -> None:
    text = describe_incident(
        _incident(dedup_key="k"),
        top_features=TOP,
        units=UNITS,
        raised_by="incident pipeline",
        versions={"anomaly-detector": "3", "failure-predictor": None},
    )
    details = text.details
    for key, value in details.items():
        assert isinstance(value, (str, int, float)), (key, value)
        if isinstance(value, str):
            assert not value.lstrip().startswith(("{", "[")), f"{key} holds JSON: {value}"
    assert details["evidence_level"] == 7.08 and details["page_score"] == 0.578
    assert "score" not in details  # 0.9999999159932854 says no more than the level, less readably
    assert describe_incident(_incident(evidence=None, score=0.987654)).details["score"] == 0.9877
    assert details["evidence_1"] == f"cart {NEIGHBOUR}: CPU 54 % (normal 29 %), as rare as 1 in 10^4.5"
    assert details["risk_factor_1"] == "busiest resource full in ~90 min at its 30min trend (raises the risk)"
    assert details["risk_factor_2"] == "no deploy in the last day (lowers the risk)"
    assert details["anomaly_detector_version"] == "3" and "failure_predictor_version" not in details
    assert "evidence" not in details and "top_features" not in details


def test_an_incident_without_an_evidence_record_still_reads() -> None:
    text = describe_incident(
        _incident(evidence='[{"unique_id": "x"}]', category="resource_leak", resource_id="i-1")
    )
    assert (
        text.summary == "[cart] i-1: resource leak. Since 2026-12-06 16:15Z" and text.fault_type == "unknown"
    )


@pytest.mark.parametrize(
    ("feature", "value", "contribution", "sentence"),
    [
        (
            "log_error_lift_2h",
            3.04,
            1.2,
            "ERROR log lines rising: 3.0x their usual rate over the last 2h (raises the risk)",
        ),
        (
            "log_error_lift_2h",
            1.01,
            1.4,
            "ERROR log lines at their usual rate (1.0x over the last 2h) (raises the risk)",
        ),
        (
            "error_rate_slope_2h",
            0.0244,
            1.3,
            "error ratio rising 2.4 percentage points an hour over the last 2h (raises the risk)",
        ),
        ("mem_pct_tte_2h", 7 * 24 * 60.0, -0.1, "memory not filling up at its 2h trend (lowers the risk)"),
        ("cpu_pct_z", -2.5, 0.2, "CPU 2.5 standard deviations below its normal (raises the risk)"),
        ("minutes_since_deploy", 12.1, 2.05, "a deploy 12 min ago (raises the risk)"),
        ("log_warn_30min", 7.0, 2.9, "7 WARN log lines in the last 30min (raises the risk)"),
        (
            "log_tpl_pool-exhausted_30min",
            3.0,
            0.5,
            "3 ERROR/WARN lines of log template pool-exhausted in the last 30min (raises the risk)",
        ),
        (
            "request_rate_imbalance",
            0.4,
            0.3,
            "busiest instance takes 40 % more requests than the average (raises the risk)",
        ),
        ("error_rate", 0.035, 0.3, "error ratio at 3.5 % (raises the risk)"),
        ("something_new", 1.5, -0.3, "something_new = 1.5 (lowers the risk)"),
    ],
)
def test_contributions_read_as_sentences_with_their_direction(feature, value, contribution, sentence) -> None:
    assert feature_sentence(feature, value, contribution) == sentence


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (96.4, "percent", "96 %"),
        (0.035, "ratio", "3.5 %"),
        (0.306, "seconds", "306 ms"),
        (2.5, "seconds", "2.50 s"),
        (1234.5, "requests_per_second", "1.23e+03 requests_per_second"),
        (float("nan"), "percent", "unknown"),
    ],
)
def test_values_are_shown_in_their_unit(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


# -- links ---------------------------------------------------------------------------------------
LINKS = PageLinks(
    grafana_url="https://grafana.example.com/",
    runbook_url="https://runbooks.example.com/",
    runbooks={
        "memory_leak": "https://runbooks.example.com/leak",
        "errors": "https://runbooks.example.com/errors",
    },
)


def test_grafana_links_carry_the_service_and_the_incidents_time_range_in_ms() -> None:
    end = START + pd.Timedelta(minutes=40)
    link = urlsplit(LINKS.grafana_link("cart", START, end) or "")
    assert (link.netloc, link.path) == ("grafana.example.com", "/d/foresight-incidents/")
    query = parse_qs(link.query)
    assert query["var-service"] == ["cart"]
    assert int(query["from"][0]) == (START - PAD).value // 1_000_000
    assert int(query["to"][0]) == (end + PAD).value // 1_000_000
    render = urlsplit(LINKS.panel_image_url("cart", START, None) or "")
    assert render.path == "/render/d-solo/foresight-incidents/incidents"
    assert parse_qs(render.query)["panelId"] == ["4"] and parse_qs(render.query)["var-service"] == ["cart"]
    [image] = LINKS.images("cart", START, None)
    assert image["src"].startswith("https://") and image["alt"]
    assert (
        PageLinks(grafana_url="http://grafana.local").images("cart", START, None) == []
    )  # PagerDuty shows https only
    assert PageLinks().links("cart", START, None, "memory_leak", "resource_leak") == []


def test_the_runbook_is_the_fault_types_then_the_categorys_then_the_default() -> None:
    assert LINKS.runbook("memory_leak", "resource_leak") == "https://runbooks.example.com/leak"
    assert LINKS.runbook("exception", "errors") == "https://runbooks.example.com/errors"
    assert LINKS.runbook("unknown", "latency") == "https://runbooks.example.com/"
    texts = [link["text"] for link in LINKS.links("cart", START, None, "memory_leak", "resource_leak")]
    assert texts == ["Grafana: cart around the incident", "Runbook: memory leak"]


# -- events ------------------------------------------------------------------------------------
def test_pages_built_from_incidents_pass_pagerduty_validation_whatever_their_size() -> None:
    long_names = _incident(
        service="s" * 300, ranked_services=";".join(["x" * 200] * 40), resource_id="r" * 2000
    )
    long_instance = _incident(evidence=_evidence("bad_deploy").replace(LEAKING, "i" * 3000))
    incidents = pd.DataFrame(
        [_incident(), long_names, long_instance, _incident(end=START + pd.Timedelta(hours=2))]
    )
    events = incident_events(
        incidents,
        links=LINKS,
        known_keys=set(),
        detector_version="1",
        telemetry=_telemetry(),
        catalogue=CATALOGUE,
        mode="stream",
    )
    triggers = [e for e in events if e["event_action"] == "trigger"]
    assert len(triggers) == 4 and [e["event_action"] for e in events].count("resolve") == 1
    for event in events:
        assert alert_event_errors({**event, "routing_key": "k" * 32}) == []
    assert max(len(e["payload"]["summary"]) for e in triggers) == 1024  # cut to PagerDuty's limit
    assert max(len(e["dedup_key"]) for e in triggers) == 255  # hashed to it
    first = triggers[0]
    assert first["payload"]["class"] == "resource_leak" and first["client_url"].startswith(
        "https://grafana.example.com/d/"
    )
    assert first["images"][0]["src"].startswith("https://grafana.example.com/render/d-solo/")
    assert (
        first["payload"]["custom_details"]["raised_by"]
        == "incident pipeline (anomaly-detector v1, stream mode)"
    )


def test_a_malformed_link_or_an_http_image_never_reaches_the_outbox() -> None:
    incident = _incident()
    with pytest.raises(InvalidEventError, match=r"links\[0\]\.href"):
        trigger_event(incident, model_name="m", model_version="1", links=[{"text": "no href"}])
    with pytest.raises(InvalidEventError, match=r"links\[0\]\.text"):
        trigger_event(incident, model_name="m", model_version="1", links=[{"href": "https://x", "text": 3}])
    with pytest.raises(InvalidEventError, match=r"images\[0\]\.src"):
        trigger_event(
            incident, model_name="m", model_version="1", images=[{"src": "http://grafana.local/x.png"}]
        )
    with pytest.raises(InvalidEventError, match="client_url"):
        trigger_event(incident, model_name="m", model_version="1", client_url=7)  # type: ignore[arg-type]


def test_the_incident_pipeline_keys_its_pages_and_keeps_an_older_versions_key() -> None:
    window = START.floor("30min")
    new = incident_dedup_key("cart", window)
    assert new == "foresight/incident-pipeline/cart/2026-12-06T16:00:00Z"
    legacy = dedup_key("anomaly-detector", "cart", window)
    assert incident_dedup_key("cart", window, {legacy}) == legacy  # paged before the upgrade: same key
    assert incident_dedup_key("cart", window, {dedup_key("anomaly-detector", "cart", START)}) == new
    events = incident_events(
        pd.DataFrame([_incident(end=START + pd.Timedelta(hours=1))]),
        links=PageLinks(),
        known_keys={legacy},
        detector_version="2",
    )
    assert [e["dedup_key"] for e in events] == [legacy, legacy]
    assert json.loads(json.dumps(events)) == events  # plain JSON all the way down


def test_the_stream_processor_pages_alike_and_keeps_an_older_versions_key(tmp_path: Path) -> None:
    incident = {k: v for k, v in _incident().items() if k != "end"}
    opened = IncidentEvent("inc-1", "open", "cart", START, incident, 7.08)
    resolved = IncidentEvent("inc-1", "resolved", "cart", START + pd.Timedelta(hours=1), incident, 7.08)
    legacy = dedup_key("anomaly-detector", "cart", START.floor("30min"))
    outbox = Outbox(tmp_path / "pagerduty-events.jsonl")
    outbox.append([resolve_event(legacy)])  # an older version's event for this incident

    class Topic:
        def __init__(self) -> None:
            self.bodies: list[dict] = []

        def incident(self, topic: str, incident_id: str, state: str, body: dict) -> None:
            self.bodies.append(body)

    topic = Topic()
    publish(
        [opened, resolved], outbox=outbox, topic=topic, topic_name="incidents", model_version="4", links=LINKS
    )
    trigger = next(e for e in outbox.read() if e["event_action"] == "trigger")
    assert trigger["dedup_key"] == legacy and {b["dedup_key"] for b in topic.bodies} == {legacy}
    assert trigger["payload"]["summary"].startswith(f"[cart] {NEIGHBOUR}: memory 81 %")
    assert trigger["payload"]["custom_details"]["raised_by"] == "stream processor (anomaly-detector v4)"
    assert [link["text"] for link in trigger["links"]] == [
        "Grafana: cart around the incident",
        "Runbook: memory leak",
    ]
    fresh = Outbox(tmp_path / "other.jsonl")
    publish([opened], outbox=fresh, topic=topic, topic_name="incidents", model_version="4")
    assert fresh.read()[0]["dedup_key"] == incident_dedup_key("cart", START.floor("30min"))


def _rollup_evidence(series: list[dict], max_risk: float | None = None) -> str:
    return evidence_payload(
        series=series,
        ranked_services=["cart"],
        evidence_level=None if not series else 4.5,
        open_threshold=2.0,
        max_risk=max_risk,
    )


def test_evidence_without_values_is_given_them_from_the_telemetry_or_reads_as_unusual() -> None:
    rolled = series_record(
        unique_id=f"cart/{NEIGHBOUR}/cpu_pct",
        service="cart",
        metric="cpu_pct",
        resource_id=NEIGHBOUR,
        surprise=4.5,
    )  # the roll-up knows no observed or expected value
    incident = _incident(evidence=_rollup_evidence([rolled]))
    [event] = incident_events(
        pd.DataFrame([incident]),
        links=PageLinks(),
        known_keys=set(),
        detector_version="1",
        telemetry=_telemetry(),
        catalogue=CATALOGUE,
    )
    assert event["payload"]["summary"].startswith(f"[cart] {NEIGHBOUR}: CPU 54 % (normal 29 %).")
    bare = describe_incident(incident, units=UNITS)
    assert bare.summary.startswith(f"[cart] {NEIGHBOUR}: CPU unusual (as rare as 1 in 10^4.5).")
    assert bare.details["evidence_1"] == f"cart {NEIGHBOUR}: CPU unusual, as rare as 1 in 10^4.5"


def test_a_failure_predictors_warning_leads_with_its_risk_and_strongest_reason() -> None:
    warning = _incident(evidence=_rollup_evidence([], max_risk=0.934), resource_id=None)
    text = describe_incident(warning, top_features=TOP)
    assert text.summary == (
        "[cart]: failure risk 0.93, busiest resource full in ~90 min at its 30min trend. "
        "Since 2026-12-06 16:15Z"
    )
