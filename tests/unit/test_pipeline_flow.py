"""The pipeline flow carries on past a failed source: every other stage runs, then it ends Failed."""

from __future__ import annotations

from typing import Any

import pytest

from foresight.source_holds import SourceContractFailedError


def test_a_failed_source_does_not_stop_the_later_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.pipeline as module

    ran: list[str] = []

    def stage(name: str, fails: bool = False):  # noqa: ANN202 - a stand-in flow
        def run(*args: Any, **kwargs: Any) -> dict[str, Any]:
            ran.append(name)
            result = {"stage": name, **kwargs}
            if fails:
                raise SourceContractFailedError(f"{name}: backfill failed", sources=["backfill"], result=result)
            return result
        return run

    for name in ("train", "forecast_and_plan", "publish"):
        monkeypatch.setattr(module, name, stage(name))
    monkeypatch.setattr(module, "ingest", stage("ingest", fails=True))
    monkeypatch.setattr(module, "detect", stage("detect", fails=True))

    with pytest.raises(SourceContractFailedError) as info:
        module.pipeline.fn(None)
    assert ran == ["ingest", "train", "forecast_and_plan", "detect", "publish"], "detect still pages the rest"
    assert info.value.sources == ["backfill"] and info.value.message == "detect: backfill failed"
    results = info.value.result
    assert results["ingest"] == {"stage": "ingest"} and results["publish"]["detect_summary"] == {"stage": "detect"}
