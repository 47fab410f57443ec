output "ingest_queue_url" {
  description = "Send reviews to the head of the chain: `aws sqs send-message --queue-url <this> --message-body '{...}'`."
  value       = module.scoring.ingest_queue_url
}

output "scoring_store_url" {
  description = "The scoring agent's store (`weir outputs --store <this>`)."
  value       = module.scoring.store_url
}

output "alerts_store_url" {
  description = "The alerts agent's store: its log holds the scoring agent's outputs."
  value       = module.alerts.store_url
}

output "alerts_outputs_url" {
  description = "The committed alerts, for `aws s3 ls --recursive` or DuckDB."
  value       = module.alerts.outputs_url
}
