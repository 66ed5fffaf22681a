variable "region" {
  description = "AWS region for every resource."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Prefix of every resource name (bucket names add the account id, to be unique)."
  type        = string
  default     = "foresight"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name: 2 to 21 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "The VPC of the Kubernetes cluster: the database (and MSK) live in its private subnets."
  type        = string
}

variable "private_subnet_ids" {
  description = "At least two private subnets in different availability zones."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "private_subnet_ids: RDS and MSK need at least two subnets in different zones."
  }
}

variable "cluster_security_group_id" {
  description = "Security group of the cluster's nodes (or pods): the only source allowed to reach PostgreSQL and Kafka."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (EKS: aws_iam_openid_connect_provider), for IRSA."
  type        = string
}

variable "oidc_issuer" {
  description = "The cluster's OIDC issuer without https:// (e.g. oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE)."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the Foresight workloads (infra/k8s/namespace.yaml)."
  type        = string
  default     = "foresight"
}

variable "lake_prefix" {
  description = "Key prefix of the lake in the lake bucket (settings: lake_url = s3://<lake bucket>/<prefix>)."
  type        = string
  default     = "lake"
}

variable "artifact_prefixes" {
  description = "Key prefixes in the artifact bucket: MLflow artifacts and the rightsizing reports."
  type        = object({ mlflow = string, reports = string })
  default     = { mlflow = "mlflow", reports = "foresight/rightsizing" }
}

variable "scaling_tag" {
  description = "Tag (key and value) an Auto Scaling group must carry before Foresight may change its scheduled actions."
  type        = object({ key = string, value = string })
  default     = { key = "foresight:scaling", value = "enabled" }
}

variable "db_instance_class" {
  description = "RDS instance class (one database holds the Prefect, MLflow and forecast-store schemas)."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage_gb" {
  description = "Initial storage in GiB; storage autoscales up to db_max_allocated_storage_gb."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 200
}

variable "db_engine_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
}

variable "db_backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days: between 7 and 35."
  }
}

variable "enable_msk" {
  description = "Create an MSK (Kafka) cluster for the stream processor; off when you bring your own Kafka."
  type        = bool
  default     = false
}

variable "msk_instance_type" {
  description = "MSK broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "msk_kafka_version" {
  description = "Kafka version of the MSK cluster."
  type        = string
  default     = "3.6.0"
}

variable "msk_volume_size_gb" {
  description = "EBS storage per MSK broker in GiB."
  type        = number
  default     = 100
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups this module creates (RDS, MSK)."
  type        = number
  default     = 365
}
