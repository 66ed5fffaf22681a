"""``foresight promote MODEL VERSION --reason TEXT``: make a registered version the champion by hand,
recorded as such (:mod:`foresight.manual_promotion`)."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from pathlib import Path

import typer

from foresight.cli.runtime import console, quiet_runtime

USER_ENV = "FORESIGHT_USER"  # who is promoting, when the login name is not the person (CI, a bastion)


def current_user() -> str:
    """``FORESIGHT_USER``, else the login name (``getpass``), else ``unknown``."""
    given = os.environ.get(USER_ENV, "").strip()
    if given:
        return given
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "unknown"


def promote(
    model: str = typer.Argument(..., help="Registered model (capacity-forecaster, anomaly-detector, "
                                "failure-predictor) or its family (forecaster, anomaly, failure)."),
    version: str = typer.Argument(..., help="The version to make champion, e.g. 7 (as the MLflow UI shows it)."),
    reason: str = typer.Option(..., "--reason", help="Why: kept on the version, its run and the model's history."),
    config: Path = typer.Option(None, "--config", help="Optional YAML settings file (where MLflow is)."),
) -> None:
    """Make VERSION of MODEL the champion by hand, overriding the gate; records who and why.

    Moves `champion` to VERSION and clears its `challenger` alias.
    Keeps the gate's verdict as foresight.gate_reason; foresight.reason says why it was promoted.
    Tags who (FORESIGHT_USER or the login name), when and why on the version and its run.
    The registered model keeps a history (foresight.promotion_history).
    The detect and forecast flows serve the new champion from their next run.
    """
    from flows.resources import open_registry  # lazy: keeps `foresight --help` fast
    from foresight.manual_promotion import promote_by_hand  # lazy: keeps `foresight --help` fast
    from foresight.settings import load_settings  # lazy: keeps `foresight --help` fast

    quiet_runtime()
    registry = open_registry(load_settings(config))
    done = promote_by_hand(registry, model, version, reason, user=current_user(), now=datetime.now(UTC))
    if not done.changed:
        console.print(f"{done.registered_name} v{done.version} already is the champion; nothing changed")
        return
    replaced = f" (was v{done.previous})" if done.previous else ""
    console.print(f"{done.registered_name}: champion -> v{done.version}{replaced}, by {current_user()}: "
                  f"{' '.join(reason.split())}")
