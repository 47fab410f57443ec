# Alarms on what needs a person: functions failing or throttled, dead letters waiting in a
# queue, and a growing ingest backlog. Each notifies alarm_sns_topic_arn when given.

locals {
  alarm_actions = var.alarm_sns_topic_arn == null ? [] : [var.alarm_sns_topic_arn]

  function_alarms = var.create_alarms ? {
    for pair in setproduct(keys(local.functions), ["Errors", "Throttles"]) :
    "${pair[0]}-${lower(pair[1])}" => { function = pair[0], metric = pair[1] }
  } : {}

  # Dead letters waiting in a queue: a person must look, fix the cause, then redrive.
  dead_letter_alarms = {
    for name, queue in merge(
      { failed-invocations = aws_sqs_queue.failed_invocations.name },
      var.ingest_source == "sqs" ? { ingest-dlq = aws_sqs_queue.ingest_dlq[0].name } : {},
      ) : "${name}-not-empty" => {
      queue       = queue
      metric      = "ApproximateNumberOfMessagesVisible"
      threshold   = 0
      description = "${queue}: dead letters are waiting; inspect them, fix the cause, then redrive"
    }
  }

  # Ingest failing or too slow: the oldest queued event keeps ageing.
  backlog_alarms = var.ingest_source == "sqs" ? {
    ingest-backlog = {
      queue       = aws_sqs_queue.ingest[0].name
      metric      = "ApproximateAgeOfOldestMessage"
      threshold   = var.backlog_age_alarm_seconds
      description = "${aws_sqs_queue.ingest[0].name}: the oldest message is older than ${var.backlog_age_alarm_seconds} s"
    }
  } : {}

  queue_alarms = var.create_alarms ? merge(local.dead_letter_alarms, local.backlog_alarms) : {}
}

resource "aws_cloudwatch_metric_alarm" "function" {
  for_each = local.function_alarms

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = "${aws_lambda_function.this[each.value.function].function_name}: ${each.value.metric} in the last 5 minutes"
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric
  dimensions          = { FunctionName = aws_lambda_function.this[each.value.function].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "queue" {
  for_each = local.queue_alarms

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/SQS"
  metric_name         = each.value.metric
  dimensions          = { QueueName = each.value.queue }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}
