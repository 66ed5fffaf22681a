"""Typed settings of the incident pipeline, built once from the detect section of the config.

:class:`RollupSettings` and :class:`StreamSettings` are the two modes' knobs;
:class:`PipelineSettings` is what a registered :class:`~models.incidents.pipeline.IncidentPipeline`
carries: which mode builds its incidents and that mode's knobs. The detect flow pages with the
champion's settings, so a change to ``detect.stream_params`` (or ``incident_builder``) takes
effect through a train run and the gate, like a new detector.

:class:`StreamParams` types ``detect.stream_params`` (the ``stream`` builder's declared settings).
:func:`detect_config_problems` checks what the detect section names beyond the reach of the
settings' own schema (which lives in core, below the plug-ins) through the plug-in registries'
typed settings: the flows run it when they load the settings, so a typo, a wrong type or an
out-of-range value in ``detector_params`` or ``stream_params`` fails at start-up, naming the key
(and for an unknown one the choices), instead of in the train flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Self

import pandas as pd
from pydantic import create_model, model_validator

from foresight.plugins import PluginSettings, Problem, dataclass_fields, settings_problems
from models.anomaly.base import DETECTORS
from models.incidents.base import INCIDENT_BUILDERS

if TYPE_CHECKING:
    from foresight.settings import DetectConfig


@dataclass(frozen=True)
class RollupSettings:
    """The roll-up's knobs (:func:`models.incidents.rollup.build_incidents`); ``risk_threshold``
    also raises the stream mode's warnings from failure risk alone."""

    anomaly_threshold: float = 0.9999
    risk_threshold: float = 0.5
    min_series: int = 1
    min_active: int = 3
    resolve_after: pd.Timedelta = pd.Timedelta(minutes=30)

    def __post_init__(self) -> None:
        for name in ("anomaly_threshold", "risk_threshold"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be within (0, 1], got {value}")
        if self.min_series < 1 or self.min_active < 1:
            raise ValueError(f"min_series and min_active must be at least 1, got {self.min_series} and {self.min_active}")
        if pd.Timedelta(self.resolve_after) <= pd.Timedelta(0):
            raise ValueError(f"resolve_after must be positive, got {self.resolve_after!r}")


@dataclass(frozen=True)
class StreamSettings:
    """Knobs of :class:`~models.incidents.stream.IncidentStream`; durations are in time steps (samples)."""

    window: int = 30  # samples in the trailing baseline (30 min at 1-minute sampling)
    min_history: int = 5  # samples before a series is scored at all
    prior_weight: float = 30.0  # how many samples the distribution-free prior is worth
    gate: float | None = 6.0  # robust sigmas beyond which a sample stays out of the baseline
    max_hold: int = 15  # outlying samples in a row after which they are a new normal
    learn_delay: int = 15  # steps before a run of outliers counts as ordinary in the tail
    wire_latency: bool = True  # derive caller-minus-callee edge latency (network time)
    error_floor: float = 0.25  # failed-request share change (percentage points) worth at least one sigma
    corroboration: int = 2  # family surprises summed into a service's evidence
    open_threshold: float = 6.0  # evidence (summed -log10 p) that opens an incident
    sustain_threshold: float = 4.0  # evidence that keeps a service active
    resolve_after: int = 3  # steps below sustain_threshold before a service (incident) calms down
    split_threshold: float = 10.0  # evidence that opens a second incident while one is open
    rank_window: int = 3  # steps of evidence behind the ranking and the category
    refine_ranking: bool = True  # re-rank while the incident unfolds (its first rank_window steps)
    kind_threshold: float = 2.0  # per-series surprise at which a metric kind counts as anomalous
    error_weight: float = 3.0  # a failed-request family counts this many times (needs no corroboration)
    error_material: float = 3.0  # failed-share rise (percentage points) from which error_weight applies
    degree_neutral: bool = True  # ranking: a caller's many callees do not drain it (models.incidents.rca)
    rank_onsets: bool = True  # rank on families whose anomaly began after a calm spell only
    inherited_weight: float = 1.0  # ranking weight of kinds a service may inherit from a callee (models.incidents.rca)
    top_evidence: int = 5
    reopen_within: int = 15  # steps after closing in which a flare-up of its problem re-opens it (0: never)
    # Page budget (models.incidents.page_budget): each system's opening threshold is the level its normal
    # episodes reach this many times a day, fitted online on its own evidence and shrunk towards a
    # prior (a trained calibration, else open_threshold). None: open_threshold throughout.
    # sustain_threshold and split_threshold keep their ratio to the system's opening threshold.
    page_budget_per_day: float | None = 2.0
    budget_block_minutes: float = 60.0  # blocks whose maxima the tail is fitted on (time, not steps)
    budget_history_days: float = 7.0  # blocks the fit looks back on
    budget_prior_days: float = 1.0  # how much history the prior is worth
    # The calibrated opening threshold never goes below this evidence; None: open_threshold (the
    # budget raises the threshold of a system noisier than it allows, never lowers a quiet one's).
    budget_floor: float | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> StreamSettings:
        """Settings from a mapping (a config file's); an unknown name is refused by name, with the choices."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"unknown stream setting(s) {unknown}; choose from {', '.join(known)}")
        return cls(**params)

    def __post_init__(self) -> None:
        if self.corroboration < 1:
            raise ValueError(f"corroboration must be at least 1, got {self.corroboration}")
        if not 0 < self.sustain_threshold <= self.open_threshold:
            raise ValueError(
                "need 0 < sustain_threshold <= open_threshold, got "
                f"{self.sustain_threshold} and {self.open_threshold}"
            )
        if self.resolve_after < 1 or self.rank_window < 1:
            raise ValueError("resolve_after and rank_window must be at least one step")
        if self.split_threshold < self.open_threshold:
            raise ValueError(
                f"split_threshold ({self.split_threshold}) must be at least open_threshold ({self.open_threshold})"
            )
        if self.error_weight <= 0:
            raise ValueError(f"error_weight must be positive, got {self.error_weight}")
        if self.error_floor < 0 or self.error_material < 0:
            raise ValueError(
                f"error_floor and error_material must not be negative, got {self.error_floor} and {self.error_material}"
            )
        if not 0 < self.inherited_weight <= 1:
            raise ValueError(f"inherited_weight must be within (0, 1], got {self.inherited_weight}")
        if self.reopen_within < 0:
            raise ValueError(f"reopen_within must not be negative, got {self.reopen_within}")
        if self.page_budget_per_day is not None and self.page_budget_per_day <= 0:
            raise ValueError(f"page_budget_per_day must be positive (or None), got {self.page_budget_per_day}")


@dataclass(frozen=True)
class PipelineSettings:
    """The mode that builds incidents and both modes' settings. ``resolve_after`` of
    :attr:`rollup` is also the window a stream incident's identity is floored to."""

    mode: str = "stream"  # a name in models.incidents.base.INCIDENT_BUILDERS
    rollup: RollupSettings = field(default_factory=RollupSettings)
    stream: StreamSettings = field(default_factory=StreamSettings)

    def __post_init__(self) -> None:
        INCIDENT_BUILDERS.get(self.mode)  # an unknown mode raises, listing the modes there are

    @classmethod
    def from_detect(cls, cfg: DetectConfig) -> PipelineSettings:
        """The settings the detect section describes (``incident_builder``, ``stream_params``,
        the roll-up's thresholds and durations); an unknown stream setting is refused by name."""
        return cls(
            mode=cfg.incident_builder,
            rollup=RollupSettings(
                anomaly_threshold=cfg.anomaly_threshold, risk_threshold=cfg.risk_threshold,
                min_active=cfg.min_active_samples, resolve_after=pd.Timedelta(minutes=cfg.resolve_after_minutes),
            ),
            stream=StreamSettings.from_params(cfg.stream_params),
        )

    def as_params(self) -> dict[str, Any]:
        """Flat ``name -> value`` for logging (``incident_builder``, ``rollup.*``, ``stream.*``)."""
        out: dict[str, Any] = {"incident_builder": self.mode}
        out.update({f"rollup.{k}": v for k, v in asdict(self.rollup).items()})
        out.update({f"stream.{k}": v for k, v in asdict(self.stream).items()})
        return out


class _StreamRules(PluginSettings):
    def given_settings(self) -> StreamSettings:
        return StreamSettings(**self.given())

    @model_validator(mode="after")
    def _rules(self) -> Self:
        self.given_settings()  # StreamSettings' rules between its knobs (thresholds in order, ...)
        return self


# The stream builder's settings (``detect.stream_params``): StreamSettings' knobs, typed and strict
# (values are passed on as given, so ``"9"`` must not pass for ``9.0``, nor ``2.5`` for a number of
# steps), then its rules.
StreamParams = create_model("StreamParams", __base__=_StreamRules, **dataclass_fields(StreamSettings))


class NoParams(PluginSettings):
    """The roll-up builder takes no settings of its own: its knobs are the detect section's
    thresholds and durations (:meth:`PipelineSettings.from_detect`)."""


def detect_config_problems(cfg: DetectConfig) -> list[Problem]:
    """What is wrong with the plug-ins the detect section names, as the train flow would build its
    candidate from it: an unknown ``detector``, each ``detector_params`` key the detector does not
    take or whose value its typed settings refuse, and the same for ``stream_params`` (the stream
    builder's settings, which every pipeline registers whichever mode builds its incidents)."""
    return [
        *settings_problems(DETECTORS, cfg.detector, cfg.detector_params,
                           name_key=("detector",), settings_key=("detector_params",)),
        *settings_problems(INCIDENT_BUILDERS, "stream", cfg.stream_params,
                           name_key=("incident_builder",), settings_key=("stream_params",)),
    ]
