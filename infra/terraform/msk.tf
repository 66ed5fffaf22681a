# Optional Kafka for the stream processor (enable_msk = true): private, TLS between clients and
# brokers and between brokers, encrypted at rest with the Foresight key, SASL/SCRAM client auth
# (Foresight's Kafka clients speak SCRAM-SHA-512; MSK's IAM auth needs a token callback they do
# not have), broker logs to CloudWatch. Off by default: bring your own Kafka and set
# stream.bootstrap_servers. The SCRAM user's password is the secret AmazonMSK_<name> below: put
# {"username": "foresight", "password": "..."} in it (docs/production.md, Secrets).
resource "aws_security_group" "msk" {
  count       = var.enable_msk ? 1 : 0
  name        = "${var.name}-msk"
  description = "MSK for Foresight: reachable from the cluster only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "msk_from_cluster" {
  count                        = var.enable_msk ? 1 : 0
  security_group_id            = aws_security_group.msk[0].id
  description                  = "Kafka over TLS with SASL/SCRAM from the cluster's nodes"
  ip_protocol                  = "tcp"
  from_port                    = 9096
  to_port                      = 9096
  referenced_security_group_id = var.cluster_security_group_id
}

resource "aws_cloudwatch_log_group" "msk" {
  count             = var.enable_msk ? 1 : 0
  name              = "/aws/msk/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.foresight.arn
}

resource "aws_msk_cluster" "foresight" {
  count                  = var.enable_msk ? 1 : 0
  cluster_name           = var.name
  kafka_version          = var.msk_kafka_version
  number_of_broker_nodes = length(var.private_subnet_ids)

  broker_node_group_info {
    instance_type   = var.msk_instance_type
    client_subnets  = var.private_subnet_ids
    security_groups = [aws_security_group.msk[0].id]
    storage_info {
      ebs_storage_info {
        volume_size = var.msk_volume_size_gb
      }
    }
    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  client_authentication {
    unauthenticated = false
    sasl {
      scram = true
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = aws_kms_key.foresight.arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.msk[0].name
      }
    }
  }
}

# MSK reads SCRAM users from secrets named AmazonMSK_*, encrypted with a customer-managed key.
resource "aws_secretsmanager_secret" "msk_scram" {
  count                   = var.enable_msk ? 1 : 0
  name                    = "AmazonMSK_${var.name}"
  description             = "SCRAM user of the Foresight Kafka clients: {\"username\": ..., \"password\": ...}"
  kms_key_id              = aws_kms_key.foresight.arn
  recovery_window_in_days = 30
  #checkov:skip=CKV2_AWS_57:MSK SCRAM credentials are rotated by writing a new value and restarting the clients; no Lambda rotator ships for them.
}

resource "aws_msk_scram_secret_association" "foresight" {
  count           = var.enable_msk ? 1 : 0
  cluster_arn     = aws_msk_cluster.foresight[0].arn
  secret_arn_list = [aws_secretsmanager_secret.msk_scram[0].arn]
}
