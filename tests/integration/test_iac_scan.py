"""checkov over the Terraform, the Kubernetes manifests and the Dockerfile: 0 failed checks, every
skip carrying its reason in the code, and the checks this project relies on evaluated and passed
(not skipped, not silently gone from checkov's set).

checkov lives in a virtualenv of its own (it pins boto3 below requirements.lock): .ci/run makes
it with infra/ci/checkov-venv.sh; elsewhere run that script once, or the test skips saying so
(in CI, where ``CI`` is set, a missing checkov fails).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from support.servers import missing_dependency

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# Where infra/ci/checkov-venv.sh puts it (an empty XDG_CACHE_HOME counts as unset, as in the script).
DEFAULT_VENV = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "foresight" / "checkov-venv"
# What the issue asks of the infrastructure, as checkov's check id and the resource it must pass on
# (a skip elsewhere is fine, e.g. SSE-KMS on the access-log bucket, which S3 logging cannot use).
REQUIRED_PASSES = {
    ("CKV_AWS_16", "aws_db_instance.foresight"): "RDS encrypted",
    ("CKV_AWS_17", "aws_db_instance.foresight"): "RDS not public",
    ("CKV_AWS_133", "aws_db_instance.foresight"): "RDS backups kept",
    ("CKV_AWS_293", "aws_db_instance.foresight"): "RDS deletion protection",
    ("CKV_AWS_145", 'aws_s3_bucket.data["lake"]'): "lake encrypted with KMS",
    ("CKV_AWS_145", 'aws_s3_bucket.data["artifacts"]'): "artifacts encrypted with KMS",
    ("CKV_AWS_21", 'aws_s3_bucket.data["lake"]'): "lake versioned",
    ("CKV_AWS_21", 'aws_s3_bucket.data["artifacts"]'): "artifacts versioned",
    ("CKV2_AWS_6", 'aws_s3_bucket.data["lake"]'): "lake public access blocked",
    ("CKV2_AWS_6", 'aws_s3_bucket.data["artifacts"]'): "artifacts public access blocked",
    ("CKV_AWS_149", 'aws_secretsmanager_secret.foresight["grafana_token"]'): "secrets under the Foresight key",
    ("CKV_AWS_7", "aws_kms_key.foresight"): "KMS key rotation",
    ("CKV_K8S_40", "Deployment.foresight.foresight-stream"): "stream runs with a high uid",
    ("CKV_K8S_22", "Deployment.foresight.foresight-worker"): "worker's root file system read-only",
    ("CKV_DOCKER_3", "Dockerfile.USER"): "the image sets a non-root USER",
    ("CKV_DOCKER_2", "Dockerfile."): "the image has a HEALTHCHECK",
}


# .ci/run installs checkov beside the test run and names the file its exit code lands in.
INSTALL_WAIT_SECONDS = 900


def wait_for_background_install() -> None:
    done = os.environ.get("FORESIGHT_CHECKOV_DONE")
    if not done:
        return
    deadline = time.monotonic() + INSTALL_WAIT_SECONDS
    while not Path(done).exists():
        if time.monotonic() > deadline:
            pytest.fail(f"checkov's background install did not finish in {INSTALL_WAIT_SECONDS} s")
        time.sleep(1)
    if Path(done).read_text().strip() != "0":
        log = Path(os.environ.get("FORESIGHT_CHECKOV_LOG", "/dev/null")).read_text()[-3000:]
        pytest.fail(f"checkov's install failed (infra/ci/checkov-venv.sh):\n{log}")


def checkov_bin() -> Path:
    wait_for_background_install()
    venv = Path(os.environ.get("FORESIGHT_CHECKOV_VENV") or DEFAULT_VENV)
    binary = venv / "bin" / "checkov"
    if not binary.exists():
        missing_dependency(f"checkov is not installed at {venv}: run `bash infra/ci/checkov-venv.sh` (CI does)")
    return binary


@pytest.fixture(scope="module")
def reports() -> list[dict[str, Any]]:
    """One checkov run over everything (its start-up is most of its time)."""
    # --file with every file, not --directory per folder: then checkov prints one JSON list.
    files = [*sorted(ROOT.glob("infra/terraform/*.tf")), *sorted(ROOT.glob("infra/k8s/*.yaml")), ROOT / "Dockerfile"]
    done = subprocess.run(
        [str(checkov_bin()), "--file", *(str(f.relative_to(ROOT)) for f in files),
         "--framework", "terraform", "kubernetes", "dockerfile", "--output", "json",
         "--skip-download"],  # offline: no policy metadata from the vendor's platform
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.stdout.strip(), f"checkov printed nothing (exit {done.returncode}): {done.stderr[-3000:]}"
    parsed = json.loads(done.stdout)
    return parsed if isinstance(parsed, list) else [parsed]


def results(reports: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [check for report in reports for check in report["results"][kind]]


def test_every_framework_was_scanned(reports: list[dict[str, Any]]) -> None:
    assert {r["check_type"] for r in reports} == {"terraform", "kubernetes", "dockerfile"}
    for report in reports:
        assert report["summary"]["passed"] > 0, report["check_type"]


def test_no_check_fails(reports: list[dict[str, Any]]) -> None:
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in results(reports, "failed_checks")]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)


def test_every_skip_says_why(reports: list[dict[str, Any]]) -> None:
    for check in results(reports, "skipped_checks"):
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason.split()) >= 5, f"{check['check_id']} on {check['resource']} is skipped without a reason"


def test_the_required_controls_pass(reports: list[dict[str, Any]]) -> None:
    passed = {(c["check_id"], c["resource"]) for c in results(reports, "passed_checks")}
    missing = {
        f"{cid} on {resource}": what for (cid, resource), what in REQUIRED_PASSES.items()
        if not any(p == cid and r.startswith(resource) for p, r in passed)
    }
    assert not missing, f"not evaluated or not passed: {missing}"
