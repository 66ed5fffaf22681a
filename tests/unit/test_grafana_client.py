"""Grafana client against the request-validating fake Grafana API (tests/support/fake_grafana.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd
import pytest

from connectors.sinks.grafana import (
    GrafanaAuthError,
    GrafanaClient,
    GrafanaConflictError,
    GrafanaError,
    dashboard_payload,
    epoch_ms,
    incident_annotation,
    publish_annotations,
)
from dashboards.build import build_all
from support.fake_grafana import FakeGrafana

TOKEN = "glsa_test"
T0 = pd.Timestamp("2026-03-01T10:00", tz="UTC")


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with FakeGrafana(token=TOKEN) as fake:
        yield fake


def _incidents(end: pd.Timestamp | None = None) -> pd.DataFrame:
    evidence = json.dumps({"series": [{"unique_id": "checkout/i-01/mem_pct"}], "max_risk": 0.7})
    return pd.DataFrame(
        {
            "incident_id": ["inc-aaa", "inc-bbb"],
            "service": ["checkout", "cart"],
            "category": ["resource_leak", "errors"],
            "severity": ["critical", "warning"],
            "start": pd.Series([T0, T0 + pd.Timedelta("1h")], dtype="datetime64[us, UTC]"),
            "end": pd.Series([end, T0 + pd.Timedelta("2h")], dtype="datetime64[us, UTC]"),
            "evidence": [evidence, ""],
        }
    )


def test_uploads_every_dashboard_with_the_documented_body(grafana: FakeGrafana) -> None:
    with GrafanaClient(grafana.url, TOKEN) as client:
        for board in build_all().values():
            result = client.upload_dashboard(board, folder_uid="foresight", message="foresight publish")
            assert result.uid == board["uid"] and result.version == 1
            assert result.url.startswith(f"/d/{board['uid']}/")
        again = client.upload_dashboard(build_all()["foresight-capacity.json"], folder_uid="foresight")
    assert again.version == 2  # overwrite replaced the same uid
    request = grafana.requests[0]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert set(request.body) == {"dashboard", "overwrite", "folderUid", "message"}
    assert request.body["overwrite"] is True and request.body["dashboard"]["id"] is None
    assert grafana.dashboards["foresight-capacity"]["folderUid"] == "foresight"


def test_wrong_token_is_an_auth_error(grafana: FakeGrafana) -> None:
    with GrafanaClient(grafana.url, "wrong") as client, pytest.raises(GrafanaAuthError) as caught:
        client.upload_dashboard(build_all()["foresight-capacity.json"])
    assert caught.value.status == 401 and grafana.dashboards == {}


def test_save_without_overwrite_over_a_newer_version_is_a_conflict(grafana: FakeGrafana) -> None:
    board = build_all()["foresight-incidents.json"]
    with GrafanaClient(grafana.url, TOKEN) as client:
        client.upload_dashboard(board)
        with pytest.raises(GrafanaConflictError) as caught:
            client.upload_dashboard(board, overwrite=False)
        assert caught.value.status == 412 and caught.value.reason == "version-mismatch"
        with pytest.raises(GrafanaConflictError) as caught:
            client.upload_dashboard({**board, "uid": "another-uid"}, overwrite=False)
        assert caught.value.reason == "name-exists"
        with pytest.raises(GrafanaError, match="folder not found"):
            client.upload_dashboard(board, folder_uid="no-such-folder")


def test_dashboard_payload_validates_identity() -> None:
    with pytest.raises(ValueError, match="uid"):
        dashboard_payload({"title": "x"})
    with pytest.raises(ValueError, match="uid"):
        dashboard_payload({"title": "x", "uid": "u" * 41})
    with pytest.raises(ValueError, match="title"):
        dashboard_payload({"uid": "u", "title": " "})
    assert "folderUid" not in dashboard_payload({"uid": "u", "title": "t"})


def test_incident_annotation_body() -> None:
    open_, closed = _incidents().to_dict("records")
    body = incident_annotation(open_, dashboard_uid="foresight-incidents")
    assert body["time"] == epoch_ms(T0) == 1772359200000 and "timeEnd" not in body
    assert body["tags"] == [
        "foresight",
        "incident",
        "service:checkout",
        "severity:critical",
        "incident:inc-aaa",
    ]
    assert "(open)" in body["text"] and "checkout/i-01/mem_pct" in body["text"]
    assert body["dashboardUID"] == "foresight-incidents"
    assert incident_annotation(closed)["timeEnd"] == epoch_ms(T0 + pd.Timedelta("2h"))
    with pytest.raises(ValueError, match="timezone"):
        epoch_ms(pd.Timestamp("2026-03-01"))


def test_annotations_are_not_duplicated_across_runs_and_follow_resolution(grafana: FakeGrafana) -> None:
    with GrafanaClient(grafana.url, TOKEN) as client:
        client.upload_dashboard(build_all()["foresight-incidents.json"])
        first = publish_annotations(_incidents(), client, dashboard_uid="foresight-incidents")
        again = publish_annotations(_incidents(), client, dashboard_uid="foresight-incidents")
        resolved = publish_annotations(
            _incidents(end=T0 + pd.Timedelta("30min")), client, dashboard_uid="foresight-incidents"
        )
    assert first.created == ["inc-aaa", "inc-bbb"] and not first.updated
    assert again.unchanged == ["inc-aaa", "inc-bbb"] and not again.created and not again.updated
    assert resolved.updated == ["inc-aaa"] and resolved.unchanged == ["inc-bbb"]
    assert len(grafana.annotations) == 2
    stored = next(a for a in grafana.annotations.values() if "incident:inc-aaa" in a["tags"])
    assert stored["timeEnd"] == epoch_ms(T0 + pd.Timedelta("30min")) and "(resolved)" in stored["text"]
    posts = [r for r in grafana.requests if r.method == "POST" and r.path == "/api/annotations"]
    assert len(posts) == 2 and all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in posts)
    lookups = [r for r in grafana.requests if r.method == "GET"]
    assert lookups[0].query["tags"] == ["incident:inc-aaa"] and lookups[0].query["type"] == ["annotation"]


def test_annotation_for_an_unknown_dashboard_fails_loudly(grafana: FakeGrafana) -> None:
    with GrafanaClient(grafana.url, TOKEN) as client, pytest.raises(GrafanaError) as caught:
        publish_annotations(_incidents(), client, dashboard_uid="missing")
    assert caught.value.status == 404


def test_fake_grafana_rejects_what_grafana_rejects(grafana: FakeGrafana) -> None:
    """The fake is only useful if it refuses malformed requests: seconds instead of ms, no text."""
    with GrafanaClient(grafana.url, TOKEN) as client:
        with pytest.raises(GrafanaError) as caught:
            client.create_annotation({"time": 1772359200, "text": "x", "tags": []})
        assert caught.value.status == 400 and "milliseconds" in str(caught.value)
        with pytest.raises(GrafanaError, match="text"):
            client.create_annotation({"time": 1772359200000, "text": "", "tags": []})
        with pytest.raises(GrafanaError, match="Dashboard title"):
            client._call("POST", "/api/dashboards/db", json_body={"dashboard": {"uid": "u", "title": ""}})


def test_one_refused_incident_does_not_stop_the_others(grafana: FakeGrafana) -> None:
    refuse = grafana.add_annotation

    def add_annotation(body):  # Grafana refusing one annotation (e.g. a storage error)
        if "service:cart" in body.get("tags", []):
            return 500, {"message": "Failed to save annotation"}
        return refuse(body)

    grafana.add_annotation = add_annotation  # type: ignore[method-assign]
    with GrafanaClient(grafana.url, TOKEN) as client:
        report = publish_annotations(_incidents(), client)
    assert report.created == ["inc-aaa"] and list(report.failed) == ["inc-bbb"]
    assert "Failed to save annotation" in report.failed["inc-bbb"]


# -- answers Foresight cannot read: one line, never a KeyError -----------------------------------
PROXY_PAGE = """<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx/1.25.3</center>
</body>
</html>
"""
LOGIN_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form>...</form></body></html>\n"
)

MALFORMED_UPLOADS = [
    (
        "200 without uid",
        200,
        '{"id": 1, "url": "/d/x/y", "version": 1, "status": "success"}',
        "application/json",
        "answer without 'uid'",
    ),
    (
        "200 version not a number",
        200,
        '{"uid": "u", "url": "/d/u/x", "version": "one"}',
        "application/json",
        "bad 'version'",
    ),
    ("200 JSON list", 200, "[]", "application/json", "expected a JSON object"),
    (
        "200 login page",
        200,
        LOGIN_PAGE,
        "text/html; charset=utf-8",
        "not JSON (text/html; charset=utf-8): Sign in",
    ),
    ("200 empty body", 200, "", "", "not JSON (no content type): empty body"),
    (
        "200 cut-off JSON",
        200,
        '{"uid": "foresight-capa',
        "application/json",
        'not JSON (application/json): {"uid"',
    ),
    (
        "502 from a proxy",
        502,
        PROXY_PAGE,
        "text/html",
        "HTTP 502: 502 Bad Gateway 502 Bad Gateway nginx/1.25.3",
    ),
]


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [c[1:] for c in MALFORMED_UPLOADS],
    ids=[c[0] for c in MALFORMED_UPLOADS],
)
def test_an_unreadable_dashboard_answer_is_a_one_line_grafana_error(
    grafana: FakeGrafana, status: int, body: str, content_type: str, expected: str
) -> None:
    from foresight.errors import ForesightError

    grafana.misbehave("POST", "/api/dashboards/db", status, body, content_type)
    with GrafanaClient(grafana.url, TOKEN) as client, pytest.raises(GrafanaError) as caught:
        client.upload_dashboard(build_all()["foresight-capacity.json"])
    error = caught.value
    assert isinstance(error, ForesightError) and error.status == status
    message = str(error)
    assert message.startswith("Grafana POST /api/dashboards/db answered HTTP ") and expected in message
    assert "\n" not in message and len(message) < 400
    assert error.retryable == (status >= 500)  # a proxy's 502 may pass; a malformed 200 will not


MALFORMED_ANNOTATION_ANSWERS = [
    ("find: an object", "GET", '{"message": "ok"}', "expected a JSON list"),
    ("find: items are not objects", "GET", "[1, 2]", "expected a list of annotation objects"),
    (
        "find: item without id",
        "GET",
        '[{"time": 1772359200000, "tags": ["incident:inc-aaa"]}]',
        "without 'id'",
    ),
    ("find: time as text", "GET", '[{"id": 3, "time": "yesterday"}]', "bad 'time'"),
    ("create: without id", "POST", '{"message": "Annotation added"}', "without 'id'"),
]


@pytest.mark.parametrize(
    ("method", "body", "expected"),
    [c[1:] for c in MALFORMED_ANNOTATION_ANSWERS],
    ids=[c[0] for c in MALFORMED_ANNOTATION_ANSWERS],
)
def test_an_unreadable_annotation_answer_fails_publish_with_a_grafana_error(
    grafana: FakeGrafana, method: str, body: str, expected: str
) -> None:
    grafana.misbehave(method, "/api/annotations", 200, body)
    with GrafanaClient(grafana.url, TOKEN) as client, pytest.raises(GrafanaError) as caught:
        publish_annotations(_incidents(), client)  # every incident fails the same way: raised
    message = str(caught.value)
    assert (
        message.startswith(f"Grafana {method} /api/annotations answered HTTP 200: ") and expected in message
    )
    assert "\n" not in message


def test_grafana_errors_say_whether_waiting_can_help(grafana: FakeGrafana) -> None:
    grafana.misbehave("POST", "/api/annotations", 503, '{"message": "database is locked"}')
    with GrafanaClient(grafana.url, TOKEN) as client:
        with pytest.raises(GrafanaError) as unavailable:
            client.create_annotation({"time": 1772359200000, "text": "x", "tags": []})
        with pytest.raises(GrafanaError) as refused:  # 400 from the real (fake) Grafana
            client.upload_dashboard({**build_all()["foresight-capacity.json"], "uid": "bad uid!"})
    assert unavailable.value.retryable and str(unavailable.value).endswith("HTTP 503: database is locked")
    assert not refused.value.retryable and refused.value.status == 400
