################################################################################
# Naming
################################################################################

variable "name" {
  description = "Prefix of every resource name: functions are `<name>-ingest`, `<name>-process`, `<name>-dispatch`."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,37}$", var.name))
    error_message = "name: use 1 to 38 lowercase letters, digits or `-`, not starting with `-` (it prefixes function, role and queue names)."
  }
}

variable "agent" {
  description = "The agent's name (`WEIR_AGENT`): its commits live under `<store_prefix>/agents/<agent>/`."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$", var.agent))
    error_message = "agent: use 1 to 64 ASCII letters, digits, `-` or `_`, not starting with `-` (the engine's rule)."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

################################################################################
# Storage
################################################################################

variable "create_bucket" {
  description = "Create the bucket. When false, `bucket_name` names an existing bucket whose encryption, versioning and lifecycle its owner manages."
  type        = bool
  default     = true
}

variable "bucket_name" {
  description = "Name of the bucket to create, or of the existing bucket when `create_bucket` is false. Null creates a bucket named `<name>-<random suffix>`."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name: an S3 bucket name is 3 to 63 lowercase letters, digits, `.` or `-`."
  }
}

variable "store_prefix" {
  description = "Key prefix of the store in the bucket (no leading or trailing `/`): `WEIR_STORE` is `s3://<bucket>/<store_prefix>`."
  type        = string
  default     = "weir"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$", var.store_prefix))
    error_message = "store_prefix: use path segments of S3-safe characters separated by single `/`, with no leading or trailing `/`."
  }
}

variable "kms_key_arn" {
  description = "KMS key encrypting the bucket (SSE-KMS), the queues, the log groups and the functions' environment. Null uses AWS-owned keys (SSE-S3, SQS-managed SSE). Its key policy must let the functions' roles and CloudWatch Logs use it."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn: give the ARN of a KMS key (arn:aws:kms:...)."
  }
}

variable "versioning" {
  description = "Enable versioning of the created bucket. The store never overwrites state, so versions matter only for the hint files and deleted objects; noncurrent versions expire after `noncurrent_version_expiration_days`."
  type        = bool
  default     = true
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent object versions (superseded hints, objects garbage collection deleted) are expired."
  type        = number
  default     = 7

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days: at least 1."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which incomplete multipart uploads (large segments or outputs of an invocation that died mid-upload) are aborted."
  type        = number
  default     = 3

  validation {
    condition     = var.abort_incomplete_multipart_upload_days >= 1
    error_message = "abort_incomplete_multipart_upload_days: at least 1."
  }
}

variable "access_log_bucket" {
  description = "Bucket receiving S3 server access logs of the created bucket; null disables access logging."
  type        = string
  default     = null
}

variable "access_log_prefix" {
  description = "Key prefix of the access logs in `access_log_bucket`."
  type        = string
  default     = "s3-access-logs/"
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the created bucket with everything in it. Leave false for real agents."
  type        = bool
  default     = false
}

################################################################################
# Functions
################################################################################

variable "package_dir" {
  description = "Directory holding `<binary>/bootstrap.zip` for `weir-ingest`, `weir-process` and `weir-dispatch`: what `infra/package` prints (`<target dir>/lambda`)."
  type        = string
}

variable "process_binary" {
  description = "Binary of the process function, in `package_dir`. Null runs `weir-process`, which loads a declarative agent (`agent_file`); an agent crate's own binary (e.g. `review-analysis` of functions/review-analysis) has its agent linked in."
  type        = string
  default     = null

  validation {
    condition     = var.process_binary == null || can(regex("^[A-Za-z0-9_-]+$", var.process_binary))
    error_message = "process_binary: a binary name (letters, digits, `-`, `_`)."
  }
}

variable "architecture" {
  description = "Instruction set of the functions. The zips must match: `infra/package` builds x86_64."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture: `x86_64` or `arm64`."
  }
}

