variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Prefix of the resource names of both agents."
  type        = string
  default     = "reviews"
}

variable "package_dir" {
  description = "Where `infra/package` put the zips (`<target dir>/lambda`); the default is the workspace's `target/lambda`."
  type        = string
  default     = "../../../target/lambda"
}

variable "alerts_webhook_url" {
  description = "HTTPS endpoint receiving each alert as a JSON POST."
  type        = string
}

variable "model_provider" {
  description = "Model provider of both agents: `openai`, `anthropic`, `ollama` or `offline`."
  type        = string
  default     = "openai"
}

variable "model" {
  description = "Model id at the provider."
  type        = string
  default     = "gpt-4o-mini"
}

variable "model_base_url" {
  description = "Base URL of an OpenAI-compatible, Anthropic or Ollama endpoint; null for the provider's own."
  type        = string
  default     = null
}

variable "model_api_key_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the model API key; null with the `offline` provider."
  type        = string
  default     = null
}
