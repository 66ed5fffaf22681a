"""The train flow's anomaly candidate comes from ``detect.detector`` (flows.train.anomaly_candidate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.train import anomaly_candidate
from foresight.plugins import UnknownPluginError
from foresight.settings import load_settings


def test_the_candidate_is_the_configured_detector(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    assert anomaly_candidate(load_settings()).name == "streaming"  # the default
    monkeypatch.setenv("FORESIGHT_DETECT__DETECTOR", "robust_seasonal")
    assert anomaly_candidate(load_settings()).name == "robust_seasonal"


def test_an_unknown_detector_name_lists_the_choices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("FORESIGHT_DETECT__DETECTOR", "isolation_forest")
    with pytest.raises(UnknownPluginError, match="robust_seasonal.*streaming"):
        anomaly_candidate(load_settings())
