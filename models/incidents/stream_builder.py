"""The stream mode of the incident pipeline (:class:`StreamBuilder`): the loaded telemetry,
warm-up included, replayed through :mod:`models.incidents.stream` (services grouped along the
call graph, causes ranked, a page budget per system), each incident written in the pipeline's one
table (:data:`~models.incidents.base.INCIDENT_COLUMNS`):

- ``service`` is the top-ranked likely cause and ``ranked_services`` the whole ranking;
- ``start`` is when the stream raised it, ``end`` when it closed (NaT while open);
- ``incident_id`` is :func:`models.incidents.rollup.incident_id` of the service and ``window_start``,
  the start floored to ``resolve_after`` as the roll-up does: two detect runs over overlapping
  data give the same ids, and the PagerDuty outbox de-duplicates on them. Unlike the roll-up's,
  two stream incidents of one service can fall in one such window (a second fault soon after
  the first): the later one's ``window_start`` is its own start, so it gets a page of its own.
  A replay's first steps have a thin baseline, so the flow replays a warm-up span before the
  window it reports;
- ``score`` is the incident's evidence (summed ``-log10 p``) as a tail probability ``1 - 10^-e``,
  the roll-up's scale (a calibrated score), so thresholds and dashboards read both alike; the raw
  evidence stays in the evidence JSON (``evidence_level``);
- ``evidence`` is the record both builders write (:mod:`models.incidents.evidence`): top series
  with surprise, observed and expected values and their ``resource_id``; ``ranked_services``;
  ``evidence_level`` and the system's ``open_threshold`` when it opened; the likely fault type
  and its confidence (:mod:`models.incidents.fault_types`: ``fault_type``,
  ``fault_type_confidence``), so a page can say what to do; with a calibrated page budget its
  ``page_score``: the chance that a normal day of the system holds no episode as large;
- ``resource_id`` is that of the top-ranked service's most surprising evidence series;
- category is the stream's (in the roll-up's vocabulary); severity is the stream's, by the rule
  both builders share (:func:`models.incidents.evidence.severity`: the evidence level against
  the opening threshold it crossed).

How its false alarms on the simulator were brought down (the error family's materiality floor)
and its figures: docs/incidents.md.

Durations in :class:`~models.incidents.settings.StreamSettings` are in steps, chosen at 1-minute
sampling. At 5-minute steps the statistical ones still fit (a 30-sample baseline spans 2.5 hours,
five samples before scoring 25 minutes); the episode ones stretch five-fold: a service calms
after 15 minutes (the roll-up waits 30), a run of outliers becomes the new normal after 75, and
a closed incident re-opens within 75 (docs/incidents.md: they did not drive its false alarms).

Pure: frames in, a frame out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from foresight.plugins import declares
from foresight.schemas import UTC_DTYPE, require_columns
from models.incidents.base import (
    INCIDENT_BUILDERS,
    INCIDENT_COLUMNS,
    BuiltIncidents,
    IncidentInputs,
    incident_id,
    no_incidents,
)
from models.incidents.call_graph import call_graph_systems
from models.incidents.evidence import evidence_payload, series_record
from models.incidents.replay import replay_stream
from models.incidents.rollup_builder import RollupBuilder
from models.incidents.settings import PipelineSettings, RollupSettings, StreamParams, StreamSettings
from models.incidents.stream_resume import (
    Resumed,
    StateKey,
    StreamState,
    reported_frame,
    resume_stream,
    settings_hash,
)

_MAX_SURPRISE = 12.0  # evidence beyond 1e-12 is as certain as a float score can say


@dataclass(frozen=True)
class StreamBuilder:
    """The stream mode as an :class:`~models.incidents.base.IncidentBuilder`: ``inputs.telemetry``
    (warm-up included) replayed through :class:`~models.incidents.stream.IncidentStream` with
    ``stream`` settings and ``inputs.calibration`` as the page budget's prior; the incidents
    opened at or after ``inputs.since`` in the table above, then the failure predictor's warnings
    (``inputs.risk`` alone, at ``rollup.risk_threshold``) on services the stream does not cover at
    the time (:func:`with_risk_warnings`). ``rollup.resolve_after`` floors the identity window.
    Without a call graph every service is ranked on its own evidence, and all services are one
    system."""

    stream: StreamSettings = field(default_factory=StreamSettings)
    rollup: RollupSettings = field(default_factory=RollupSettings)
    name: str = "stream"
    needs_scores: bool = False

    def build(self, inputs: IncidentInputs) -> BuiltIncidents:
        require_columns(inputs.telemetry, ["unique_id", "ds", "y"], "telemetry")
        require_columns(inputs.catalogue, ["unique_id", "service", "metric"], "catalogue")
        streamed, thresholds = no_incidents(), {}
        if not inputs.telemetry.empty:
            raised, stream = replay_stream(inputs.telemetry, inputs.catalogue, inputs.call_graph or {}, self.stream,
                                           inputs.calibration)
            thresholds = stream.calibrated_thresholds()
            if inputs.since is not None:
                raised = raised[raised["opened_at"] >= pd.Timestamp(inputs.since)]
            if len(raised):
                streamed = incident_rows(raised, inputs.catalogue, pd.Timedelta(self.rollup.resolve_after))
        warnings = RollupBuilder(self.rollup).risk_warnings(inputs)
        return BuiltIncidents(with_risk_warnings(streamed, warnings), thresholds)

    def state_key(self, inputs: IncidentInputs, model_version: str) -> StateKey:
        """The key a :class:`~models.incidents.stream_resume.StreamState` of these inputs is kept
        under: the model's version and a hash of the settings, calibration and call graph."""
        return StateKey(str(model_version), settings_hash(self.stream, pd.Timedelta(self.rollup.resolve_after),
                                                          inputs.calibration, inputs.call_graph))

    def resume(self, inputs: IncidentInputs, state: StreamState | None, model_version: str, *,
               no_state_reason: str = "no checkpoint") -> tuple[BuiltIncidents, Resumed | None]:
        """:meth:`build`, with the stream resumed from ``state`` when it fits (only the steps after
        its last one are fed; :mod:`models.incidents.stream_resume`), else replayed from the first
        step; also what was resumed (None without telemetry). The incidents reported are those
        opened at or after ``inputs.since`` plus earlier ones still awaiting their resolve, each
        with the identity it was first reported with."""
        require_columns(inputs.telemetry, ["unique_id", "ds", "y"], "telemetry")
        require_columns(inputs.catalogue, ["unique_id", "service", "metric"], "catalogue")
        warnings = RollupBuilder(self.rollup).risk_warnings(inputs)
        if inputs.telemetry.empty:
            return BuiltIncidents(with_risk_warnings(no_incidents(), warnings), {}), None
        resumed = resume_stream(
            inputs.telemetry, inputs.catalogue, inputs.call_graph or {}, self.stream, inputs.calibration,
            key=self.state_key(inputs, model_version), state=state,
            identity_window=pd.Timedelta(self.rollup.resolve_after), since=inputs.since,
            no_state_reason=no_state_reason,
        )
        streamed = no_incidents()
        if resumed.reported:
            # Ordered as incident_rows orders its rows (start, then service; one incident per
            # service and step), so each row takes its incident's fixed identity by position.
            reported = sorted(resumed.reported, key=lambda t: (t.incident.opened_at, t.incident.services[0]))
            streamed = incident_rows(reported_frame(reported), inputs.catalogue,
                                     pd.Timedelta(self.rollup.resolve_after))
            streamed["window_start"] = pd.Series([t.window_start for t in reported],
                                                 dtype=streamed["window_start"].dtype)
            streamed["incident_id"] = pd.Series([t.incident_id for t in reported], dtype="string")
        thresholds = resumed.state.stream.calibrated_thresholds()
        return BuiltIncidents(with_risk_warnings(streamed, warnings), thresholds), resumed

    def systems(self, services: Sequence[str], call_graph: Mapping[str, Sequence[str]] | None) -> dict[str, str]:
        """Connected parts of the call graph, each named by its first service in name order."""
        numbers = call_graph_systems(sorted(str(s) for s in services), call_graph or {})
        names: dict[int, str] = {}
        for service, number in numbers.items():  # sorted: the first one names the system
            names.setdefault(number, service)
        return {service: names[number] for service, number in numbers.items()}


