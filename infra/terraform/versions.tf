# Foresight's AWS resources: the lake and artifact buckets, the PostgreSQL database, the IAM roles
# the pods assume (IRSA), the Secrets Manager entries for the PagerDuty and Grafana tokens and,
# optionally, an MSK cluster. docs/production.md walks through `terraform apply`.
terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6"
    }
  }

  # Keep the state remote and locked, e.g.:
  # backend "s3" {
  #   bucket       = "<your-terraform-state-bucket>"
  #   key          = "foresight/terraform.tfstate"
  #   region       = "us-east-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { "app" = "foresight" })
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