variable "memory_size" {
  description = "Memory of each function in MB (CPU grows with it)."
  type = object({
    ingest    = optional(number, 256)
    process   = optional(number, 1024)
    dispatch  = optional(number, 256)
    collect   = optional(number, 256)
    approvals = optional(number, 128)
  })
  default = {}

  validation {
    condition     = alltrue([for mb in values(var.memory_size) : mb >= 128 && mb <= 10240])
    error_message = "memory_size: each between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Timeout of each function in seconds. Process stops starting batches `deadline_margin_ms` before its deadline and continues in a new invocation."
  type = object({
    ingest    = optional(number, 30)
    process   = optional(number, 900)
    dispatch  = optional(number, 300)
    collect   = optional(number, 300)
    approvals = optional(number, 30)
  })
  default = {}

  validation {
    condition     = alltrue([for seconds in values(var.timeout) : seconds >= 1 && seconds <= 900])
    error_message = "timeout: each between 1 and 900 seconds."
  }
}

variable "reserved_concurrent_executions" {
  description = "Reserved concurrency of each function; -1 leaves it unreserved, 0 stops the function. Process needs no more than the log's partitions; one dispatch at a time keeps its cursor uncontended, and one collection at a time is enough; the public approvals URL is capped, so that a flood of requests costs little and takes no concurrency from the rest."
  type = object({
    ingest    = optional(number, -1)
    process   = optional(number, -1)
    dispatch  = optional(number, 1)
    collect   = optional(number, 1)
    approvals = optional(number, 5)
  })
  default = {}

  validation {
    condition     = alltrue([for n in values(var.reserved_concurrent_executions) : n >= -1])
    error_message = "reserved_concurrent_executions: -1 (unreserved) or more."
  }
}

variable "log_retention_in_days" {
  description = "Retention of the functions' CloudWatch log groups."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days: one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ..., 365, ..., 3653)."
  }
}

variable "log_level" {
  description = "`RUST_LOG` of every function (`tracing_subscriber` filter syntax)."
  type        = string
  default     = "info"
}

variable "tracing_mode" {
  description = "X-Ray tracing mode of the functions."
  type        = string
  default     = "PassThrough"

  validation {
    condition     = contains(["PassThrough", "Active"], var.tracing_mode)
    error_message = "tracing_mode: `PassThrough` or `Active`."
  }
}

variable "async_maximum_retry_attempts" {
  description = "Retries of a failed asynchronous invocation (schedules, continuations, S3 notifications) before it goes to the failed-invocations queue."
  type        = number
  default     = 2

  validation {
    condition     = var.async_maximum_retry_attempts >= 0 && var.async_maximum_retry_attempts <= 2
    error_message = "async_maximum_retry_attempts: 0, 1 or 2."
  }
}

################################################################################
# Agent configuration (see docs/configuration.md)
################################################################################

variable "partitions" {
  description = "Partitions of the log (`WEIR_PARTITIONS`), used only when ingest creates the log; fixed afterwards."
  type        = number
  default     = 16

  validation {
    condition     = var.partitions >= 1 && var.partitions <= 4096 && floor(var.partitions) == var.partitions
    error_message = "partitions: a whole number between 1 and 4096."
  }
}

variable "key_field" {
  description = "JSON pointer to each incoming record's key (`WEIR_KEY_FIELD`): records of one key are processed in order."
  type        = string
  default     = "/key"

  validation {
    condition     = startswith(var.key_field, "/")
    error_message = "key_field: a JSON pointer such as /key or /id."
  }
}

variable "agent_file" {
  description = "Path, where Terraform runs, of a declarative agent file (YAML or TOML) for `weir-process`: the module uploads it into the agent's prefix of the store, and the function reads it from there at cold start (`WEIR_AGENT_FILE` is its `s3://` URL). Required when `process_binary` is null; null when the agent is linked into the binary."
  type        = string
  default     = null

  validation {
    condition     = var.agent_file == null || can(regex("\\.(ya?ml|toml)$", var.agent_file))
    error_message = "agent_file: a .yaml, .yml or .toml file."
  }
}

