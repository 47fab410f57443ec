# One role per function, each allowed only what docs/configuration.md ("Permissions per
# function") lists for it: S3 actions on its own sub-prefixes of the store, logs to its own
# log group, and the few resources it sends to.

data "aws_iam_policy_document" "assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.deployed_functions

  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume_role.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "this" {
  for_each = local.deployed_functions

  name   = "weir-${each.key}"
  role   = aws_iam_role.this[each.key].id
  policy = local.role_policies[each.key]
}

locals {
  role_policies = {
    ingest    = data.aws_iam_policy_document.ingest.json
    process   = data.aws_iam_policy_document.process.json
    dispatch  = data.aws_iam_policy_document.dispatch.json
    collect   = data.aws_iam_policy_document.collect.json
    approvals = one(data.aws_iam_policy_document.approvals[*].json)
  }
}

# What every function needs: its own log group, the failed-invocations queue as its
# on-failure destination, and the store's KMS key when there is one.
data "aws_iam_policy_document" "function_base" {
  for_each = local.deployed_functions

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this[each.key].arn}:*"]
  }

  statement {
    sid       = "RecordFailedInvocations"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failed_invocations.arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "UseStoreKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

# Reading what the agent committed: dispatch delivers it; ingest requeues its dead letters
# (`{"requeue_dead_letters": ...}`).
data "aws_iam_policy_document" "commit_reader" {
  statement {
    sid       = "ListCommits"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.agent_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadCommits"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/${local.agent_prefix}/*"]
  }
}

# Every invocation's usage record (docs/observability.md, "Cost"), for the functions whose
# other writes go elsewhere.
data "aws_iam_policy_document" "usage_writer" {
  statement {
    sid       = "WriteUsageRecords"
    actions   = ["s3:PutObject"]
    resources = ["${local.bucket_arn}/${local.agent_prefix}/usage/*"]
  }
}

data "aws_iam_policy_document" "ingest" {
  source_policy_documents = [
    data.aws_iam_policy_document.function_base["ingest"].json,
    data.aws_iam_policy_document.log_appender["ingest"].json,
    data.aws_iam_policy_document.commit_reader.json,
    data.aws_iam_policy_document.usage_writer.json,
  ]

  statement {
    sid       = "TriggerProcess"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this["process"].arn]
  }

  dynamic "statement" {
    for_each = var.ingest_source == "sqs" ? [aws_sqs_queue.ingest[0].arn] : []
    content {
      sid       = "ReceiveFromIngestQueue"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.ingest_source == "s3" ? [var.s3_source] : []
    content {
      sid       = "ReadSourceObjects"
      actions   = ["s3:GetObject"]
      resources = ["arn:${data.aws_partition.current.partition}:s3:::${statement.value.bucket}/${statement.value.prefix}*"]
    }
  }
}

data "aws_iam_policy_document" "process" {
  source_policy_documents = concat(
    [data.aws_iam_policy_document.function_base["process"].json],
    [for secret, document in data.aws_iam_policy_document.secret_reader : document.json if secret == "model_api_key"],
  )

  statement {
    sid       = "ListLogAndCommits"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.log_prefix}/*", "${local.agent_prefix}/*", "${local.shadows_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadLog"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/${local.log_prefix}/*"]
  }

  statement {
    sid       = "ReadWriteCommits"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${local.bucket_arn}/${local.agent_prefix}/*"]
  }

  # A replay fanned out over the function (`weir replay --function`) commits in its shadow.
  statement {
    sid       = "ReadWriteShadows"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${local.bucket_arn}/${local.shadows_prefix}/*"]
  }

  statement {
    sid       = "ContinueItselfAndTriggerDispatch"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this["process"].arn, aws_lambda_function.this["dispatch"].arn]
  }
}

data "aws_iam_policy_document" "dispatch" {
  source_policy_documents = concat(
    [
      data.aws_iam_policy_document.function_base["dispatch"].json,
      data.aws_iam_policy_document.sink.json,
      data.aws_iam_policy_document.commit_reader.json,
      data.aws_iam_policy_document.usage_writer.json,
    ],
    [for appender, document in data.aws_iam_policy_document.log_appender : document.json if appender == "dispatch"],
    [for secret, document in data.aws_iam_policy_document.secret_reader : document.json if secret == "approval"],
  )

  statement {
    sid       = "KeepCursor"
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.bucket_arn}/${local.dispatch_prefix}/*"]
  }

  # The links' URL: the approvals function's, read once at cold start.
  dynamic "statement" {
    for_each = local.approvals ? [aws_lambda_function.this["approvals"].arn] : []
    content {
      sid       = "FindApprovalsUrl"
      actions   = ["lambda:GetFunctionUrlConfig"]
      resources = [statement.value]
    }
  }
}

# The public approvals function: appends answers to the log (once per request), reads the
# answer back, triggers process, and reads the secret the links are signed with.
data "aws_iam_policy_document" "approvals" {
  count = local.approvals ? 1 : 0

  source_policy_documents = [
    data.aws_iam_policy_document.function_base["approvals"].json,
    data.aws_iam_policy_document.log_appender["approvals"].json,
    data.aws_iam_policy_document.usage_writer.json,
    data.aws_iam_policy_document.secret_reader["approval"].json,
  ]

  statement {
    sid       = "TriggerProcess"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this["process"].arn]
  }
}

# Collection reads every agent's progress in the store (a log segment goes only once all
# have processed it), and deletes this agent's superseded objects and the processed log.
data "aws_iam_policy_document" "collect" {
  source_policy_documents = [data.aws_iam_policy_document.function_base["collect"].json]

  statement {
    sid       = "ListLogAndAgents"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.log_prefix}/*", "${local.agents_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadAgentsProgress"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/${local.log_prefix}/*", "${local.bucket_arn}/${local.agents_prefix}/*"]
  }

  statement {
    sid       = "CollectAgent"
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.bucket_arn}/${local.agent_prefix}/*"]
  }

  statement {
    sid       = "CollectLog"
    actions   = ["s3:DeleteObject"]
    resources = ["${local.bucket_arn}/${local.log_prefix}/*"]
  }
}
