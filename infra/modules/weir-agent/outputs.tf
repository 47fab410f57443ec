################################################################################
# Store
################################################################################

output "s3_bucket_id" {
  description = "Name of the bucket holding the store."
  value       = local.bucket
}

output "s3_bucket_arn" {
  description = "ARN of the bucket holding the store."
  value       = local.bucket_arn
}

output "store_url" {
  description = "The store's URL (`WEIR_STORE`): `weir outputs --store <store_url>` reads it, and `weir:<store_url>` is the sink of an agent feeding this one."
  value       = local.store_url
}

output "outputs_url" {
  description = "Where this agent's committed outputs and dead letters are (`<store_url>/agents/<agent>/`), for DuckDB or Athena."
  value       = "s3://${local.bucket}/${local.agent_prefix}/"
}

################################################################################
# Functions
################################################################################

output "lambda_function_names" {
  description = "Function names by role (`ingest`, `process`, `dispatch`)."
  value       = { for role, function in aws_lambda_function.this : role => function.function_name }
}

output "lambda_function_arns" {
  description = "Function ARNs by role."
  value       = { for role, function in aws_lambda_function.this : role => function.arn }
}

output "lambda_role_arns" {
  description = "ARNs of the functions' IAM roles by role, to grant them more (for example on a KMS key policy)."
  value       = { for role, iam_role in aws_iam_role.this : role => iam_role.arn }
}

output "lambda_role_names" {
  description = "Names of the functions' IAM roles by role."
  value       = { for role, iam_role in aws_iam_role.this : role => iam_role.name }
}

output "cloudwatch_log_group_names" {
  description = "The functions' log groups by role."
  value       = { for role, group in aws_cloudwatch_log_group.this : role => group.name }
}

output "ingest_function_url" {
  description = "Ingest's function URL (AWS_IAM auth), or null when `create_function_url` is false."
  value       = try(aws_lambda_function_url.ingest[0].function_url, null)
}

output "approval_url" {
  description = "The public URL approve and deny links point to, or null without `approval_secret_arn`."
  value       = try(aws_lambda_function_url.approvals[0].function_url, null)
}

################################################################################
# Queues
################################################################################

output "ingest_queue_url" {
  description = "URL of the queue feeding ingest (`aws sqs send-message --queue-url`), or null unless `ingest_source` is `sqs`."
  value       = try(aws_sqs_queue.ingest[0].url, null)
}

output "ingest_queue_arn" {
  description = "ARN of the queue feeding ingest, to let producers send to it; null unless `ingest_source` is `sqs`."
  value       = try(aws_sqs_queue.ingest[0].arn, null)
}

output "ingest_dead_letter_queue_url" {
  description = "URL of the ingest queue's dead-letter queue, or null unless `ingest_source` is `sqs`."
  value       = try(aws_sqs_queue.ingest_dlq[0].url, null)
}

output "failed_invocations_queue_url" {
  description = "URL of the queue recording asynchronous invocations that failed after their retries."
  value       = aws_sqs_queue.failed_invocations.url
}

output "metrics_namespace" {
  description = "The CloudWatch namespace of the functions' metrics (docs/metrics.md), with dimensions `Agent` (this agent) and `Function`; null when `metrics = \"off\"`."
  value       = var.metrics == "emf" ? "weir" : null
}

output "alarm_arns" {
  description = "ARN of each alarm the module created, by name (empty when `create_alarms` is false)."
  value       = { for alarm in aws_cloudwatch_metric_alarm.metric : alarm.alarm_name => alarm.arn }
}
