# A declarative agent file (`agent_file`), for `weir-process`: a Lambda zip holds only
# `bootstrap`, so the file goes into the agent's own prefix of the store, and the function
# reads it from there at cold start (`WEIR_AGENT_FILE` is its URL). A changed file is
# uploaded again, and the functions pick it up at their next cold start.

locals {
  agent_file_key = var.agent_file == null ? null : "${local.agent_prefix}/agent-file/${basename(var.agent_file)}"
  agent_file_url = var.agent_file == null ? null : "s3://${local.bucket}/${local.agent_file_key}"
}

resource "aws_s3_object" "agent_file" {
  #checkov:skip=CKV_AWS_186:the object is encrypted as the bucket's default says: SSE-KMS with kms_key_arn when given, else SSE-S3
  count = var.agent_file == null ? 0 : 1

  bucket     = local.bucket
  key        = local.agent_file_key
  source     = var.agent_file
  etag       = filemd5(var.agent_file)
  kms_key_id = var.kms_key_arn
  tags       = var.tags
}
