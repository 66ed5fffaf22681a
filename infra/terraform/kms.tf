# One customer-managed key for everything Foresight stores: the buckets, the database, its
# snapshots and Performance Insights, the secrets, the log groups and MSK. Rotated yearly.
locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
}

resource "aws_kms_key" "foresight" {
  description             = "${var.name}: S3, RDS, Secrets Manager, CloudWatch Logs and MSK encryption"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "foresight" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.foresight.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:A key policy's resource "*" is this key alone; the account-root statement is AWS's default, delegating to IAM.
  #checkov:skip=CKV_AWS_356:A key policy's resource "*" is this key alone, not every resource.
  #checkov:skip=CKV_AWS_109:The account root administers its own key (AWS's default key policy); without it the key becomes unmanageable.
  # The account's administrators manage the key through IAM, as with any key.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch Logs encrypts the RDS and MSK log groups with it.
  statement {
    sid = "CloudWatchLogsUse"
    actions = [
      "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }
}
