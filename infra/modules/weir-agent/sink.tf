# Dispatch's sink (`WEIR_SINK`), parsed into what dispatch needs permission on: a queue, a
# topic, or another agent's log. An https:// webhook needs none.

locals {
  sink_sqs  = try(regex("^sqs:https://sqs\\.([a-z0-9-]+)\\.amazonaws\\.com/([0-9]{12})/(.+)$", var.sink), null)
  sink_sns  = try(regex("^sns:(arn:.+)$", var.sink)[0], null)
  sink_weir = try(regex("^weir:s3://([^/]+)/(.+)$", var.sink), null)

  sink_queue_arn = local.sink_sqs == null ? null : "arn:${data.aws_partition.current.partition}:sqs:${local.sink_sqs[0]}:${local.sink_sqs[1]}:${local.sink_sqs[2]}"

  # Logs a function appends to: ingest its own; dispatch the next agent's, when the sink is
  # weir:. Appending reads the log's config, claims and tail hint, and lists its tail.
  log_appenders = merge(
    { ingest = { bucket_arn = local.bucket_arn, log_prefix = local.log_prefix } },
    local.approvals ? { approvals = { bucket_arn = local.bucket_arn, log_prefix = local.log_prefix } } : {},
    local.sink_weir == null ? {} : {
      dispatch = {
        bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${local.sink_weir[0]}"
        log_prefix = "${local.sink_weir[1]}/log"
      }
    },
  )
}

data "aws_iam_policy_document" "log_appender" {
  for_each = local.log_appenders

  statement {
    sid       = "ListLog"
    actions   = ["s3:ListBucket"]
    resources = [each.value.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${each.value.log_prefix}/*"]
    }
  }

  statement {
    sid       = "AppendToLog"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${each.value.bucket_arn}/${each.value.log_prefix}/*"]
  }
}

data "aws_iam_policy_document" "sink" {
  dynamic "statement" {
    for_each = local.sink_queue_arn == null ? [] : [local.sink_queue_arn]
    content {
      sid       = "SendToSinkQueue"
      actions   = ["sqs:SendMessage"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.sink_sns == null ? [] : [local.sink_sns]
    content {
      sid       = "PublishToSinkTopic"
      actions   = ["sns:Publish"]
      resources = [statement.value]
    }
  }
}
