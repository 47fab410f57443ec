# Alarms on what needs a person: functions failing or throttled, dead letters waiting in a
# queue, a growing ingest backlog, and, from the functions' own metrics (docs/metrics.md,
# published as EMF log lines), events dead-lettered, a partition falling behind (in
# segments or in time), outputs not reaching the sink, a model's circuit breaker open and,
# when model_cost_alarm_per_hour is set, model calls costing more than that in an hour.
# Each notifies alarm_sns_topic_arn when given.

locals {
  alarm_actions = var.alarm_sns_topic_arn == null ? [] : [var.alarm_sns_topic_arn]

  # Every alarm: a metric of a namespace, with its dimensions, statistic, threshold, period
  # (seconds) and how many periods in a row.
  lambda_alarm = { namespace = "AWS/Lambda", statistic = "Sum", operator = "GreaterThanThreshold", threshold = 0, period = 300, periods = 1 }
  sqs_alarm    = { namespace = "AWS/SQS", statistic = "Maximum", operator = "GreaterThanThreshold", period = 300, periods = 1 }

  # A function failing or throttled.
  function_alarms = {
    for pair in setproduct(keys(local.deployed_functions), ["Errors", "Throttles"]) :
    "${pair[0]}-${lower(pair[1])}" => merge(local.lambda_alarm, {
      dimensions  = tomap({ FunctionName = aws_lambda_function.this[pair[0]].function_name })
      metric      = pair[1]
      description = "${aws_lambda_function.this[pair[0]].function_name}: ${pair[1]} in the last 5 minutes"
    })
  }

  # Dead letters waiting in a queue: a person must look, fix the cause, then redrive.
  dead_letter_alarms = {
    for name, queue in merge(
      { failed-invocations = aws_sqs_queue.failed_invocations.name },
      var.ingest_source == "sqs" ? { ingest-dlq = aws_sqs_queue.ingest_dlq[0].name } : {},
      ) : "${name}-not-empty" => merge(local.sqs_alarm, {
        dimensions  = tomap({ QueueName = queue })
        metric      = "ApproximateNumberOfMessagesVisible"
        threshold   = 0
        description = "${queue}: dead letters are waiting; inspect them, fix the cause, then redrive"
    })
  }

  # Ingest failing or too slow: the oldest queued event keeps ageing.
  backlog_alarms = var.ingest_source == "sqs" ? {
    ingest-backlog = merge(local.sqs_alarm, {
      dimensions  = tomap({ QueueName = aws_sqs_queue.ingest[0].name })
      metric      = "ApproximateAgeOfOldestMessage"
      threshold   = var.backlog_age_alarm_seconds
      description = "${aws_sqs_queue.ingest[0].name}: the oldest message is older than ${var.backlog_age_alarm_seconds} s"
    })
  } : {}

  # The functions' own metrics (EMF), in namespace `weir`, by agent and function.
  weir_alarm = { namespace = "weir", period = 300, periods = 1 }

  # A partition falling behind: log segments left to process, the age of the oldest event
  # left, outputs waiting for the sink.
  behind_alarms = {
    for name, alarm in {
      backlog     = { function = "process", metric = "Backlog", threshold = var.backlog_alarm_segments, what = "log segments to process" }
      undelivered = { function = "dispatch", metric = "Undelivered", threshold = var.undelivered_alarm_outputs, what = "outputs waiting for the sink" }
      lag         = { function = "process", metric = "Lag", threshold = var.lag_alarm_seconds * 1000, what = "milliseconds of lag (the age of its oldest unprocessed event)" }
      } : name => merge(local.weir_alarm, {
        dimensions  = tomap({ Agent = var.agent, Function = alarm.function })
        metric      = alarm.metric
        statistic   = "Maximum"
        operator    = "GreaterThanThreshold"
        threshold   = alarm.threshold
        periods     = var.backlog_alarm_periods
        description = "${var.agent}: a partition has had more than ${alarm.threshold} ${alarm.what} for ${var.backlog_alarm_periods * 5} minutes"
    })
  }

  weir_metric_alarms = var.metrics == "emf" ? merge(local.behind_alarms, {
    dead-letters = merge(local.weir_alarm, {
      dimensions  = tomap({ Agent = var.agent, Function = "process" })
      metric      = "DeadLetters"
      statistic   = "Sum"
      operator    = "GreaterThanThreshold"
      threshold   = 0
      description = "${var.agent}: events were dead-lettered; read them with `weir dead-letters`, fix the cause, then requeue"
    })
    breaker-open = merge(local.weir_alarm, {
      dimensions  = tomap({ Agent = var.agent, Function = "process" })
      metric      = "BreakerOpen"
      statistic   = "Maximum"
      operator    = "GreaterThanOrEqualToThreshold"
      threshold   = 1
      description = "${var.agent}: a model's circuit breaker is open (the provider keeps failing); the partitions needing it wait"
    })
  }, local.cost_alarms) : {}

  # Model calls costing more than model_cost_alarm_per_hour in an hour, at the agent's prices.
  cost_alarms = var.model_cost_alarm_per_hour == null ? {} : {
    model-cost = merge(local.weir_alarm, {
      dimensions  = tomap({ Agent = var.agent, Function = "process" })
      metric      = "ModelCost"
      statistic   = "Sum"
      operator    = "GreaterThanThreshold"
      threshold   = var.model_cost_alarm_per_hour
      period      = 3600
      description = "${var.agent}: its model calls cost more than ${var.model_cost_alarm_per_hour} in an hour, at its prices; the per-Model metric says which model"
    })
  }

  metric_alarms = var.create_alarms ? merge(local.function_alarms, local.dead_letter_alarms, local.backlog_alarms, local.weir_metric_alarms) : {}
}

resource "aws_cloudwatch_metric_alarm" "metric" {
  for_each = local.metric_alarms

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = each.value.periods
  comparison_operator = each.value.operator
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# The queue alarms were `aws_cloudwatch_metric_alarm.queue` before the functions' metrics
# joined them.
moved {
  from = aws_cloudwatch_metric_alarm.queue
  to   = aws_cloudwatch_metric_alarm.metric
}

# The functions' alarms were `aws_cloudwatch_metric_alarm.function` before they joined the
# others.
moved {
  from = aws_cloudwatch_metric_alarm.function["ingest-errors"]
  to   = aws_cloudwatch_metric_alarm.metric["ingest-errors"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function["ingest-throttles"]
  to   = aws_cloudwatch_metric_alarm.metric["ingest-throttles"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function["process-errors"]
  to   = aws_cloudwatch_metric_alarm.metric["process-errors"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function["process-throttles"]
  to   = aws_cloudwatch_metric_alarm.metric["process-throttles"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function["collect-errors"]
  to   = aws_cloudwatch_metric_alarm.metric["collect-errors"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function["collect-throttles"]
  to   = aws_cloudwatch_metric_alarm.metric["collect-throttles"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function["dispatch-errors"]
  to   = aws_cloudwatch_metric_alarm.metric["dispatch-errors"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function["dispatch-throttles"]
  to   = aws_cloudwatch_metric_alarm.metric["dispatch-throttles"]
}
