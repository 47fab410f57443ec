output "ingest_queue_url" {
  description = "Send reviews here: `aws sqs send-message --queue-url <this> --message-body '{...}'`."
  value       = module.review_analysis.ingest_queue_url
}

output "store_url" {
  description = "The agent's store: `weir outputs --store <this>`."
  value       = module.review_analysis.store_url
}

output "outputs_url" {
  description = "The committed outputs and dead letters, for `aws s3 ls --recursive` or DuckDB."
  value       = module.review_analysis.outputs_url
}

output "lambda_function_names" {
  description = "The functions, for `aws lambda invoke` and their logs."
  value       = module.review_analysis.lambda_function_names
}