@INCIDENT_BUILDERS.register("stream")
@declares(StreamParams)
def stream_builder(settings: PipelineSettings) -> StreamBuilder:
    """The stream mode with the pipeline's stream settings (and the roll-up's, for risk warnings
    and the identity window)."""
    return StreamBuilder(settings.stream, settings.rollup)


def incident_rows(raised: pd.DataFrame, catalogue: pd.DataFrame, resolve: pd.Timedelta) -> pd.DataFrame:
    """:func:`models.incidents.replay.replay` rows as detect-flow incidents (:data:`INCIDENT_COLUMNS`)."""
    resources = _resource_of(catalogue)
    ranked = raised["services"].astype(str)
    service = ranked.str.split(";").str[0]
    start = raised["opened_at"].astype(UTC_DTYPE)
    faults = zip(
        raised.get("fault_type", pd.Series("unknown", index=raised.index)),
        raised.get("fault_type_confidence", pd.Series(0.0, index=raised.index)),
        strict=True,
    )
    evidence = [
        _evidence_json(e, level, resources, fault)
        for e, level, fault in zip(raised["evidence"], raised["score"], faults, strict=True)
    ]
    out = pd.DataFrame(
        {
            "service": service.astype("string"),
            "category": raised["category"].astype("string"),
            "start": start,
            "end": raised["closed_at"].astype(UTC_DTYPE),
            "severity": raised["severity"].astype("string"),
            "score": tail_score(raised["score"].to_numpy(dtype="float64")),
            "evidence": pd.Series(evidence, index=raised.index, dtype="string"),
            "window_start": start.dt.floor(resolve),
            "resource_id": [
                _top_resource(e, s, resources) for e, s in zip(raised["evidence"], service, strict=True)
            ],
            "ranked_services": ranked.astype("string"),
        }
    )
    out["resource_id"] = out["resource_id"].astype("string")
    out = out.sort_values(["start", "service"], kind="stable")
    # The stream pages a fresh problem on a service even soon after the last one (Nezha injects
    # faults 8.5 minutes apart): a later incident in a window its service already opened one in
    # keys by its own start, or its page would be taken for the first one's and dropped.
    repeat = out.groupby(["service", "window_start"], observed=True).cumcount() > 0
    out["window_start"] = out["window_start"].where(~repeat, out["start"])
    out["incident_id"] = pd.Series(
        [incident_id(s, w) for s, w in zip(out["service"], out["window_start"], strict=True)],
        index=out.index,
        dtype="string",
    )
    return out[list(INCIDENT_COLUMNS)].sort_values(["start", "service"]).reset_index(drop=True)


