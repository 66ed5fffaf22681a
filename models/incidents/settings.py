"""Typed settings of the incident pipeline, built once from the detect section of the config.

:class:`PipelineSettings` is what a registered :class:`~models.incidents.pipeline.IncidentPipeline`
carries: which mode builds its incidents and that mode's knobs. The detect flow pages with the
champion's settings, so a change to ``detect.stream_params`` (or ``incident_builder``) takes
effect through a train run and the gate, like a new detector.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from models.incidents.stream import StreamSettings

if TYPE_CHECKING:
    from foresight.settings import DetectConfig

Mode = Literal["stream", "rollup"]
MODES: tuple[Mode, ...] = ("stream", "rollup")


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
class PipelineSettings:
    """The mode that builds incidents and both modes' settings. ``resolve_after`` of
    :attr:`rollup` is also the window a stream incident's identity is floored to."""

    mode: Mode = "stream"
    rollup: RollupSettings = field(default_factory=RollupSettings)
    stream: StreamSettings = field(default_factory=StreamSettings)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown incident builder {self.mode!r}; choose from {', '.join(MODES)}")

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
        out.update({f"rollup.{k}": v for k, v in _fields(self.rollup).items()})
        out.update({f"stream.{k}": v for k, v in _fields(self.stream).items()})
        return out


def _fields(settings: object) -> Mapping[str, Any]:
    from dataclasses import asdict

    return asdict(settings)  # type: ignore[call-overload]
