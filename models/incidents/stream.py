"""Streaming incidents: one time step of telemetry at a time in, incidents out as they are raised.

The pipeline an on-call engineer would want running every minute on a microservice system:

1. **surprise** of every series from its own past (:mod:`models.incidents.surprise`), counting
   only the harmful direction (latency, CPU, memory up; a success rate is judged on its failed
   share; any failed-request share, an error ratio too, has an absolute floor of
   ``error_floor`` percentage points: :func:`~models.incidents.share_units.failed_share_unit`),
   with a clean baseline (outliers kept out of it, a fault's run of outliers learned as one event
   ``learn_delay`` steps after it ended), so a fault neither masks the next one nor makes the
   return to normal look odd;
2. **wire latency**: for every call edge measured from both ends, the caller's view minus the
   callee's (:func:`~models.incidents.wire_latency.wire_pairs`) is the time spent between them:
   it grows under a network delay on the callee while the callee's own time does not. Edge
   evidence belongs to the callee;
3. **families**: series that measure one thing at once (p90 / p95 / p99 of one latency, CPU in
   millicores and in %, an edge's caller view and the wire latency derived from it) collapse to
   their largest surprise (:func:`~models.incidents.metric_vocabulary.metric_family`), so one
   noisy measurement counts once;
4. **service roll-up**: a service's evidence is the *sum* of its ``corroboration`` largest family
   surprises over the kinds that describe it (:data:`models.incidents.category.OWN_KINDS`): summed
   ``-log10 p`` is the log of the joint probability of independent measurements all being this far
   out, so two pieces of evidence agreeing beat one loud spike. Traffic and node metrics follow
   load and neighbours and are kept out. A failed-request family (a success rate) counts
   ``error_weight`` times: failed requests are the users' harm itself and need no corroboration
   (a distribution-free bound alone cannot put even a 50 % failure share below p ~ 1e-5), once
   the failed share is ``error_material`` (3) percentage points above its expected level (a
   common paging level for error rates, ~30x the budget of a 99.9 % SLO); a blip of a point or
   two counts once and needs a second measurement agreeing. 3 sits in the gap between the
   simulator's benign error blips and the smallest failed-request fault of the Nezha dev day:
   read it as "a few points", not as a fitted optimum (the sweep: docs/incidents.md, *How the
   stream's settings were chosen*);
5. **episodes per service**: a service *fires* when its evidence reaches ``open_threshold`` from
   calm (or, while still active, when families that were calm for ``resolve_after`` steps alone
   reach it: a second fault on a service still showing the after-effects of the first), and calms
   down after ``resolve_after`` steps below ``sustain_threshold``. With a page budget
   (``page_budget_per_day``, 2 by default; :mod:`models.incidents.page_budget`) the opening threshold is
   each system's own, the level its normal evidence reaches that many times a day, fitted online
   from the steps seen so far and starting from ``open_threshold`` (or a trained calibration),
   never below it; ``sustain_threshold`` and ``split_threshold`` keep their ratio to it;
6. **incidents**: a firing service opens an incident unless an open one explains it (it is in its
   first ``rank_window`` steps, or the service calls a member that is firing right now: problems
   travel upstream). A second incident while one is open needs ``split_threshold`` (a weaker
   firing is not paged, but may fire again once the open incidents close). An incident closes
   when none of its member services is active. All of this holds within one *system*, a
   connected part of the call graph (:func:`~models.incidents.call_graph.call_graph_systems`):
   services with no call path between them never share an incident, a ranking or the
   ``split_threshold``, so a fleet of unrelated applications pages once per problem, not once per
   moment. Without a call graph every service is taken to be one system (co-occurring problems
   group by time alone);
7. at opening, services are **ranked** by :func:`models.incidents.rca.rank_root_causes` (``degree_neutral``:
   a caller is not drained by the number of its callees) over the evidence of
   the last ``rank_window`` steps (services claimed by another open incident left out; a
   failed-request family weighed as at the step it peaked), the incident gets a **category**
   from the kinds anomalous at the top service and its disk being full
   (:func:`models.incidents.category.categorise`), a likely **fault type** with a confidence
   (:func:`models.incidents.fault_types.classify_fault`), a **severity** (its evidence level against
   the opening threshold it crossed) and an **evidence** record (top series: surprise, observed and
   expected values), both by the rules the roll-up shares (:mod:`models.incidents.evidence`).
   Without a call graph the ranking is the services' own evidence; the graph refines it. With
   ``refine_ranking`` (the default) the ranking, category, fault type and evidence are revised at
   each step while the incident unfolds (its first ``rank_window`` steps): the incident keeps the peaks seen since its opening look-back and adds
   the runs of anomaly that began since (a root that fired a minute late), not the growth of a run
   already under way before it (a callee still smouldering from an earlier problem).
   ``inherited_weight`` (1: off) discounts the kinds a caller inherits from a slow or failing
   callee (latency, failed requests) against a service's own resources and the wire
   (:func:`models.incidents.rca.evidence_weights`).
   With ``rank_onsets`` the ranking counts only families whose current run of anomaly began after
   ``resolve_after`` calm steps (:func:`onset_runs`): a measurement that keeps flickering is
   chronic noise, not the start of this problem, and must not take the blame for it;
8. **flaps re-open**: a service that fires again at most ``reopen_within`` steps after an
   incident it belonged to (as a member or its top-ranked cause) closed, with nothing open
   explaining it, re-opens that incident (no new page, its end extended, ``reopened`` counted)
   when the firing is *not a fresh onset*: the families carrying it were anomalous within the last
   ``resolve_after`` steps, so the problem smouldered below ``sustain_threshold`` and flared up
   again. A firing carried by families that were calm for ``resolve_after`` steps is a new problem
   and pages anew, the same test that tells a second fault on a still-active service (step 5):
   re-opening on time alone swallowed real faults injected minutes apart on one service
   (docs/incidents.md, *How the stream's settings were chosen*).

Causal: :meth:`IncidentStream.step` uses only the samples given so far. Pure: no I/O. Replaying
a frame through it: :mod:`models.incidents.replay`; its knobs:
:class:`~models.incidents.settings.StreamSettings`.

Longer than 400 lines because :class:`IncidentStream` is one algorithm over
one per-step state (opening, joining, re-opening, closing and ranking incidents all read and move
the same arrays), which split across modules would be scattered, not simpler.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from foresight.schemas import require_columns
from models.incidents.call_graph import call_graph_systems, transitive_callers
from models.incidents.category import (
    OWN_KINDS,
    categorise,
    exhausted_kinds,
    metric_direction,
    metric_kind,
)
from models.incidents.evidence import evidence_payload, series_record, severity
from models.incidents.fault_types import FaultEvidence, classify_fault
from models.incidents.metric_vocabulary import metric_family
from models.incidents.page_budget import PageBudget
from models.incidents.rca import evidence_weights, rank_root_causes
from models.incidents.settings import StreamSettings
from models.incidents.share_units import failed_share_unit, is_success_rate
from models.incidents.surprise import StreamingSurprise
from models.incidents.wire_latency import wire_pairs


@dataclass
class StreamIncident:
    """An incident as raised: when, ranked services, category, score, severity, evidence."""

    opened_at: pd.Timestamp
    services: list[str]
    category: str
    score: float
    severity: str
    evidence: str
    closed_at: pd.Timestamp | None = None
    peak: float = field(default=0.0, repr=False)
    members: set[str] = field(default_factory=set, repr=False)  # services whose activity it explains
    age: int = field(default=0, repr=False)  # steps since it was opened
    reopened: int = 0  # times it closed and then flared up again (re-opened, not paged anew)
    closed_step: int = field(default=-1, repr=False)  # the stream step at which it last closed
    system: int = field(default=0, repr=False)  # the part of the call graph all its members are in
    fault_type: str = "unknown"  # the likely fault (models.incidents.fault_types.FAULT_TYPES)
    fault_type_confidence: float = 0.0
    fault_evidence: FaultEvidence | None = field(default=None, repr=False)  # what the fault type read
    threshold: float = field(default=0.0, repr=False)  # the system's opening threshold when it opened
    page_score: float | None = field(default=None, repr=False)  # models.incidents.page_budget score at opening
    # Peaks seen since the opening look-back (kept while the ranking is refined): per family its
    # ranking evidence, per series its (surprise, observed, expected) at its most surprising step.
    family_evidence: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    series_peaks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)


def onset_runs(hot: np.ndarray, calm: np.ndarray, onset: np.ndarray, resolve_after: int) -> np.ndarray:
    """Per family: whether its current run of anomaly (``hot`` now) began after at least
    ``resolve_after`` calm steps. ``calm`` counts the calm steps before this one (0: hot at the
    last step), ``onset`` is the previous result. A family that is not hot is no onset."""
    started = hot & (calm > 0)
    return np.where(started, calm >= resolve_after, onset & hot)


class IncidentStream:
    """Feeds one time step at a time; returns the incidents raised at that step (see module doc)."""

    def __init__(
        self,
        catalogue: pd.DataFrame,
        call_graph: Mapping[str, Sequence[str]],
        settings: StreamSettings | None = None,
        calibration: Mapping[str, float] | None = None,
    ) -> None:
        """``calibration``: trained opening thresholds per service (:meth:`calibrated_thresholds`
        of an earlier stream), the page budget's prior before its own fit; ignored without a budget."""
        require_columns(catalogue, ["unique_id", "service", "metric"], "catalogue")
        cat = catalogue.drop_duplicates("unique_id").reset_index(drop=True)
        if cat.empty:
            raise ValueError("catalogue is empty: nothing to watch")
        self.settings = settings or StreamSettings()
        self.call_graph = {str(k): tuple(v) for k, v in call_graph.items()}
        self.series = pd.Index(cat["unique_id"].astype(str))  # the inputs of step(), in order
        if "resource_id" not in cat.columns:
            cat = cat.assign(resource_id=cat["service"])
        pairs = wire_pairs(cat) if self.settings.wire_latency else []
        index = {uid: i for i, uid in enumerate(self.series)}
        self._wire_from = np.array([index[a] for a, _, _ in pairs], dtype=int)
        self._wire_less = np.array([index[b] for _, b, _ in pairs], dtype=int)
        derived = cat.set_index("unique_id").loc[[a for a, _, _ in pairs]].reset_index()
        derived["metric"] = [m for _, _, m in pairs]
        derived["unique_id"] = [f"{a}#wire" for a, _, _ in pairs]
        cat = pd.concat([cat, derived], ignore_index=True) if pairs else cat
        self.scored_series = pd.Index(cat["unique_id"].astype(str))  # inputs, then derived series
        self.service = cat["service"].astype(str).to_numpy()
        self.metric = cat["metric"].astype(str).to_numpy()
        self.kind = np.array([metric_kind(m) for m in self.metric])
        resource = cat["resource_id"].astype(str).to_numpy()
        # What the evidence names as each series' resource: the service where the catalogue names none.
        self.resource_id = (
            cat["resource_id"].where(cat["resource_id"].notna(), cat["service"]).astype(str).to_numpy()
        )
        self.services = sorted(set(self.service) | set(self.call_graph))
        s = self.settings
        unit = cat["unit"].fillna("").astype(str).to_numpy() if "unit" in cat.columns else np.full(len(cat), "")
        self.unit = unit
        success = np.array([is_success_rate(m) for m in self.metric], dtype=bool)
        share_unit = np.array([failed_share_unit(m, u) for m, u in zip(self.metric, unit, strict=True)])
        direction = np.array([metric_direction(m) for m in self.metric])  # harmful way: +1 / -1 / 0
        self._scorer = StreamingSurprise(
            direction,
            window=s.window,
            min_history=s.min_history,
            prior_weight=s.prior_weight,
            # A success rate is judged on its failed share: no floor relative to its ~100 % level.
            # Any share of failed requests (an error ratio near 0 as much as a success rate near
            # 100 %) moves by at least error_floor percentage points before it is news.
            rel_floor=np.where(success, 0.0, 0.05),
            abs_floor=share_unit * s.error_floor,
            floor_of=np.concatenate([np.arange(len(self.series)), self._wire_from]).astype(int),
            gate=s.gate,
            max_hold=s.max_hold,
            learn_delay=s.learn_delay,
        )
        own = np.isin(self.kind, sorted(OWN_KINDS))
        # A wire latency is one family with the caller's view it is derived from: one measurement.
        family_metric = np.concatenate([self.metric[: len(self.series)], self.metric[self._wire_from]])
        keys = [
            f"{sv}\x1f{r}\x1f{metric_family(m)}"
            for sv, r, m in zip(self.service, resource, family_metric, strict=True)
        ]
        family_keys = sorted({k for k, o in zip(keys, own, strict=True) if o})
        family_index = {k: i for i, k in enumerate(family_keys)}
        self._family_of = np.array([family_index[k] if o else -1 for k, o in zip(keys, own, strict=True)])
        service_index = {sv: i for i, sv in enumerate(self.services)}
        self._family_service = np.array([service_index[k.split("\x1f")[0]] for k in family_keys], dtype=int)
        self._n_families = len(family_keys)
        errors_family = np.zeros(self._n_families, dtype=bool)
        errors_family[self._family_of[(self._family_of >= 0) & (self.kind == "errors")]] = True
        self._family_weight = np.where(errors_family, s.error_weight, 1.0)
        self._weight = self._family_weight  # this step's family weights (:meth:`_error_weights`)
        # Per series, how much its surprise counts towards its service's ranking evidence.
        self._rank_kind_weight = evidence_weights(self.kind, s.inherited_weight)
        self._share_unit = share_unit  # per series: one percentage point of its failed share, or 0
        self._direction = direction
        self._callers = transitive_callers(self.call_graph)
        self._system = call_graph_systems(self.services, self.call_graph)  # service -> its system
        self._position = {sv: j for j, sv in enumerate(self.services)}  # service -> its index
        # Per system: its services' positions and its own call graph, what an incident is ranked on.
        by_system: dict[int, list[int]] = {}
        for j, sv in enumerate(self.services):
            by_system.setdefault(self._system[sv], []).append(j)
        self._system_positions = {system: np.array(at, dtype=int) for system, at in by_system.items()}
        family_system = np.array([self._system[self.services[j]] for j in self._family_service], dtype=int)
        self._system_families = {system: np.flatnonzero(family_system == system) for system in by_system}
        self._system_graph: dict[int, dict[str, tuple[str, ...]]] = {system: {} for system in self._system_positions}
        for caller, callees in self.call_graph.items():
            if caller in self._system:
                self._system_graph[self._system[caller]][caller] = tuple(c for c in callees if c in self._system)
        # (surprise, observed, expected) per series and weighted ranking surprise per family, over
        # the last rank_window steps
        self._recent: deque[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = deque(
            maxlen=s.rank_window
        )
        self._active = np.zeros(len(self.services), dtype=bool)  # per service: in an episode
        self._family_calm = np.full(self._n_families, s.resolve_after)  # steps below kind_threshold
        self._onset = np.zeros(self._n_families, dtype=bool)  # in a run that began after calm
        self._run_start = np.full(self._n_families, -1)  # step its current run of anomaly began
        self._calm = np.zeros(len(self.services), dtype=int)  # steps below sustain while active
        self._opened: list[StreamIncident] = []
        self.closed: list[StreamIncident] = []
        self._steps = 0  # steps fed so far
        self._service_system = np.array([self._system[sv] for sv in self.services], dtype=int)
        self._budget = self._page_budget(calibration or {})
        self._opening = self.opening_thresholds()  # this step's, what opened its incidents

    def _page_budget(self, calibration: Mapping[str, float]) -> PageBudget | None:
        """The online calibration of each system's opening threshold; its prior is the largest
        trained threshold among the system's services, else ``open_threshold``."""
        s = self.settings
        if s.page_budget_per_day is None:
            return None
        prior = np.full(len(self._system_positions), s.open_threshold)
        trained: dict[int, float] = {}
        for sv, level in calibration.items():
            if sv in self._system:
                trained[self._system[sv]] = max(trained.get(self._system[sv], 0.0), float(level))
        for system, level in trained.items():
            prior[system] = level
        return PageBudget(
            prior, budget_per_day=s.page_budget_per_day, block_minutes=s.budget_block_minutes,
            history_days=s.budget_history_days, prior_days=s.budget_prior_days,
            floor=s.open_threshold if s.budget_floor is None else s.budget_floor,
        )

    def opening_thresholds(self) -> np.ndarray:
        """Per service (in :attr:`services` order): the evidence that opens an incident now."""
        if self._budget is None:
            return np.full(len(self.services), self.settings.open_threshold)
        return self._budget.thresholds[self._service_system]

    def calibrated_thresholds(self) -> dict[str, float]:
        """Per service: its system's opening threshold now, as the page budget calibrated it
        (empty without a budget); what a later stream takes as ``calibration``."""
        if self._budget is None:
            return {}
        return {sv: round(float(t), 6) for sv, t in zip(self.services, self.opening_thresholds(), strict=True)}

    def calibration_report(self) -> list[dict[str, Any]]:
        """Per system: its services, opening threshold and fitted episode tail (None before a fit)."""
        if self._budget is None:
            return []
        report = []
        for system, at in self._system_positions.items():
            tail = self._budget.tails[system]
            report.append({
                "system": system,
                "services": [self.services[j] for j in at],
                "open_threshold": round(float(self._budget.thresholds[system]), 6),
                "tail": None if tail is None else tail.to_dict(),
            })
        return report

    @property
    def open_incident(self) -> StreamIncident | None:
        """The most recently opened incident still open (None when all is calm)."""
        return self._opened[-1] if self._opened else None

    @property
    def open_incidents(self) -> list[StreamIncident]:
        return list(self._opened)

    def step(self, ds: pd.Timestamp, values: np.ndarray) -> list[StreamIncident]:
        """Score the samples of time ``ds`` (aligned with :attr:`series`; NaN = missing)."""
        values = np.asarray(values, dtype="float64")
        if values.shape != (len(self.series),):
            raise ValueError(f"expected {len(self.series)} values, got shape {values.shape}")
        if self._wire_from.size:
            values = np.concatenate([values, values[self._wire_from] - values[self._wire_less]])
        result = self._scorer.score(values)
        s = self.settings
        family = self._family_surprise(result.surprise)
        hot_family = family >= s.kind_threshold
        # A run of anomaly that began after resolve_after calm steps is an onset; one that began
        # while the family was still flickering is chronic and says little about a new problem:
        # with rank_onsets the ranking ignores chronic families (a noisy edge that keeps
        # flickering must not take the blame for every incident it happens to overlap).
        self._onset = onset_runs(hot_family, self._family_calm, self._onset, s.resolve_after)
        # The step at which each family's current run of anomaly began (-1: not anomalous now).
        self._run_start = np.where(
            hot_family, np.where(self._family_calm > 0, self._steps, self._run_start), -1
        )
        chronic = hot_family & ~self._onset
        rank_surprise = result.surprise
        if s.rank_onsets:
            chronic_series = np.zeros(result.surprise.size, dtype=bool)
            mask = self._family_of >= 0
            chronic_series[mask] = chronic[self._family_of[mask]]
            rank_surprise = np.where(chronic_series, 0.0, result.surprise)
        self._weight = self._error_weights(result.observed, result.expected)
        # Ranking evidence per family, weighed as at its own step: a failed share that was material
        # when it peaked keeps its weight while the ranking looks back at it.
        rank_family = self._family_surprise(rank_surprise * self._rank_kind_weight) * self._weight
        self._recent.append((result.surprise, result.observed, result.expected, rank_family))
        evidence = self._service_evidence(result.surprise)
        opening = self._opening = self.opening_thresholds()  # from the steps before this one: causal
        sustain = opening * (s.sustain_threshold / s.open_threshold)
        split = opening * (s.split_threshold / s.open_threshold)
        if self._budget is not None:
            by_system = np.zeros(len(self._system_positions))
            np.maximum.at(by_system, self._service_system, np.nan_to_num(evidence, nan=0.0))
            self._budget.observe(pd.Timestamp(ds).timestamp(), by_system)
        # A family is fresh when it was calm for the last resolve_after steps: an active service
        # whose fresh families alone reach open_threshold has a new problem (a second fault on a
        # service still showing the after-effects of the first).
        fresh = self._family_calm >= s.resolve_after
        fresh_evidence = self._service_evidence(result.surprise, fresh)
        self._family_calm = np.where(family >= s.kind_threshold, 0, self._family_calm + 1)
        fired = (evidence >= opening) & (~self._active | (fresh_evidence >= opening))
        self._calm = np.where(evidence >= sustain, 0, self._calm + 1)
        self._active = (self._active & (self._calm < s.resolve_after)) | fired
        self._calm[fired] = 0
        ds = pd.Timestamp(ds)
        for incident in self._opened:
            incident.age += 1
            incident.peak = max(incident.peak, float(evidence[self._member_mask(incident)].max()))
        raised: list[StreamIncident] = []
        new = [self.services[j] for j in np.where(fired)[0]]
        hot = {self.services[j] for j in np.where(evidence >= opening)[0]}
        unexplained = [sv for sv in new if not any(self._explains(i, sv, hot) for i in self._opened)]
        flares = [sv for sv in unexplained if fresh_evidence[self._position[sv]] < opening[self._position[sv]]]
        reopened = self._reopen_flares(flares)
        unexplained = [
            sv
            for sv in unexplained
            if not any(sv in i.members or self._explains(i, sv, hot) for i in reopened)
        ]
        # A second problem at once in a system needs strong evidence of its own.
        busy = {i.system for i in self._opened}
        weak = [
            sv
            for sv in unexplained
            if self._system[sv] in busy and evidence[self._position[sv]] < split[self._position[sv]]
        ]
        for sv in weak:  # not paged now: it may fire again once the open incidents close
            self._active[self._position[sv]] = False
        unexplained = [sv for sv in unexplained if sv not in weak]
        for incident in self._opened:
            incident.members.update(sv for sv in new if self._explains(incident, sv, hot))
            if s.refine_ranking and incident.age <= s.rank_window and self._runs_since_look_back(incident):
                self._assess(incident)
        for system in dict.fromkeys(self._system[sv] for sv in unexplained):  # one page per system
            incident = self._describe(ds, [sv for sv in unexplained if self._system[sv] == system])
            self._opened.append(incident)
            raised.append(incident)
        still: list[StreamIncident] = []
        for incident in self._opened:
            if incident in raised or self._active[self._member_mask(incident)].any():
                still.append(incident)
            else:
                incident.closed_at = ds
                incident.closed_step = self._steps
                self.closed.append(incident)
        self._opened = still
        self._scorer.learn(result)
        self._steps += 1
        return raised

    def _reopen_flares(self, flares: list[str]) -> list[StreamIncident]:
        """Re-open, for each service in ``flares`` (firing, not a fresh onset, unexplained), the
        latest incident closed within ``reopen_within`` steps that it belonged to as a member or
        top-ranked cause: the same problem flaring up again is one incident and one page, not two."""
        reopened: list[StreamIncident] = []
        for sv in flares:
            incident = self._recently_closed_with(sv)
            if incident is None:
                continue
            if incident not in reopened:
                self.closed.remove(incident)
                incident.closed_at = None
                incident.age += self._steps - incident.closed_step  # it kept ageing while closed
                incident.reopened += 1
                self._opened.append(incident)
                reopened.append(incident)
            incident.members.add(sv)
        self._opened.sort(key=lambda i: i.opened_at)  # open_incident stays the latest opened
        return reopened

    def _recently_closed_with(self, service: str) -> StreamIncident | None:
        """The latest incident closed at most ``reopen_within`` steps ago that ``service`` was a
        member or the top-ranked cause of, if any."""
        for incident in reversed(self.closed):  # in closing order: the latest first
            if self._steps - incident.closed_step > self.settings.reopen_within:
                return None
            if service in incident.members or incident.services[:1] == [service]:
                return incident
        return None

    def _runs_since_look_back(self, incident: StreamIncident) -> bool:
        """Whether a family of ``incident``'s system adds ranking evidence now, in a run of anomaly
        that began since the incident's opening look-back: what a refinement can add (:meth:`_assess`);
        without one, re-assessing would cost a whole fleet's arrays for nothing new."""
        at = self._system_families[incident.system]
        look_back = self._steps - incident.age - self.settings.rank_window + 1
        return bool(((self._run_start[at] >= look_back) & (self._recent[-1][3][at] > 0)).any())

    def _explains(self, incident: StreamIncident, service: str, hot: set[str]) -> bool:
        """Whether ``service`` becoming active belongs to ``incident``: the incident is still
        unfolding (its first ``rank_window`` steps), or ``service`` calls, directly or not, one of
        its members that is hot right now (problems travel upstream to the callers). A member that
        calmed down and fires again is a new problem, unless it merely flares up again after its
        incident closed (:meth:`_reopen_flares`). Only a service of the incident's system qualifies."""
        if incident.age <= self.settings.rank_window:
            return self._system[service] == incident.system
        return any(m in hot and service in self._callers.get(m, frozenset()) for m in incident.members)

    def _member_mask(self, incident: StreamIncident) -> np.ndarray:
        mask = np.zeros(len(self.services), dtype=bool)
        mask[[self._position[sv] for sv in incident.members]] = True
        return mask

    def _service_evidence(self, surprise: np.ndarray, fresh: np.ndarray | None = None) -> np.ndarray:
        """Per service: sum of its ``corroboration`` largest family surprises (own kinds only,
        failed requests weighing ``error_weight``), over the families in ``fresh`` when given."""
        fam = self._family_surprise(surprise) * self._weight
        if fresh is not None:
            fam = np.where(fresh, fam, 0.0)
        return self._service_sum(fam)

    def _service_sum(self, fam: np.ndarray) -> np.ndarray:
        """Per service: sum of its ``corroboration`` largest (weighted) family surprises ``fam``."""
        order = np.lexsort((-fam, self._family_service))  # by service, largest surprise first
        service = self._family_service[order]
        rank = np.arange(order.size) - np.searchsorted(service, service, side="left")
        keep = rank < self.settings.corroboration
        out = np.zeros(len(self.services))
        np.add.at(out, service[keep], fam[order][keep])
        return out

    def _error_weights(self, observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
        """Per family, this step's weight: ``error_weight`` for a failed-request family whose
        failed share rose at least ``error_material`` percentage points above its expected level
        (or that is no share, so its rise cannot be judged), else 1: a blip of a point or so is
        no harm to users that needs no corroboration."""
        share = self._share_unit > 0
        rise = np.zeros(observed.size)
        rise[share] = self._direction[share] * (observed[share] - expected[share]) / self._share_unit[share]
        material_series = ~share | (np.nan_to_num(rise, nan=0.0) >= self.settings.error_material)
        material = np.zeros(self._n_families, dtype=bool)
        mask = (self._family_of >= 0) & material_series
        material[self._family_of[mask]] = True
        return np.where(material, self._family_weight, 1.0)

    def _family_surprise(self, surprise: np.ndarray) -> np.ndarray:
        fam = np.zeros(self._n_families)
        mask = self._family_of >= 0
        np.maximum.at(fam, self._family_of[mask], surprise[mask])
        return fam

    def _describe(self, ds: pd.Timestamp, fired: list[str]) -> StreamIncident:
        """A new incident raised at ``ds`` by the services in ``fired``, assessed (:meth:`_assess`)."""
        taken = {sv for i in self._opened for sv in i.members} - set(fired)
        system = self._system[fired[0]]  # :meth:`step` raises one incident per system
        members = set(fired) | {
            self.services[j] for j in self._system_positions[system]
            if self._active[j] and self.services[j] not in taken
        }
        incident = StreamIncident(
            opened_at=ds, services=[], category="", score=0.0, severity="", evidence="", members=members,
            system=system,
        )
        evidence = self._service_evidence(self._recent[-1][0])
        level = max(float(evidence[self._position[sv]]) for sv in fired)
        incident.score, incident.peak = round(level, 6), level
        threshold = float(self._opening[self._position[fired[0]]])
        incident.threshold = threshold
        # On the surprise scale against the line it crossed (models.incidents.evidence), so a
        # threshold the page budget raised still makes critical mean 100x rarer than the line.
        incident.severity = severity(level, threshold)
        if self._budget is not None:
            incident.page_score = self._budget.page_score(system, level)
        self._assess(incident)  # its evidence record carries the level, threshold and page score above
        return incident

    def _assess(self, incident: StreamIncident) -> None:
        """Rank ``incident``'s services, name its category and evidence from the last
        ``rank_window`` steps; services that other open incidents claim are left out."""
        surprises = np.stack([r[0] for r in self._recent])
        peak_step = np.argmax(surprises, axis=0)  # each series' most surprising recent step
        columns = np.arange(surprises.shape[1])
        recent = surprises[peak_step, columns]
        observed = np.stack([r[1] for r in self._recent])[peak_step, columns]
        expected = np.stack([r[2] for r in self._recent])[peak_step, columns]
        rank_family = np.stack([r[3] for r in self._recent]).max(axis=0)
        # Re-assessed while it unfolds, an incident keeps the evidence seen since its opening
        # look-back: the onset that opened it stays in view when later steps are quieter. What
        # it adds is evidence of runs of anomaly that began since that look-back (a root that
        # fired late); a run already under way before it (a callee still smouldering from an
        # earlier problem) or a murmur below kind_threshold keeps the weight it had at the opening.
        if incident.series_peaks is not None:
            look_back = self._steps - incident.age - self.settings.rank_window + 1
            rank_family = np.where(self._run_start >= look_back, rank_family, 0.0)
            newer = recent > incident.series_peaks[0]
            recent, observed, expected = (
                np.where(newer, now, then)
                for now, then in zip((recent, observed, expected), incident.series_peaks, strict=True)
            )
            rank_family = np.maximum(rank_family, incident.family_evidence)
        incident.series_peaks = (recent, observed, expected)
        incident.family_evidence = rank_family
        per_service = self._service_sum(rank_family)
        taken = {sv for i in self._opened if i is not incident for sv in i.members} - incident.members
        # Only the incident's own system is ranked: on a fleet of many small systems a walk over the
        # whole call graph would cost every step what one system's costs, times their number.
        candidates = {
            self.services[j]: (0.0 if self.services[j] in taken else float(per_service[j]))
            for j in self._system_positions[incident.system]
        }
        graph = self._system_graph[incident.system]
        ranking = rank_root_causes(candidates, graph, degree_neutral=self.settings.degree_neutral)
        ranked = [sv for sv, _ in ranking if candidates.get(sv, 0.0) > 0] or [ranking[0][0]]
        kinds_root = self._kind_peaks(recent, self.service == ranked[0])
        kinds_all = self._kind_peaks(recent, np.isin(self.service, ranked))
        incident.services = ranked
        exhausted = self._exhausted(ranked[0])
        incident.category = categorise(kinds_root, kinds_all, self.settings.kind_threshold, exhausted)
        incident.fault_evidence = self._fault_evidence(ranked[0], kinds_root, kinds_all, exhausted)
        incident.fault_type, incident.fault_type_confidence = classify_fault(
            incident.fault_evidence, self.settings.kind_threshold
        )
        incident.evidence = self._evidence_json(incident, recent, observed, expected)

    def _exhausted(self, service: str) -> set[str]:
        """Capacity kinds of ``service`` (a disk) that were full within the last
        ``rank_window`` steps (:func:`models.incidents.category.exhausted_kinds`)."""
        observed = np.stack([r[1] for r in self._recent])
        at = np.where((self.service == service) & ~np.isnan(observed).all(axis=0))[0]
        peaks = np.nanmax(observed[:, at], axis=0) if at.size else np.array([])
        return exhausted_kinds(zip(self.metric[at], self.unit[at], peaks, strict=True))

    def _fault_evidence(
        self, service: str, root: dict[str, float], incident: dict[str, float], exhausted: set[str]
    ) -> FaultEvidence:
        """The root's moves over the last ``rank_window`` steps, for :func:`models.incidents.fault_types.classify_fault`."""
        at = self.service == service
        observed = np.stack([r[1] for r in self._recent])[:, at]
        expected = np.stack([r[2] for r in self._recent])[:, at]
        kind, unit = self.kind[at], np.char.lower(self.unit[at].astype(str))
        usable = np.isfinite(observed) & np.isfinite(expected) & (expected > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(usable, observed / np.where(usable, expected, 1.0), np.nan)
        rise: dict[str, float] = {}
        fall: dict[str, float] = {}
        for k in np.unique(kind):
            col = ratio[:, kind == k]
            if np.isfinite(col).any():
                rise[str(k)] = float(np.nanmax(col) - 1.0)
                fall[str(k)] = float(1.0 - np.nanmin(col))
        percent = np.where(np.isin(unit, ["percent", "%"]), 1.0, np.where(unit == "ratio", 100.0, np.nan))
        share = (kind == "memory") & np.isfinite(percent)
        seen = observed[:, share] * percent[share]
        return FaultEvidence(
            root=root,
            incident=incident,
            rise=rise,
            fall=fall,
            memory_peak_percent=float(np.nanmax(seen)) if np.isfinite(seen).any() else None,
            exhausted=frozenset(exhausted),
        )

    def _kind_peaks(self, surprise: np.ndarray, mask: np.ndarray) -> dict[str, float]:
        peaks: dict[str, float] = {}
        for kind in np.unique(self.kind[mask]):
            peaks[str(kind)] = float(surprise[mask & (self.kind == kind)].max())
        return peaks

    def _evidence_json(
        self, incident: StreamIncident, surprise: np.ndarray, observed: np.ndarray, expected: np.ndarray
    ) -> str:
        """``incident``'s evidence record (:func:`models.incidents.evidence.evidence_payload`): its
        most surprising series at their peaks over the look-back, its ranking, level at opening,
        opening threshold, fault type and page score; its anomalous series are its ranked services'
        series that reached ``kind_threshold``."""
        order = np.argsort(-surprise, kind="stable")[: self.settings.top_evidence]
        series = [
            series_record(
                unique_id=str(self.scored_series[i]),
                service=str(self.service[i]),
                metric=str(self.metric[i]),
                kind=str(self.kind[i]),
                resource_id=str(self.resource_id[i]),
                surprise=float(surprise[i]),
                observed=float(observed[i]),
                expected=float(expected[i]),
            )
            for i in order
            if surprise[i] > 0
        ]
        return evidence_payload(
            series=series,
            ranked_services=incident.services,
            evidence_level=incident.score,
            open_threshold=incident.threshold,
            fault_type=incident.fault_type,
            fault_type_confidence=incident.fault_type_confidence,
            anomalous_series=int(
                ((surprise >= self.settings.kind_threshold) & np.isin(self.service, incident.services)).sum()
            ),
            page_score=incident.page_score,
        )
