# What invokes the functions: ingest from its queue, from S3 notifications or through its
# function URL; process, dispatch and collect on schedules. The path is event-driven besides:
# ingest invokes process for the partitions it appended to, process invokes dispatch for those
# it committed outputs to, and itself while backlog remains (their roles allow exactly that:
# iam.tf); the schedules are the safety net.

resource "aws_lambda_event_source_mapping" "ingest_queue" {
  count = var.ingest_source == "sqs" ? 1 : 0

  event_source_arn                   = aws_sqs_queue.ingest[0].arn
  function_name                      = aws_lambda_function.this["ingest"].arn
  batch_size                         = var.sqs_batch_size
  maximum_batching_window_in_seconds = var.sqs_maximum_batching_window_in_seconds
  # Ingest reports the messages it could not append; only those are retried.
  function_response_types = ["ReportBatchItemFailures"]

  # The role's SQS permissions must exist before Lambda starts polling.
  depends_on = [aws_iam_role_policy.this]
}

resource "aws_lambda_permission" "s3_source" {
  count = var.ingest_source == "s3" ? 1 : 0

  statement_id   = "IngestFromS3"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this["ingest"].function_name
  principal      = "s3.amazonaws.com"
  source_arn     = "arn:${data.aws_partition.current.partition}:s3:::${var.s3_source.bucket}"
  source_account = data.aws_caller_identity.current.account_id
}

resource "aws_s3_bucket_notification" "s3_source" {
  count = var.ingest_source == "s3" ? 1 : 0

  bucket = var.s3_source.bucket

  lambda_function {
    lambda_function_arn = aws_lambda_function.this["ingest"].arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = var.s3_source.prefix
    filter_suffix       = var.s3_source.suffix
  }

  depends_on = [aws_lambda_permission.s3_source]
}

resource "aws_lambda_function_url" "ingest" {
  count = var.create_function_url ? 1 : 0

  function_name      = aws_lambda_function.this["ingest"].function_name
  authorization_type = "AWS_IAM"
}

# Approve and deny links are followed by a browser or a Slack button, which cannot sign: the
# approvals URL is public, and the function behind it takes only links whose token it checks.
resource "aws_lambda_function_url" "approvals" {
  #checkov:skip=CKV_AWS_258:a public URL on purpose: it takes only HMAC-signed, one-time, expiring approval tokens (WEIR_INGEST_ACCEPT=approvals) and refuses everything else
  count = local.approvals ? 1 : 0

  function_name      = aws_lambda_function.this["approvals"].function_name
  authorization_type = "NONE"
}

resource "aws_lambda_permission" "approvals_url" {
  #checkov:skip=CKV_AWS_301:the approvals function is public on purpose, through its URL only (function_url_auth_type NONE): it takes only signed approval tokens
  count = local.approvals ? 1 : 0

  statement_id           = "FollowApprovalLinks"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this["approvals"].function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

locals {
  schedules = {
    process  = var.process_schedule
    dispatch = var.dispatch_schedule
    collect  = var.collect_schedule
  }
}

resource "aws_cloudwatch_event_rule" "schedule" {
  for_each = local.schedules

  name                = "${var.name}-${each.key}"
  description         = "Invokes ${aws_lambda_function.this[each.key].function_name}"
  schedule_expression = each.value
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "schedule" {
  for_each = local.schedules

  rule = aws_cloudwatch_event_rule.schedule[each.key].name
  arn  = aws_lambda_function.this[each.key].arn
}

resource "aws_lambda_permission" "schedule" {
  for_each = local.schedules

  statement_id  = "InvokeOnSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.key].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule[each.key].arn
}
