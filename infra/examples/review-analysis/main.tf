# The review-analysis agent on AWS: reviews sent to an SQS queue are ingested into the log,
# scored by the process function, and each committed result is posted to a webhook.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

module "review_analysis" {
  source = "../../modules/weir-agent"

  name        = var.name
  agent       = "review-analysis"
  package_dir = var.package_dir
  # The agent crate's own process binary (functions/review-analysis), agent linked in.
  process_binary = "review-analysis"

  # Reviews are keyed by product: {"id": "<product>", "review": "...", "ts": ...}.
  key_field = "/id"

  ingest_source = "sqs"
  sink          = var.webhook_url

  model_provider           = var.model_provider
  model                    = var.model
  model_base_url           = var.model_base_url
  model_api_key_secret_arn = var.model_api_key_secret_arn

  alarm_sns_topic_arn = var.alarm_sns_topic_arn
  tags                = { agent = "review-analysis" }
}