variable "engine_settings" {
  description = "Engine settings overriding the defaults (`WEIR_ENGINE_SETTINGS`, JSON-encoded), e.g. `{ max_batch_events = 500 }`; process and collect get the same. Collection waits `gc_grace_ms` (default 30 minutes) before deleting anything, and keeps outputs `output_retention_ms` and processed log segments `log_retention_ms` (default 7 days each)."
  type        = map(any)
  default     = null

  validation {
    condition     = var.engine_settings == null || try(var.engine_settings.gc_grace_ms, 1800000) >= try(var.engine_settings.max_invocation_ms, 900000) + 300000
    error_message = "engine_settings: gc_grace_ms must be at least max_invocation_ms (default 900000, Lambda's longest timeout) plus 300000, or collection could delete what a running invocation still writes."
  }
}

variable "deadline_margin_ms" {
  description = "Process stops starting batches this long before its deadline (`WEIR_DEADLINE_MARGIN_MS`); null keeps the function's default."
  type        = number
  default     = null

  validation {
    condition     = var.deadline_margin_ms == null || try(var.deadline_margin_ms >= 0, false)
    error_message = "deadline_margin_ms: zero or more milliseconds."
  }
}

variable "agent_environment" {
  description = "The agent's own variables, for the process function (e.g. the review-analysis agent's webhook). Never secrets: those go in Secrets Manager, named by `model_api_key_secret_arn`."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for name in keys(var.agent_environment) : can(regex("^[A-Z][A-Z0-9_]*$", name)) && !contains(["WEIR_STORE", "WEIR_AGENT", "RUST_LOG", "WEIR_MODEL_API_KEY_SECRET"], name)])
    error_message = "agent_environment: names are upper-case identifiers, and WEIR_STORE, WEIR_AGENT, RUST_LOG and WEIR_MODEL_API_KEY_SECRET are the module's."
  }
}

variable "model_provider" {
  description = "Model provider (`WEIR_MODEL_PROVIDER`); null lets the function choose from what is configured."
  type        = string
  default     = null

  validation {
    condition     = var.model_provider == null || contains(["openai", "anthropic", "ollama", "offline"], coalesce(var.model_provider, "-"))
    error_message = "model_provider: `openai`, `anthropic`, `ollama` or `offline`."
  }
}

variable "model" {
  description = "Model id at the provider (`WEIR_MODEL`)."
  type        = string
  default     = null
}

variable "model_base_url" {
  description = "Base URL of an OpenAI-compatible, Anthropic or Ollama endpoint (`WEIR_MODEL_BASE_URL`)."
  type        = string
  default     = null
}

variable "model_api_key_secret_arn" {
  description = "ARN of the Secrets Manager secret or SSM SecureString parameter holding the model API key. Process gets its ARN (`WEIR_MODEL_API_KEY_SECRET`) and read permission on exactly it; the key itself never enters Terraform."
  type        = string
  default     = null

  validation {
    condition     = var.model_api_key_secret_arn == null || can(regex("^arn:aws[a-z-]*:(secretsmanager:[^:]+:[0-9]{12}:secret:|ssm:[^:]+:[0-9]{12}:parameter/).+", var.model_api_key_secret_arn))
    error_message = "model_api_key_secret_arn: the ARN of a Secrets Manager secret (arn:aws:secretsmanager:...:secret:...) or an SSM parameter (arn:aws:ssm:...:parameter/...)."
  }
}

variable "model_api_key_kms_key_arn" {
  description = "Customer-managed KMS key encrypting the model API key secret or parameter; process gets `kms:Decrypt` on it. Null when the secret uses the AWS-managed key."
  type        = string
  default     = null

  validation {
    condition     = var.model_api_key_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.model_api_key_kms_key_arn))
    error_message = "model_api_key_kms_key_arn: give the ARN of a KMS key (arn:aws:kms:...)."
  }
}

