# The model API key stays in Secrets Manager or SSM Parameter Store: process gets the ARN
# (`WEIR_MODEL_API_KEY_SECRET`) and permission to read exactly that secret, and to decrypt it
# with its customer-managed key when one is given. The key never passes through Terraform.

locals {
  # The service is the ARN's third field: `secretsmanager` or `ssm` (checked by the variable).
  model_api_key_service   = var.model_api_key_secret_arn == null ? null : split(":", var.model_api_key_secret_arn)[2]
  approval_secret_service = var.approval_secret_arn == null ? null : split(":", var.approval_secret_arn)[2]
  secret_read_actions = {
    secretsmanager = "secretsmanager:GetSecretValue"
    ssm            = "ssm:GetParameter"
  }
}

data "aws_iam_policy_document" "model_api_key" {
  count = var.model_api_key_secret_arn == null ? 0 : 1

  statement {
    sid       = "ReadModelApiKey"
    actions   = [local.secret_read_actions[local.model_api_key_service]]
    resources = [var.model_api_key_secret_arn]
  }

  dynamic "statement" {
    for_each = var.model_api_key_kms_key_arn == null ? [] : [var.model_api_key_kms_key_arn]
    content {
      sid       = "DecryptModelApiKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

# The secret approval links are signed with, the same way: dispatch (signing) and the
# approvals function (checking) get its ARN (`WEIR_APPROVAL_SECRET_ARN`) and may read exactly
# it, decrypting with its customer-managed key when one is given.
data "aws_iam_policy_document" "approval_secret" {
  count = local.approvals ? 1 : 0

  statement {
    sid       = "ReadApprovalSecret"
    actions   = [local.secret_read_actions[local.approval_secret_service]]
    resources = [var.approval_secret_arn]
  }

  dynamic "statement" {
    for_each = var.approval_secret_kms_key_arn == null ? [] : [var.approval_secret_kms_key_arn]
    content {
      sid       = "DecryptApprovalSecret"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}
