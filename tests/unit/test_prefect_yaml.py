"""prefect.yaml: one run at a time, schedules that follow ingest, no absolute path, config and
environment from variables, and no flow-run retries (tasks retry what can clear)."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.server.schemas.schedules import CronSchedule
from prefect.utilities.templating import apply_values

from flows.resources import settings_for_run

ROOT = Path(__file__).resolve().parents[2]
PREFECT_YAML = ROOT / "prefect.yaml"
FLOWS = {"ingest", "detect", "forecast-and-plan", "publish", "train"}
READERS = FLOWS - {"ingest"}
DAY = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(PREFECT_YAML.read_text())


@pytest.fixture(scope="module")
def deployments(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in spec["deployments"]}


@pytest.fixture(scope="module")
def fires(deployments: dict[str, dict[str, Any]]) -> dict[str, list[dt.datetime]]:
    """Each deployment's fire times over two days (UTC)."""
    async def dates(cron: dict[str, str]) -> list[dt.datetime]:
        schedule = CronSchedule(cron=cron["cron"], timezone=cron["timezone"])
        return [dt.datetime.fromtimestamp(d.timestamp(), dt.UTC)
                for d in await schedule.get_dates(n=2000, start=DAY, end=DAY + dt.timedelta(days=2, seconds=-1))]
    return {name: sorted(t for cron in d["schedules"] for t in asyncio.run(dates(cron)))
            for name, d in deployments.items()}


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _render(spec: dict[str, Any], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """prefect.yaml as `prefect deploy` templates it (prefect/cli/deploy/_core.py): environment
    placeholders first (unset ones kept), then step outputs (none here), which empties unset ones
    except in the pull steps, left for the worker to resolve when a run starts."""
    for name in ("FORESIGHT_CONFIG_FILE", "FORESIGHT_PROJECT_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    rendered = apply_values(apply_values(spec, dict(env), remove_notset=False), {})
    rendered["pull"] = apply_values(spec["pull"], {}, remove_notset=False)  # pull steps keep unset ones
    return rendered


def test_every_deployment_allows_one_run_at_a_time_and_cancels_the_newcomer(
        deployments: dict[str, dict[str, Any]]) -> None:
    assert set(deployments) == FLOWS
    for name, deployment in deployments.items():
        assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}, name


def test_no_absolute_path_anywhere_and_the_checkout_comes_from_the_worker(spec: dict[str, Any]) -> None:
    for text in _strings(spec):
        assert not text.startswith(("/", "~", "\\")) and ":\\" not in text, f"absolute path in prefect.yaml: {text!r}"
    (step,) = spec["pull"]
    assert step == {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $FORESIGHT_PROJECT_DIR }}"}}
    for deployment in spec["deployments"]:
        assert "pull" not in deployment, "one pull step for all"
        path = deployment["entrypoint"].split(":")[0]
        assert (ROOT / path).is_file(), f"{deployment['name']}: entrypoint {path} not in the checkout"


def test_detect_runs_once_after_every_ingest_never_ahead_of_it(fires: dict[str, list[dt.datetime]]) -> None:
    ingests, detects = fires["ingest"], fires["detect"]
    assert len(detects) == len(ingests), "detect at the ingest cadence: each ingest's data scored once"
    for ingest, following, detect in zip(ingests, [*ingests[1:], None], detects, strict=True):
        assert detect - ingest >= dt.timedelta(minutes=2), f"detect at {detect} too close to ingest at {ingest}"
        assert following is None or detect < following, f"detect at {detect} is not before the next ingest"


def test_no_reader_fires_on_an_ingest_minute_or_right_after_it(fires: dict[str, list[dt.datetime]]) -> None:
    ingests = fires["ingest"]
    assert ingests[1] - ingests[0] == dt.timedelta(minutes=5)
    for name in READERS:
        assert fires[name], f"{name} never fires"
        for when in fires[name]:
            latest = max(t for t in ingests if t <= when)
            assert when - latest >= dt.timedelta(minutes=2), f"{name} at {when} starts with ingest at {latest}"


def test_cadences_fit_the_flows(fires: dict[str, list[dt.datetime]]) -> None:
    per_day = {name: len(times) // 2 for name, times in fires.items()}
    assert per_day == {"ingest": 288, "detect": 288, "forecast-and-plan": 24, "publish": 24, "train": 1}
    train = fires["train"][0]
    assert any(dt.timedelta(0) < f - train <= dt.timedelta(hours=1) for f in fires["forecast-and-plan"]), \
        "the forecast after train serves its new champion within the hour"


def test_config_file_comes_from_the_environment_at_deploy_time(
        spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    config = "infra/local/foresight.yaml"
    rendered = _render(spec, {"FORESIGHT_CONFIG_FILE": config}, monkeypatch)
    assert {d["parameters"]["config_file"] for d in rendered["deployments"]} == {config}
    assert [s.kind for s in settings_for_run(str(ROOT / config)).sources] == ["prometheus", "cloudwatch", "kafka"]
    # Unset: empty, and the run reads the worker's FORESIGHT_CONFIG_FILE, else the embedded defaults.
    unset = _render(spec, {}, monkeypatch)
    assert {d["parameters"]["config_file"] for d in unset["deployments"]} == {""}
    assert settings_for_run("").detect.detector == "streaming_ensemble"
    # The project directory is left to the worker unless the deployer sets it.
    assert unset["pull"] == spec["pull"]


def test_every_run_gets_telemetry_off_and_no_empty_variable(deployments: dict[str, dict[str, Any]]) -> None:
    for name, deployment in deployments.items():
        env = deployment["work_pool"]["job_variables"]["env"]
        assert env["DO_NOT_TRACK"] == "1" and env["MLFLOW_DISABLE_TELEMETRY"] == "true", name
        # A `{{ $VAR }}` unset at deploy time would become "" and override the worker's value.
        assert not any("{{" in value for value in env.values()), f"{name}: env from placeholders {env}"
        assert deployment["work_pool"]["name"] == "foresight"


def test_parameters_are_the_flows_own(deployments: dict[str, dict[str, Any]]) -> None:
    for deployment in deployments.values():
        path, function = deployment["entrypoint"].split(":")
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), function)
        accepted = set(flow.parameters.properties)
        assert set(deployment["parameters"]) <= accepted, f"{deployment['name']}: {deployment['parameters']}"


def test_no_flow_retries_itself_on_any_error(deployments: dict[str, dict[str, Any]]) -> None:
    """Prefect retries a flow run on any exception (no retry condition for flows): a bad config or
    a missing champion would run again and again. Transient errors are retried by the tasks."""
    for deployment in deployments.values():
        path, function = deployment["entrypoint"].split(":")
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), function)
        assert not flow.retries, f"{deployment['name']} retries the whole flow ({flow.retries})"
