"""Where a registered model came from, in words and tags a data scientist reads in MLflow: the
code (git commit), the run's name, and what a version is (candidate, data window, the gate's
figures and verdict).

The commit is the deployed code's: ``FORESIGHT_GIT_COMMIT`` when set (container images carry no
``.git``), else ``git rev-parse HEAD`` in the folder Foresight is installed from; without either
the tag is left out and the run goes on. Pure apart from that one ``git`` call.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from foresight.lake_snapshot import TIME_FORMAT, LakeSnapshot

COMMIT_ENV = "FORESIGHT_GIT_COMMIT"
GIT_COMMIT_TAG = "mlflow.source.git.commit"  # MLflow's own: the UI links it to the source
VERSION_TAG = "foresight.version"
NOTE_TAG = "mlflow.note.content"  # MLflow's: the run's description in the UI
_CODE_ROOT = Path(__file__).resolve().parents[1]
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")


def git_commit(env: dict[str, str] | os._Environ[str] | None = None, *, root: Path = _CODE_ROOT) -> str | None:
    """The commit of the running code: :data:`COMMIT_ENV`, else ``git rev-parse HEAD`` at ``root``;
    None when neither answers (no git, not a checkout, a wrong value)."""
    env = os.environ if env is None else env
    given = (env.get(COMMIT_ENV) or "").strip().lower()
    if given:
        return given if _COMMIT.match(given) else None
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None  # no git binary, or it hung: the run is worth more than the tag
    commit = done.stdout.strip().lower()
    return commit if done.returncode == 0 and _COMMIT.match(commit) else None


def code_tags(env: dict[str, str] | os._Environ[str] | None = None) -> dict[str, str]:
    """``mlflow.source.git.commit`` (when known) and ``foresight.version`` for a run."""
    tags: dict[str, str] = {}
    commit = git_commit(env)
    if commit:
        tags[GIT_COMMIT_TAG] = commit
    try:
        tags[VERSION_TAG] = version("foresight-aiops")
    except PackageNotFoundError:
        pass
    return tags


def run_name(registered_name: str, model_name: str, snapshot: LakeSnapshot | None, *, role: str = "") -> str:
    """``anomaly-detector stream+streaming_ensemble 2026-12-07T20:05Z``: the family, the model
    (``(baseline)`` after it for a baseline) and the end of the data it was trained on."""
    parts = [registered_name, model_name + (f" ({role})" if role else "")]
    if snapshot is not None and snapshot.end is not None:
        parts.append(snapshot.end.strftime(TIME_FORMAT))
    return " ".join(parts)


@dataclass(frozen=True)
class GateFigures:
    """What the gate compared: the metric, and the candidate's, baseline's and champion's value."""

    metric: str
    higher_is_better: bool
    candidate: float
    baseline: float
    champion: float | None


def version_description(
    model_name: str, snapshot: LakeSnapshot | None, gate: GateFigures, verdict: str, reason: str, *, role: str = "candidate"
) -> str:
    """What one registered version is, in Markdown: the model, its data, the gate's figures and verdict."""
    better = "higher" if gate.higher_is_better else "lower"
    champion = "none yet" if gate.champion is None else f"{gate.champion:.4g}"
    lines = [f"**{role.capitalize()} `{model_name}`**", ""]
    if snapshot is not None:
        lines.append(f"- Data: {snapshot.rows:,} samples of {snapshot.series:,} series ({snapshot.sources_text()}), "
                     f"{snapshot.window}, lake digest `{snapshot.digest}`")
    lines += [
        f"- Gate on `{gate.metric}` ({better} is better): candidate {gate.candidate:.4g}, "
        f"baseline {gate.baseline:.4g}, champion {champion}",
        f"- Verdict: **{verdict}**: {reason}",
    ]
    return "\n".join(lines)


def promotion_note(user: str, when: str, reason: str, previous: str | None) -> str:
    """The line a promotion by hand appends to a version's description."""
    replaced = f" (replacing v{previous})" if previous else ""
    return f"- Promoted to champion by hand by {user} at {when}{replaced}: {reason}"


@dataclass(frozen=True)
class RunLineage:
    """What a logged run and its registered version carry besides the model: a name, the lake
    snapshot it trained on (MLflow input and tags), tags naming the code and the orchestrator's
    run, and the version's description (also the run's note)."""

    run_name: str | None = None
    snapshot: LakeSnapshot | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None

    def run_tags(self) -> dict[str, str]:
        """Every tag the run starts with (MLflow shows ``mlflow.note.content`` as its description)."""
        tags = {**(self.snapshot.tags() if self.snapshot is not None else {}), **self.tags}
        if self.description:
            tags[NOTE_TAG] = self.description
        return tags
