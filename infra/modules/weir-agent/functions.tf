# The functions (docs/configuration.md): one `bootstrap` binary each, built by infra/package,
# configured by environment variables only. Optional variables are left out when null, so the
# function's own default applies. `approvals` is deployed only with `approval_secret_arn`.

locals {
  common_environment = {
    WEIR_STORE = local.store_url
    RUST_LOG   = var.log_level
  }

  functions = {
    ingest = {
      binary      = "weir-ingest"
      description = "weir ${var.agent}: appends events from SQS, S3 notifications or HTTP to the log"
      environment = merge(local.common_environment, {
        WEIR_PARTITIONS = tostring(var.partitions)
        WEIR_KEY_FIELD  = var.key_field
        # Event-driven: each append invokes process for its partitions at once.
        WEIR_PROCESS_FUNCTION = "${var.name}-process"
        # The Agent dimension of ingest's metrics.
        WEIR_AGENT   = var.agent
        WEIR_METRICS = var.metrics
      })
    }
    process = {
      binary      = coalesce(var.process_binary, "weir-process")
      description = "weir ${var.agent}: runs the agent over the log's backlog, one fenced partition at a time"
      # The agent's own variables before process's, which win (the variable's validation
      # keeps out the common ones).
      environment = merge(local.common_environment, var.agent_environment, {
        WEIR_AGENT                = var.agent
        WEIR_AGENT_FILE           = local.agent_file_url
        WEIR_ENGINE_SETTINGS      = var.engine_settings == null ? null : jsonencode(var.engine_settings)
        WEIR_DEADLINE_MARGIN_MS   = var.deadline_margin_ms == null ? null : tostring(var.deadline_margin_ms)
        WEIR_MODEL_PROVIDER       = var.model_provider
        WEIR_MODEL                = var.model
        WEIR_MODEL_BASE_URL       = var.model_base_url
        WEIR_MODEL_API_KEY_SECRET = var.model_api_key_secret_arn
        # Event-driven: each commit with outputs invokes dispatch for its partitions.
        WEIR_DISPATCH_FUNCTION = "${var.name}-dispatch"
        WEIR_METRICS           = var.metrics
      })
    }
    # Garbage collection, with process's engine settings: the same grace period.
    collect = {
      binary      = "weir-collect"
      description = "weir ${var.agent}: deletes what no commit needs any more, and processed log segments past retention"
      environment = merge(local.common_environment, {
        WEIR_AGENT           = var.agent
        WEIR_ENGINE_SETTINGS = var.engine_settings == null ? null : jsonencode(var.engine_settings)
      })
    }
    dispatch = {
      binary      = "weir-dispatch"
      description = "weir ${var.agent}: delivers committed outputs to ${var.sink}"
      environment = merge(local.common_environment, {
        WEIR_AGENT   = var.agent
        WEIR_SINK    = var.sink
        WEIR_METRICS = var.metrics
        # Links in approval requests: to the approvals function's URL, which dispatch asks
        # Lambda for (a sibling's URL here would be a cycle), signed with the secret.
        WEIR_APPROVAL_FUNCTION   = local.approvals ? "${var.name}-approvals" : null
        WEIR_APPROVAL_SECRET_ARN = var.approval_secret_arn
      })
    }
    # Ingest, taking approve and deny links only, behind a public function URL: a browser or
    # Slack button can follow a link, while records still need ingest's signed requests.
    approvals = {
      binary      = "weir-ingest"
      description = "weir ${var.agent}: follows approve and deny links (signed, one-time, expiring) and takes nothing else"
      environment = merge(local.common_environment, {
        WEIR_PARTITIONS          = tostring(var.partitions)
        WEIR_KEY_FIELD           = var.key_field
        WEIR_PROCESS_FUNCTION    = "${var.name}-process"
        WEIR_AGENT               = var.agent
        WEIR_METRICS             = var.metrics
        WEIR_INGEST_ACCEPT       = "approvals"
        WEIR_APPROVAL_SECRET_ARN = var.approval_secret_arn
      })
    }
  }

  approvals = var.approval_secret_arn != null
  # What is deployed: every function, but approvals only when links are enabled.
  deployed_functions = { for role, function in local.functions : role => function if role != "approvals" || local.approvals }
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = local.deployed_functions

  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:asynchronous failures go to an on-failure destination (aws_lambda_function_event_invoke_config.this), which records more than a DLQ
  #checkov:skip=CKV_AWS_117:the functions reach only S3, SQS, SNS, Lambda and the model API; a VPC would add NAT cost and no isolation
  #checkov:skip=CKV_AWS_272:code signing needs a signing profile the zips of infra/package do not have; the zips' hashes are pinned by source_code_hash
  for_each = local.deployed_functions

  function_name                  = "${var.name}-${each.key}"
  description                    = substr(each.value.description, 0, 256)
  role                           = aws_iam_role.this[each.key].arn
  filename                       = "${var.package_dir}/${each.value.binary}/bootstrap.zip"
  source_code_hash               = filebase64sha256("${var.package_dir}/${each.value.binary}/bootstrap.zip")
  handler                        = "bootstrap"
  runtime                        = "provided.al2023"
  architectures                  = [var.architecture]
  memory_size                    = var.memory_size[each.key]
  timeout                        = var.timeout[each.key]
  reserved_concurrent_executions = var.reserved_concurrent_executions[each.key]
  kms_key_arn                    = var.kms_key_arn
  tags                           = var.tags

  environment {
    variables = { for name, value in each.value.environment : name => value if value != null }
  }

  tracing_config {
    mode = var.tracing_mode
  }

  lifecycle {
    precondition {
      condition     = var.create_bucket || var.bucket_name != null
      error_message = "bucket_name: required when create_bucket is false (it names the existing bucket)."
    }
    precondition {
      condition     = var.ingest_source != "s3" || var.s3_source != null
      error_message = "s3_source: required when ingest_source is \"s3\"."
    }
    precondition {
      condition     = var.process_binary != null || var.agent_file != null
      error_message = "agent_file: required when process_binary is null (weir-process runs a declarative agent file)."
    }
  }

  # The log group exists first so that Lambda does not create an unmanaged one; the agent
  # file before process's first cold start.
  depends_on = [aws_cloudwatch_log_group.this, aws_s3_object.agent_file]
}

# Asynchronous invocations (schedules, continuations, S3 notifications) that still fail
# after their retries are recorded in the failed-invocations queue.
resource "aws_lambda_function_event_invoke_config" "this" {
  for_each = local.deployed_functions

  function_name          = aws_lambda_function.this[each.key].function_name
  maximum_retry_attempts = var.async_maximum_retry_attempts

  destination_config {
    on_failure {
      destination = aws_sqs_queue.failed_invocations.arn
    }
  }
}
