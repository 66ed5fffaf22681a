"""Typed settings of the anomaly detectors (each detector's ``Settings``) and what they share.

A detector's settings are its constructor's parameters as a strict pydantic model
(:class:`foresight.plugins.PluginSettings`): ``detect.detector_params`` is validated against them
when the settings load (:meth:`foresight.plugins.Registry.settings_for`), so a wrong type, an
out-of-range value or an unknown key fails at start-up naming the key. After the fields,
:meth:`DetectorSettings.check_rules` applies the detector's own rules between them (a parameter
dataclass's ``__post_init__``), the same code the constructor runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Self

import pandas as pd
from pydantic import AfterValidator, Field, model_validator

from foresight.plugins import PluginSettings

CONTEXT_DAYS = 7.0  # history the streaming detectors keep before a scored window, at least


def _positive_duration(value: str) -> str:
    try:
        parsed = pd.Timedelta(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a duration (e.g. 30min, 2h, 1D)") from None
    if parsed <= pd.Timedelta(0):
        raise ValueError(f"{value!r} is not a positive duration")
    return value


# A pandas duration string ("2h", "1D"), kept as given: the detector resolves it against the grid step.
Duration = Annotated[str, AfterValidator(_positive_duration)]
ContextDays = Annotated[float, Field(gt=0)]


class DetectorSettings(PluginSettings):
    """Base of a detector's settings: fields, then :meth:`check_rules` on the keys given."""

    def check_rules(self) -> None:
        """The detector's rules between its parameters; raise ``ValueError`` naming them."""

    @model_validator(mode="after")
    def _rules(self) -> Self:
        self.check_rules()
        return self


def without(params: Mapping[str, Any], *names: str, prefixes: tuple[str, ...] = ()) -> dict[str, Any]:
    """``params`` less ``names`` and the keys starting with one of ``prefixes``."""
    return {k: v for k, v in params.items() if k not in names and not (prefixes and k.startswith(prefixes))}


def prefixed(params: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The keys of ``params`` starting with ``prefix``, without it."""
    return {k.removeprefix(prefix): v for k, v in params.items() if k.startswith(prefix)}


def reject_unknown(detector: str, params: Iterable[str], settings: type[PluginSettings]) -> None:
    """Refuse parameters ``settings`` has no field for, naming them and the ones it has
    (``context_days`` aside, which every streaming detector takes)."""
    known = set(settings.model_fields) - {"context_days"}
    unknown = set(params) - known
    if unknown:
        raise ValueError(
            f"unknown {detector} detector parameter(s) {sorted(unknown)}; choose from {sorted(known)}"
        )
