"""One plug-in mechanism (foresight.plugins.Registry) for sources, forecasters, detectors, failure
predictors and incident builders: each registry imports its built-ins on first use, and an unknown
name lists the choices."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest

from foresight.plugins import UnknownPluginError
from foresight.settings import DetectConfig
from models.forecasting.base import FORECASTERS, Forecaster
from models.forecasting.selection_candidates import build_candidate
from models.incidents.base import INCIDENT_BUILDERS
from models.incidents.pipeline import builder_for
from models.incidents.rollup_builder import RollupBuilder
from models.incidents.settings import PipelineSettings, RollupSettings
from models.incidents.stream import StreamSettings
from models.incidents.stream_builder import StreamBuilder

ROOT = Path(__file__).resolve().parents[2]
REGISTRIES = {
    "connectors.sources.base:SOURCES": ["cloudwatch", "file", "kafka", "prometheus", "simulator"],
    "models.anomaly.base:DETECTORS": ["knn", "robust_seasonal", "robust_z", "robust_z_nms", "rolling_zscore",
                                      "streaming", "streaming_ensemble", "streaming_knn"],
    "models.failure.base:PREDICTORS": ["lgbm", "utilisation_rule"],
    "models.forecasting.base:FORECASTERS": ["auto", "damped_trend", "ensemble", "lgbm_global", "mstl", "prophet",
                                            "seasonal_naive", "ses"],
    "models.incidents.base:INCIDENT_BUILDERS": ["rollup", "stream"],
}


def test_every_registry_finds_its_built_ins_in_a_fresh_process_without_a_loader() -> None:
    """Each registry's own module imported, then one built-in asked for by name: nothing else
    (no loader function, no package import) registers them first."""
    script = "\n".join([
        "import importlib, json, sys",
        "found = {}",
        f"for where, names in {REGISTRIES!r}.items():",
        "    module, attribute = where.split(':')",
        "    registry = getattr(importlib.import_module(module), attribute)",
        "    found[where] = [registry.get(names[-1]).__module__, registry.names()]",
        "print(json.dumps(found))",
    ])
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    for where, names in REGISTRIES.items():
        defined_in, registered = found[where]
        assert registered == names and defined_in != where.split(":")[0], where


def test_build_candidate_asks_the_forecaster_how_selection_runs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """No branch on names: a forecaster registered anywhere says how it is built for selection."""

    class Probe(Forecaster):
        name = "probe"

        def __init__(self, season_length: int = 1, horizon: int = 1) -> None:
            super().__init__(season_length=season_length, horizon=horizon)

        @classmethod
        def for_selection(cls, season_length: int, horizon: int) -> Probe:
            return cls(season_length=season_length, horizon=horizon)

        def _fit(self, df: Any) -> None: ...

        def _predict(self, h: int, level: int) -> Any: ...

    monkeypatch.setitem(FORECASTERS._items, "probe", Probe)  # registered for this test only
    assert build_candidate("probe", 288, 48).get_params() == {"season_length": 288, "horizon": 48}
    with pytest.raises(UnknownPluginError) as err:
        build_candidate("arima", 288, 48)
    assert err.value.choices == sorted([*REGISTRIES["models.forecasting.base:FORECASTERS"], "probe"])


def test_each_built_in_forecaster_is_configured_for_selection_as_before() -> None:
    season, horizon = 288, 48
    expected = {
        "seasonal_naive": {"season_length": season},
        "ses": {"season_length": season, "lead": None},
        "damped_trend": {"season_length": season, "lead": None},
        "mstl": {"season_length": season, "lead": None, "weekly": True, "trend": False, "max_cycles": 7},
        "ensemble": {"members": ("ses", "damped_trend", "mstl"), "season_length": season},
        "prophet": {"uncertainty_samples": 0, "fallback_season_length": season},
        "lgbm_global": {"lags": (1, 2, 3, season, 7 * season), "windows": (season,), "season": season,
                        "scale_window": 7 * season, "calibration_horizon": horizon},
        "auto": {"season_length": None, "horizon": None},
    }
    for name, params in expected.items():
        built = build_candidate(name, season, horizon).get_params()
        assert {k: built[k] for k in params} == params, name


def test_incident_modes_are_registered_builders_and_an_unknown_mode_lists_them() -> None:
    rollup = RollupSettings(anomaly_threshold=0.999)
    stream = StreamSettings(open_threshold=9.0, split_threshold=12.0)
    assert builder_for(PipelineSettings("stream", rollup, stream)) == StreamBuilder(stream, rollup)
    assert builder_for(PipelineSettings("rollup", rollup, stream)) == RollupBuilder(rollup)
    with pytest.raises(UnknownPluginError) as err:
        PipelineSettings(mode="magic")
    assert err.value.choices == ["rollup", "stream"]
    assert str(err.value) == "unknown incident builder 'magic'; choose one of: rollup, stream"


def test_a_registered_incident_mode_is_built_from_the_pipeline_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    def probe(settings: PipelineSettings) -> RollupBuilder:
        return RollupBuilder(settings.rollup, name="probe")

    monkeypatch.setitem(INCIDENT_BUILDERS._items, "probe", probe)  # registered for this test only
    assert builder_for(PipelineSettings(mode="probe")).name == "probe"


def test_the_settings_offer_exactly_the_registered_incident_modes() -> None:
    """Core's settings cannot import the registry (it lives above them), so the two lists are pinned together."""
    assert sorted(get_args(DetectConfig.model_fields["incident_builder"].annotation)) == INCIDENT_BUILDERS.names()
