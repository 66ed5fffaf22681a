"""Typed settings of the incident pipeline, built once from the detect section of the config.

:class:`PipelineSettings` is what a registered :class:`~models.incidents.pipeline.IncidentPipeline`
carries: which mode builds its incidents and that mode's knobs. The detect flow pages with the
champion's settings, so a change to ``detect.stream_params`` (or ``incident_builder``) takes
effect through a train run and the gate, like a new detector.

:func:`detect_config_problems` checks what the detect section names beyond the reach of the
settings' own schema (which lives in core, below the plug-ins): the flows run it when they load
the settings, so a typo in ``detector_params`` or ``stream_params`` fails at start-up, naming
the key and the choices, instead of in the train flow.
"""

from __future__ import annotations

import difflib
import functools
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from foresight.plugins import UnknownParameterError, UnknownPluginError
from models.anomaly.base import DETECTORS
from models.incidents.base import INCIDENT_BUILDERS
from models.incidents.stream import StreamSettings

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
        out.update({f"rollup.{k}": v for k, v in _fields(self.rollup).items()})
        out.update({f"stream.{k}": v for k, v in _fields(self.stream).items()})
        return out


def _fields(settings: object) -> Mapping[str, Any]:
    from dataclasses import asdict

    return asdict(settings)  # type: ignore[call-overload]


Problem = tuple[tuple[str, ...], str]  # (key path under the detect section, what is wrong)


def detect_config_problems(cfg: DetectConfig) -> list[Problem]:
    """What is wrong with the plug-ins the detect section names, as the train flow would build its
    candidate from it: an unknown ``detector``, each ``detector_params`` key the detector does not
    take (then the values, by the detector's own checks) and each unknown or mistyped
    ``stream_params`` key (typed by :class:`StreamSettings`, then its rules)."""
    return [*_detector_problems(cfg.detector, cfg.detector_params), *_stream_problems(cfg.stream_params)]


def _detector_problems(name: str, params: Mapping[str, Any]) -> list[Problem]:
    try:
        DETECTORS.check_params(name, params)
        DETECTORS.get(name).for_incidents(**params)
    except UnknownPluginError as exc:
        return [(("detector",), str(exc))]
    except UnknownParameterError as exc:
        what = f"not a parameter of {exc.kind} {name!r}"
        return [(("detector_params", key), _unknown(key, what, exc.choices)) for key in exc.unknown]
    except (ValueError, TypeError) as exc:
        return [(("detector_params",), str(exc))]
    return []


def _stream_problems(params: Mapping[str, Any]) -> list[Problem]:
    choices = [f.name for f in fields(StreamSettings)]
    unknown = sorted(set(params) - set(choices))
    if unknown:
        return [(("stream_params", key), _unknown(key, "unknown stream setting", choices)) for key in unknown]
    try:
        _stream_params_model().model_validate(dict(params))
    except ValidationError as exc:
        return [(("stream_params", *map(str, e["loc"])), f"{e['input']!r}: {e['msg'][0].lower()}{e['msg'][1:]}")
                for e in exc.errors()]
    try:
        StreamSettings.from_params(params)  # its rules between settings (thresholds in order, ...)
    except (ValueError, TypeError) as exc:
        return [(("stream_params",), str(exc))]
    return []


@functools.cache
def _stream_params_model() -> type[BaseModel]:
    """:class:`StreamSettings`' fields as a strict pydantic model: values are passed on as given,
    so ``"9"`` must not pass for ``9.0`` here, nor ``2.5`` for a number of steps."""
    hints = typing.get_type_hints(StreamSettings)
    typed: dict[str, Any] = {f.name: (hints[f.name], f.default) for f in fields(StreamSettings)}
    return create_model("StreamParams", __config__=ConfigDict(strict=True), **typed)


def _unknown(key: str, what: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    return what + (f" (did you mean {close[0]}?)" if close else "") + f"; choose from: {', '.join(choices)}"
