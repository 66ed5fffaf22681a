# Roles the pods assume through the cluster's OIDC provider (IRSA), one per Kubernetes service
# account (infra/k8s/rbac.yaml), each with only what its pods call:
#   foresight-runs          flow runs and the stream processor: the lake prefix, the report prefix,
#                           CloudWatch read-only, the rightsizing lookups, scheduled actions on
#                           tagged Auto Scaling groups only
#   foresight-mlflow        the MLflow server: the MLflow artifact prefix
#   foresight-external-secrets  External Secrets: read the Foresight secrets
locals {
  lake_bucket_arn     = aws_s3_bucket.data["lake"].arn
  artifact_bucket_arn = aws_s3_bucket.data["artifacts"].arn
  irsa_roles = {
    runs             = "foresight-runs"
    mlflow           = "foresight-mlflow"
    external_secrets = "foresight-external-secrets"
  }
}

data "aws_iam_policy_document" "irsa_assume" {
  for_each = local.irsa_roles

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${each.value}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "irsa" {
  for_each           = local.irsa_roles
  name               = "${var.name}-${replace(each.key, "_", "-")}"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume[each.key].json
}

# --- flow runs and the stream processor -------------------------------------------------------
data "aws_iam_policy_document" "runs" {
  statement {
    sid       = "LakeList"
    actions   = ["s3:ListBucket"]
    resources = [local.lake_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.lake_prefix}/*", var.lake_prefix]
    }
  }
  statement {
    sid       = "LakeObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${local.lake_bucket_arn}/${var.lake_prefix}/*"]
  }
  statement {
    sid       = "ReportObjects"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["${local.artifact_bucket_arn}/${var.artifact_prefixes.reports}/*"]
  }
  statement {
    sid       = "BucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.foresight.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
  # Read-only CloudWatch: these actions have no resource-level permissions, so "*" is the only
  # resource IAM accepts; none of them changes anything.
  statement {
    sid       = "CloudWatchReadOnly"
    actions   = ["cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics", "cloudwatch:ListMetrics"]
    resources = ["*"]
  }
  # Rightsizing's look-ups: instance types and list prices (read-only, no resource-level permissions).
  statement {
    sid       = "RightsizingLookups"
    actions   = ["ec2:DescribeInstanceTypes", "pricing:GetProducts"]
    resources = ["*"]
  }
  statement {
    sid       = "AutoScalingRead"
    actions   = ["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScheduledActions"]
    resources = ["*"] # Describe* calls have no resource-level permissions
  }
  # Scheduled actions only on groups that carry the opt-in tag: an untagged group cannot be changed.
  statement {
    sid       = "ScheduledActionsOnTaggedGroups"
    actions   = ["autoscaling:PutScheduledUpdateGroupAction", "autoscaling:DeleteScheduledAction"]
    resources = ["arn:${local.partition}:autoscaling:${var.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/*"]
    condition {
      test     = "StringEquals"
      variable = "autoscaling:ResourceTag/${var.scaling_tag.key}"
      values   = [var.scaling_tag.value]
    }
  }
}

resource "aws_iam_role_policy" "runs" {
  name   = "${var.name}-runs"
  role   = aws_iam_role.irsa["runs"].id
  policy = data.aws_iam_policy_document.runs.json
}

# --- the MLflow server ----------------------------------------------------------------------
data "aws_iam_policy_document" "mlflow" {
  statement {
    sid       = "ArtifactList"
    actions   = ["s3:ListBucket"]
    resources = [local.artifact_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.artifact_prefixes.mlflow}/*", var.artifact_prefixes.mlflow]
    }
  }
  statement {
    sid       = "ArtifactObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${local.artifact_bucket_arn}/${var.artifact_prefixes.mlflow}/*"]
  }
  statement {
    sid       = "BucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.foresight.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "mlflow" {
  name   = "${var.name}-mlflow"
  role   = aws_iam_role.irsa["mlflow"].id
  policy = data.aws_iam_policy_document.mlflow.json
}

# --- External Secrets: read Foresight's secrets, nothing else -------------------------------
data "aws_iam_policy_document" "external_secrets" {
  statement {
    sid     = "ReadForesightSecrets"
    actions = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = concat(
      [for s in aws_secretsmanager_secret.foresight : s.arn],
      [for s in aws_secretsmanager_secret.msk_scram : s.arn],
    )
  }
  statement {
    sid       = "DecryptThroughSecretsManager"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.foresight.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "external_secrets" {
  name   = "${var.name}-external-secrets"
  role   = aws_iam_role.irsa["external_secrets"].id
  policy = data.aws_iam_policy_document.external_secrets.json
}