variable "approval_secret_arn" {
  description = "ARN of the Secrets Manager secret or SSM SecureString parameter holding at least 32 random bytes that approve and deny links are signed with (docs/waits.md, \"Approvals\"). Set: an `approvals` function (ingest taking approval links only) gets a public function URL, and dispatch adds links to it to every approval request; both read exactly this secret. Null: requests go out without links (`weir approvals` answers them)."
  type        = string
  default     = null

  validation {
    condition     = var.approval_secret_arn == null || can(regex("^arn:aws[a-z-]*:(secretsmanager:[^:]+:[0-9]{12}:secret:|ssm:[^:]+:[0-9]{12}:parameter/).+", var.approval_secret_arn))
    error_message = "approval_secret_arn: the ARN of a Secrets Manager secret (arn:aws:secretsmanager:...:secret:...) or an SSM parameter (arn:aws:ssm:...:parameter/...)."
  }
}

variable "approval_secret_kms_key_arn" {
  description = "Customer-managed KMS key encrypting the approval secret; dispatch and approvals get `kms:Decrypt` on it. Null when the secret uses the AWS-managed key."
  type        = string
  default     = null

  validation {
    condition     = var.approval_secret_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.approval_secret_kms_key_arn))
    error_message = "approval_secret_kms_key_arn: give the ARN of a KMS key (arn:aws:kms:...)."
  }
}

variable "sink" {
  description = "Where dispatch delivers committed outputs (`WEIR_SINK`): an `https://` webhook, `sqs:<queue-url>`, `sns:<topic-arn>` or `weir:s3://<bucket>/<prefix>` (another agent's store, whose log it appends to). Dispatch gets permission on exactly that queue, topic or log."
  type        = string

  validation {
    condition = anytrue([
      can(regex("^https://[^/]+", var.sink)),
      can(regex("^sqs:https://sqs\\.[a-z0-9-]+\\.amazonaws\\.com/[0-9]{12}/[A-Za-z0-9_-]+(\\.fifo)?$", var.sink)),
      can(regex("^sns:arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+(\\.fifo)?$", var.sink)),
      can(regex("^weir:s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^/].*[^/]$", var.sink)),
    ])
    error_message = "sink: `https://host/...`, `sqs:https://sqs.<region>.amazonaws.com/<account>/<queue>`, `sns:<topic-arn>` or `weir:s3://<bucket>/<prefix>`."
  }
}

################################################################################
# Triggers
################################################################################

variable "ingest_source" {
  description = "What feeds ingest: `sqs` (a queue this module creates, with its dead-letter queue), `s3` (object-created notifications of `s3_source`) or `none` (only the function URL, or producers invoking ingest directly)."
  type        = string
  default     = "sqs"

  validation {
    condition     = contains(["sqs", "s3", "none"], var.ingest_source)
    error_message = "ingest_source: `sqs`, `s3` or `none`."
  }
}

variable "s3_source" {
  description = "With `ingest_source = \"s3\"`: the bucket whose new objects under `prefix` (ending in `suffix`) are ingested. The module takes over that bucket's notification configuration."
  type = object({
    bucket = string
    prefix = optional(string, "")
    suffix = optional(string, "")
  })
  default = null
}

variable "sqs_batch_size" {
  description = "Messages per ingest invocation from the queue; each batch becomes one idempotent append per partition."
  type        = number
  default     = 100

  validation {
    condition     = var.sqs_batch_size >= 1 && var.sqs_batch_size <= 10000
    error_message = "sqs_batch_size: between 1 and 10000."
  }
}

variable "sqs_maximum_batching_window_in_seconds" {
  description = "How long Lambda gathers messages before invoking ingest (needed above 10 messages per batch)."
  type        = number
  default     = 5

  validation {
    condition     = var.sqs_maximum_batching_window_in_seconds >= 0 && var.sqs_maximum_batching_window_in_seconds <= 300
    error_message = "sqs_maximum_batching_window_in_seconds: between 0 and 300."
  }
}

variable "sqs_max_receive_count" {
  description = "Deliveries of a message that ingest fails before it moves to the ingest dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.sqs_max_receive_count >= 1
    error_message = "sqs_max_receive_count: at least 1."
  }
}