def tail_score(evidence: np.ndarray) -> np.ndarray:
    """Summed ``-log10 p`` evidence as the probability-like score ``1 - 10^-e`` of the roll-up."""
    return 1.0 - np.power(10.0, -np.clip(evidence, 0.0, _MAX_SURPRISE))


def _resource_of(catalogue: pd.DataFrame) -> dict[str, str]:
    """Series id -> its resource (the service when the catalogue names none)."""
    cat = catalogue.drop_duplicates("unique_id")
    resource = cat["resource_id"] if "resource_id" in cat.columns else cat["service"]
    return {
        str(u): str(r if pd.notna(r) else s)
        for u, r, s in zip(cat["unique_id"], resource, cat["service"], strict=True)
    }


def _series_resource(unique_id: str, resources: Mapping[str, str]) -> str | None:
    """A series' resource; a derived series (``<id>#wire``) is on the resource it derives from."""
    return resources.get(unique_id) or resources.get(unique_id.split("#", 1)[0])


def _top_resource(evidence: str, service: str, resources: Mapping[str, str]) -> str | None:
    """The resource of ``service``'s most surprising evidence series (None when it has none)."""
    for series in json.loads(evidence).get("series", []):  # most surprising first
        if series.get("service") == service:
            return _series_resource(str(series["unique_id"]), resources)
    return None


