# FORESIGHT_HOME on a shared file system: the PagerDuty outbox and its delivery ledger, the AWS
# action log and the reports are files that every flow-run pod and the stream processor append
# to (under file locks, which EFS's NFSv4 supports). A pod's own disk would lose them with the
# pod. Encrypted with the Foresight key, reachable from the cluster only, backed up.
resource "aws_efs_file_system" "home" {
  creation_token   = "${var.name}-home"
  encrypted        = true
  kms_key_id       = aws_kms_key.foresight.arn
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"

  lifecycle_policy {
    transition_to_ia = "AFTER_30_DAYS"
  }
}

resource "aws_efs_backup_policy" "home" {
  file_system_id = aws_efs_file_system.home.id
  backup_policy {
    status = "ENABLED"
  }
}

resource "aws_security_group" "efs" {
  name        = "${var.name}-efs"
  description = "EFS for FORESIGHT_HOME: reachable from the cluster only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "efs_from_cluster" {
  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from the cluster's nodes"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = var.cluster_security_group_id
}

resource "aws_efs_mount_target" "home" {
  for_each        = toset(var.private_subnet_ids)
  file_system_id  = aws_efs_file_system.home.id
  subnet_id       = each.value
  security_groups = [aws_security_group.efs.id]
}

# Pods mount the file system through this access point only: as the image's user (10001), under
# /foresight, never as root.
resource "aws_efs_access_point" "home" {
  file_system_id = aws_efs_file_system.home.id
  posix_user {
    uid = 10001
    gid = 10001
  }
  root_directory {
    path = "/foresight"
    creation_info {
      owner_uid   = 10001
      owner_gid   = 10001
      permissions = "0750"
    }
  }
}

resource "aws_efs_file_system_policy" "home" {
  file_system_id = aws_efs_file_system.home.id
  policy         = data.aws_iam_policy_document.efs.json
}

data "aws_iam_policy_document" "efs" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["*"]
    resources = [aws_efs_file_system.home.arn]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
