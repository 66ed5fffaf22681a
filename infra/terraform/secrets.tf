# The two tokens Foresight sends out, in Secrets Manager under the Foresight key. Terraform
# creates the entries, not their values: put each value once (docs/production.md, *Secrets*), so
# no token passes through Terraform's state. The cluster reads them through External Secrets
# (infra/k8s/external-secrets.yaml) with the read-only role in iam.tf.
locals {
  secrets = {
    pagerduty_routing_key = "PagerDuty Events API v2 routing key (sinks.pagerduty_routing_key)"
    pagerduty_api_token   = "PagerDuty REST API token for incident history (sinks.pagerduty_api_token)"
    grafana_token         = "Grafana service-account token (sinks.grafana_token)"
    database_urls         = "JSON: forecast_store_url, mlflow_backend_store_uri, prefect_database_url (PostgreSQL URLs with passwords)"
  }
}

resource "aws_secretsmanager_secret" "foresight" {
  for_each                = local.secrets
  name                    = "${var.name}/${each.key}"
  description             = each.value
  kms_key_id              = aws_kms_key.foresight.arn
  recovery_window_in_days = 30
  #checkov:skip=CKV2_AWS_57:These are third-party tokens (PagerDuty, Grafana) and URLs; they are rotated where they are issued, and a Lambda rotator cannot mint them.
}