variable "create_function_url" {
  description = "Give ingest a function URL (AWS_IAM auth: callers sign with SigV4 and need `lambda:InvokeFunctionUrl`) for HTTP producers."
  type        = bool
  default     = false
}

variable "process_schedule" {
  description = "EventBridge schedule expression invoking process; each invocation claims the partitions with backlog and continues itself while backlog remains."
  type        = string
  default     = "rate(1 minute)"
}

variable "dispatch_schedule" {
  description = "EventBridge schedule expression invoking dispatch."
  type        = string
  default     = "rate(1 minute)"
}

variable "collect_schedule" {
  description = "EventBridge schedule expression invoking collect (garbage collection). Nothing younger than the grace period is deleted, so collecting more often than `gc_grace_ms` only keeps storage closer to its floor."
  type        = string
  default     = "rate(15 minutes)"
}

################################################################################
# Alarms
################################################################################

variable "create_alarms" {
  description = "Create CloudWatch alarms: function errors and throttles, dead letters in the queues, the ingest queue's backlog age, and (with `metrics = \"emf\"`) dead-lettered events, backlog, undelivered outputs, open circuit breakers and, with `model_cost_alarm_per_hour`, model cost."
  type        = bool
  default     = true
}

variable "alarm_sns_topic_arn" {
  description = "SNS topic notified when an alarm fires or recovers; null creates the alarms without actions."
  type        = string
  default     = null
}

variable "backlog_age_alarm_seconds" {
  description = "Age of the oldest message in the ingest queue above which the backlog alarm fires."
  type        = number
  default     = 900
}

variable "backlog_alarm_segments" {
  description = "Log segments (appended batches) a partition may have left to process (the `Backlog` metric) before the backlog alarm fires."
  type        = number
  default     = 100

  validation {
    condition     = var.backlog_alarm_segments >= 0
    error_message = "backlog_alarm_segments: zero or more segments."
  }
}

variable "lag_alarm_seconds" {
  description = "Age in seconds the oldest unprocessed event of a partition may reach (the `Lag` metric) before the lag alarm fires."
  type        = number
  default     = 900

  validation {
    condition     = var.lag_alarm_seconds >= 0
    error_message = "lag_alarm_seconds: zero or more seconds."
  }
}

variable "undelivered_alarm_outputs" {
  description = "Committed outputs a partition may have waiting for the sink (the `Undelivered` metric) before the undelivered alarm fires."
  type        = number
  default     = 1000

  validation {
    condition     = var.undelivered_alarm_outputs >= 0
    error_message = "undelivered_alarm_outputs: zero or more outputs."
  }
}

variable "model_cost_alarm_per_hour" {
  description = "What the agent's model calls may cost in an hour, at the agent's prices (the `ModelCost` metric), before the model-cost alarm fires; null: no such alarm."
  type        = number
  default     = null

  validation {
    condition     = var.model_cost_alarm_per_hour == null ? true : var.model_cost_alarm_per_hour >= 0
    error_message = "model_cost_alarm_per_hour: null, or zero or more."
  }
}

variable "backlog_alarm_periods" {
  description = "Consecutive 5-minute periods the backlog, the lag or undelivered outputs must stay above their threshold before their alarm fires."
  type        = number
  default     = 3

  validation {
    condition     = var.backlog_alarm_periods >= 1 && floor(var.backlog_alarm_periods) == var.backlog_alarm_periods
    error_message = "backlog_alarm_periods: a whole number of periods, at least 1."
  }
}

################################################################################
# Metrics
################################################################################

variable "metrics" {
  description = "The functions' metrics (`WEIR_METRICS`, docs/metrics.md): `emf` prints them as CloudWatch Embedded Metric Format lines, which CloudWatch Logs turns into metrics in namespace `weir`; `off` prints none (and creates none of the alarms on them)."
  type        = string
  default     = "emf"

  validation {
    condition     = contains(["emf", "off"], var.metrics)
    error_message = "metrics: `emf` or `off`."
  }
}
