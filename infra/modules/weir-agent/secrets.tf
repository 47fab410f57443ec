# Secrets stay in Secrets Manager or SSM Parameter Store: the model API key (process gets the
# ARN, `WEIR_MODEL_API_KEY_SECRET`) and the secret approval links are signed with (dispatch,
# signing, and the approvals function, checking, get `WEIR_APPROVAL_SECRET_ARN`). Each
# function may read exactly the secret it is given, and decrypt it with its customer-managed
# key when one is given. No secret passes through Terraform.

locals {
  # Which secrets are read, and with which key.
  read_secrets = merge(
    var.model_api_key_secret_arn == null ? {} : {
      model_api_key = { arn = var.model_api_key_secret_arn, kms_key_arn = var.model_api_key_kms_key_arn }
    },
    local.approvals ? {
      approval = { arn = var.approval_secret_arn, kms_key_arn = var.approval_secret_kms_key_arn }
    } : {},
  )
  # By the ARN's third field: `secretsmanager` or `ssm` (checked by the variables).
  secret_read_actions = {
    secretsmanager = "secretsmanager:GetSecretValue"
    ssm            = "ssm:GetParameter"
  }
}

data "aws_iam_policy_document" "secret_reader" {
  for_each = local.read_secrets

  statement {
    sid       = "ReadSecret"
    actions   = [local.secret_read_actions[split(":", each.value.arn)[2]]]
    resources = [each.value.arn]
  }

  dynamic "statement" {
    for_each = each.value.kms_key_arn == null ? [] : [each.value.kms_key_arn]
    content {
      sid       = "DecryptSecret"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}
