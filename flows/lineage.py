"""The lineage a train run gives each model it logs: the Prefect flow run it belongs to, the code
(:func:`foresight.lineage.code_tags`), the lake snapshot, a run name and the version's description
(:class:`foresight.lineage.RunLineage`)."""

from __future__ import annotations

from prefect.runtime import flow_run
from prefect.utilities.urls import url_for

from foresight.lake_snapshot import LakeSnapshot
from foresight.lineage import GateFigures, RunLineage, code_tags, run_name, version_description
from foresight.promotion import Decision
from models.evaluation.gate import Evaluation

FLOW_RUN_ID_TAG = "foresight.prefect.flow_run_id"
FLOW_RUN_NAME_TAG = "foresight.prefect.flow_run_name"
FLOW_RUN_URL_TAG = "foresight.prefect.flow_run_url"


def prefect_tags() -> dict[str, str]:
    """The id, name and URL of the Prefect flow run this code runs in (none outside one).

    The URL is the UI's (``PREFECT_UI_URL``, which Prefect derives from ``PREFECT_API_URL``),
    else the API's; an ephemeral run with neither set gets no URL.
    """
    run_id = flow_run.get_id()
    if not run_id:
        return {}
    tags = {FLOW_RUN_ID_TAG: str(run_id)}
    name = flow_run.get_name()
    if name:
        tags[FLOW_RUN_NAME_TAG] = str(name)
    url = url_for("flow-run", obj_id=str(run_id), url_type="ui") or url_for(
        "flow-run", obj_id=str(run_id), url_type="api")
    if url:
        tags[FLOW_RUN_URL_TAG] = url
    return tags


def train_lineage(registered_name: str, model_name: str, snapshot: LakeSnapshot | None, candidate: Evaluation,
                  baseline: Evaluation, champion: Evaluation | None, decision: Decision, *,
                  role: str = "candidate") -> RunLineage:
    """The lineage of one model a train run logs: ``candidate`` (judged by ``decision``) or the
    ``baseline`` registered to serve when the first candidate lost."""
    figures = GateFigures(candidate.metric, candidate.higher_is_better, candidate.value, baseline.value,
                          None if champion is None else champion.value)
    return RunLineage(
        run_name=run_name(registered_name, model_name, snapshot, role="" if role == "candidate" else role),
        snapshot=snapshot,
        tags={**code_tags(), **prefect_tags()},
        description=version_description(model_name, snapshot, figures, decision.label, decision.reason, role=role),
    )
