# The queues: ingest's input queue with its dead-letter queue, and the queue recording
# asynchronous invocations that failed after their retries.

locals {
  # Lambda's advice: a visibility timeout of six times the function's timeout, so a message
  # is not redelivered while a slow or retried invocation still holds it.
  ingest_visibility_timeout_seconds = 6 * var.timeout.ingest + var.sqs_maximum_batching_window_in_seconds
  # Dead letters are kept as long as SQS allows, for investigation and redrive.
  dead_letter_retention_seconds = 1209600
}

resource "aws_sqs_queue" "ingest_dlq" {
  count = var.ingest_source == "sqs" ? 1 : 0

  name                      = "${var.name}-ingest-dlq"
  message_retention_seconds = local.dead_letter_retention_seconds
  sqs_managed_sse_enabled   = var.kms_key_arn == null
  kms_master_key_id         = var.kms_key_arn
  tags                      = var.tags
}

resource "aws_sqs_queue" "ingest" {
  count = var.ingest_source == "sqs" ? 1 : 0

  name                       = "${var.name}-ingest"
  visibility_timeout_seconds = local.ingest_visibility_timeout_seconds
  sqs_managed_sse_enabled    = var.kms_key_arn == null
  kms_master_key_id          = var.kms_key_arn
  tags                       = var.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.ingest_dlq[0].arn
    maxReceiveCount     = var.sqs_max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "ingest_dlq" {
  count = var.ingest_source == "sqs" ? 1 : 0

  queue_url = aws_sqs_queue.ingest_dlq[0].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.ingest[0].arn]
  })
}

resource "aws_sqs_queue" "failed_invocations" {
  name                      = "${var.name}-failed-invocations"
  message_retention_seconds = local.dead_letter_retention_seconds
  sqs_managed_sse_enabled   = var.kms_key_arn == null
  kms_master_key_id         = var.kms_key_arn
  tags                      = var.tags
}
