"""prefect.yaml: every deployment runs one flow run at a time."""

from __future__ import annotations

from pathlib import Path

import yaml

PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"


def test_every_deployment_allows_one_run_at_a_time_and_cancels_the_newcomer() -> None:
    deployments = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    limits = {d["name"]: d.get("concurrency_limit") for d in deployments}
    assert len(limits) == 5
    assert limits == dict.fromkeys(limits, {"limit": 1, "collision_strategy": "CANCEL_NEW"})