def _evidence_json(
    evidence: str, level: float, resources: Mapping[str, str], fault: tuple[str, float] = ("unknown", 0.0)
) -> str:
    """The stream's evidence as the shared record (:func:`models.incidents.evidence.evidence_payload`),
    whatever the engine row held: each series' ``resource_id`` from the catalogue (the engine's
    where the catalogue does not know the series), ``evidence_level`` the row's raw evidence
    ``level`` and the likely ``fault_type`` with its ``fault_type_confidence`` from the row's
    columns (:mod:`models.incidents.fault_types`)."""
    payload = json.loads(evidence)
    series = [
        series_record(
            unique_id=str(s["unique_id"]),
            service=s.get("service"),
            metric=s.get("metric"),
            kind=s.get("kind"),
            resource_id=_series_resource(str(s["unique_id"]), resources) or s.get("resource_id"),
            surprise=s.get("surprise"),
            observed=s.get("observed"),
            expected=s.get("expected"),
            anomalous_samples=s.get("anomalous_samples"),
        )
        for s in payload.get("series", [])
    ]
    return evidence_payload(
        series=series,
        ranked_services=payload.get("ranked_services"),
        evidence_level=float(level),
        open_threshold=payload.get("open_threshold"),
        fault_type=str(fault[0]),
        fault_type_confidence=float(fault[1]),
        max_risk=payload.get("max_risk"),
        anomalous_series=payload.get("anomalous_series"),
        page_score=payload.get("page_score"),
    )


def with_risk_warnings(streamed: pd.DataFrame, warnings: pd.DataFrame) -> pd.DataFrame:
    """``streamed`` incidents and the failure predictor's ``warnings`` (the roll-up's incidents
    raised by risk alone) as one page per problem: the stream reads telemetry that already went
    wrong, the predictor warns before it does.

    A warning on a service that a streamed incident covers at the time (their spans overlap; an
    open one, NaT ``end``, covers everything after its start) is that incident: when it came
    first the incident takes its ``start``, ``window_start`` and ``incident_id``, so it shares
    the warning's ``dedup_key`` and there is no second page (the outbox keeps one trigger per
    key: PagerDuty shows the warning's details, the report and annotations the incident's; the
    incident's resolve closes the page). Other warnings are incidents of their own, ranked by
    their own service when they have no ranking.
    """
    if warnings.empty:
        return streamed
    warnings = warnings.copy()
    if "ranked_services" not in warnings.columns:
        warnings["ranked_services"] = warnings["service"]
    warnings["ranked_services"] = warnings["ranked_services"].fillna(warnings["service"]).astype("string")
    never = pd.Timestamp.max.tz_localize("UTC")
    warned_end = warnings["end"].fillna(never)
    merged = streamed.copy()
    covered = pd.Series(False, index=warnings.index)
    for i, row in streamed.iterrows():
        end = row["end"] if pd.notna(row["end"]) else never
        overlap = (warnings["service"] == row["service"]) & (warnings["start"] <= end) & (warned_end >= row["start"])
        covered |= overlap
        earlier = warnings[overlap & (warnings["start"] < row["start"])]
        if len(earlier):
            first = earlier.sort_values("start").iloc[0]
            merged.loc[i, ["start", "window_start", "incident_id"]] = [
                first["start"], first["window_start"], first["incident_id"]
            ]
    kept = warnings.loc[~covered, list(INCIDENT_COLUMNS)]
    parts = [frame for frame in (merged, kept) if len(frame)]
    if not parts:
        return streamed
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return out.sort_values(["start", "service"]).reset_index(drop=True)
