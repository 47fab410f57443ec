# Two agents in a chain: `review-scoring` scores every review sent to its queue, and its
# dispatch appends each result to the log of `review-alerts` (sink `weir:<store-url>`), which
# decides on alerts and posts them to a webhook. Each agent has its own bucket, functions and
# roles; the first one's dispatch may append to exactly the second one's log.

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

module "scoring" {
  source = "../../modules/weir-agent"

  name        = "${var.name}-scoring"
  agent       = "review-scoring"
  package_dir = var.package_dir
  # weir-process runs the agent file, which the module uploads into the agent's store.
  agent_file = "${path.module}/agents/review-scoring.yaml"

  ingest_source = "sqs"
  sink          = "weir:${module.alerts.store_url}"

  model_provider           = var.model_provider
  model                    = var.model
  model_base_url           = var.model_base_url
  model_api_key_secret_arn = var.model_api_key_secret_arn
  tags                     = { chain = var.name }
}

module "alerts" {
  source = "../../modules/weir-agent"

  name        = "${var.name}-alerts"
  agent       = "review-alerts"
  package_dir = var.package_dir
  agent_file  = "${path.module}/agents/review-alerts.yaml"

  # Fed by the scoring agent's dispatch, which appends to this agent's log directly.
  ingest_source = "none"
  sink          = var.alerts_webhook_url

  model_provider           = var.model_provider
  model                    = var.model
  model_base_url           = var.model_base_url
  model_api_key_secret_arn = var.model_api_key_secret_arn
  tags                     = { chain = var.name }
}
