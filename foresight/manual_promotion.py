"""A champion chosen by a person (``foresight promote MODEL VERSION --reason``), recorded as such.

The gate's aliases and tags say what the gate decided; a person who overrides it moves
``champion`` to a version, and the version must then stop reading as a losing challenger: its
``challenger`` alias goes, the gate's verdict moves from ``foresight.decision`` /
``foresight.reason`` to ``foresight.gate_decision`` / ``foresight.gate_reason``, and who, when and
why are tagged on the version, its run and the version it replaced, appended to the version's
description, and kept on the registered model (``foresight.last_promotion`` and a
``foresight.promotion_history`` of one line per promotion). The detect and forecast flows serve
``@champion``, so they use the chosen version from their next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from foresight.errors import ForesightError
from foresight.lineage import promotion_note
from foresight.mlflow_http import bounded
from foresight.model_registry import DECISION_TAG, REASON_TAG, REGISTERED, ModelRegistry
from foresight.promotion import CHALLENGER, CHAMPION

MANUAL_DECISION = "promote-by-hand"  # the ``foresight.decision`` of a version a person promoted
GATE_DECISION_TAG, GATE_REASON_TAG = "foresight.gate_decision", "foresight.gate_reason"
PROMOTED_BY, PROMOTED_AT, PROMOTION_REASON = "foresight.promoted_by", "foresight.promoted_at", "foresight.promotion_reason"
REPLACED_BY, REPLACED_CHAMPION = "foresight.replaced_by", "foresight.replaced_champion"
LAST_PROMOTION, PROMOTION_HISTORY = "foresight.last_promotion", "foresight.promotion_history"
HISTORY_CHARS = 20_000  # the history tag keeps its newest lines within this (MLflow allows 100,000)


class PromotionRefusedError(ForesightError, LookupError):
    """The model, the version or the reason given to ``foresight promote`` cannot be used."""


@dataclass(frozen=True)
class ManualPromotion:
    """What ``promote_by_hand`` did: the version now champion and the one it replaced."""

    registered_name: str
    version: str
    previous: str | None
    changed: bool  # False when the version already was the champion


def registered_name_for(model: str) -> str:
    """``anomaly-detector`` for ``anomaly-detector`` or the family ``anomaly``; anything else is refused."""
    if model in REGISTERED.values():
        return model
    if model in REGISTERED:
        return REGISTERED[model]
    raise PromotionRefusedError(f"unknown model {model!r}; choose one of: {', '.join(REGISTERED.values())}",
                                hint=f"the families' short names work too: {', '.join(REGISTERED)}")


@bounded
def promote_by_hand(registry: ModelRegistry, model: str, version: str, reason: str, *, user: str,
                    now: datetime) -> ManualPromotion:
    """Make ``version`` of ``model`` the champion because ``user`` says ``reason`` (module doc)."""
    from mlflow.exceptions import MlflowException  # lazy: MLflow is heavy (foresight.mlflow_runs)

    name = registered_name_for(model)
    reason = " ".join(reason.split())
    if not reason:
        raise PromotionRefusedError("a promotion by hand needs a reason", hint="say why with --reason TEXT")
    client = registry.mlflow_client
    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise PromotionRefusedError(f"{name} is not registered in {registry.tracking_uri}",
                                    hint="run the train flow first (foresight run train)") from None
    known = sorted((str(v.version) for v in client.search_model_versions(f"name = '{name}'")), key=int)
    if version.removeprefix("v") not in known:
        raise PromotionRefusedError(f"{name} has no version {version!r}; its versions: {', '.join(known) or 'none'}")
    version = version.removeprefix("v")
    model_version = client.get_model_version(name, version)
    if model_version.status != "READY":
        raise PromotionRefusedError(f"{name} v{version} is {model_version.status}, not READY: it cannot serve")
    aliases = {alias: str(v) for alias, v in (registered.aliases or {}).items()}
    previous = aliases.get(CHAMPION)
    if previous == version:
        return ManualPromotion(name, version, previous, changed=False)

    client.set_registered_model_alias(name, CHAMPION, version)
    if aliases.get(CHALLENGER) == version:
        client.delete_registered_model_alias(name, CHALLENGER)
    when = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    tags = {DECISION_TAG: MANUAL_DECISION, REASON_TAG: f"promoted by hand by {user}: {reason}",
            PROMOTED_BY: user, PROMOTED_AT: when, PROMOTION_REASON: reason, REPLACED_CHAMPION: previous or ""}
    old = model_version.tags or {}
    for kept, gate_tag in ((DECISION_TAG, GATE_DECISION_TAG), (REASON_TAG, GATE_REASON_TAG)):
        if kept in old and gate_tag not in old:  # the gate's verdict, kept under its own name
            tags[gate_tag] = old[kept]
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
        if model_version.run_id:
            client.set_tag(model_version.run_id, key, value)
    note = promotion_note(user, when, reason, previous)
    client.update_model_version(name, version, description="\n".join(
        part for part in (model_version.description, note) if part))
    if previous is not None:
        client.set_model_version_tag(name, previous, REPLACED_BY, f"v{version} by {user} at {when}: {reason}")
    line = f"{when} v{version} by {user} (replacing v{previous or '-'}): {reason}"
    history = ((registered.tags or {}).get(PROMOTION_HISTORY, "") + "\n" + line).strip()
    while len(history) > HISTORY_CHARS and "\n" in history:
        history = history.split("\n", 1)[1]  # the oldest line goes first
    client.set_registered_model_tag(name, LAST_PROMOTION, line)
    client.set_registered_model_tag(name, PROMOTION_HISTORY, history[-HISTORY_CHARS:])
    return ManualPromotion(name, version, previous, changed=True)
