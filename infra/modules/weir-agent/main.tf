# What every concern shares: where the store is, and the account it lives in. The rest is
# split by concern: storage.tf, functions.tf, sink.tf, triggers.tf, iam.tf, secrets.tf and
# alarms.tf.

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

locals {
  bucket     = var.create_bucket ? aws_s3_bucket.this[0].id : var.bucket_name
  bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${local.bucket}"
  store_url  = "s3://${local.bucket}/${var.store_prefix}"

  # Sub-prefixes of the store (docs/storage-format.md): the event log, and this agent's
  # commits, of which dispatch owns the cursor.
  log_prefix      = "${var.store_prefix}/log"
  agents_prefix   = "${var.store_prefix}/agents"
  agent_prefix    = "${local.agents_prefix}/${var.agent}"
  dispatch_prefix = "${local.agent_prefix}/dispatch"
  # Replays' namespaces (docs/replay.md), which process writes when a replay fans out over it.
  shadows_prefix = "${var.store_prefix}/shadows"
}
