output "lake_url" {
  description = "settings: lake_url (FORESIGHT_LAKE_URL)."
  value       = "s3://${aws_s3_bucket.data["lake"].bucket}/${var.lake_prefix}"
}

output "artifact_bucket" {
  description = "MLflow's --artifacts-destination is s3://<this>/<artifact_prefixes.mlflow>; sinks.aws.s3_bucket too."
  value       = aws_s3_bucket.data["artifacts"].bucket
}

output "db_endpoint" {
  description = "PostgreSQL host:port for the database URLs."
  value       = aws_db_instance.foresight.endpoint
}

output "db_master_secret_arn" {
  description = "Secrets Manager entry RDS keeps the master password in (rotated by RDS)."
  value       = aws_db_instance.foresight.master_user_secret[0].secret_arn
}

output "secret_names" {
  description = "Secrets Manager entries to fill once (docs/production.md, Secrets)."
  value       = { for k, s in aws_secretsmanager_secret.foresight : k => s.name }
}

output "role_arns" {
  description = "IRSA roles: annotate the service accounts in infra/k8s/rbac.yaml with these."
  value       = { for k, r in aws_iam_role.irsa : k => r.arn }
}

output "kms_key_arn" {
  description = "The Foresight key."
  value       = aws_kms_key.foresight.arn
}

output "msk_bootstrap_brokers" {
  description = "stream.bootstrap_servers (SASL/SCRAM over TLS), when enable_msk."
  value       = var.enable_msk ? aws_msk_cluster.foresight[0].bootstrap_brokers_sasl_scram : null
}

output "home_volume_handle" {
  description = "volumeHandle of the foresight-home PersistentVolume (EFS CSI: <file system id>::<access point id>)."
  value       = "${aws_efs_file_system.home.id}::${aws_efs_access_point.home.id}"
}
