//! The model API key read from Secrets Manager and from SSM Parameter Store on moto, by ARN,
//! and what a missing secret or a wrong ARN says.

use weir_engine::ErrorKind;
use weir_functions::AwsClients;
use weir_functions::secrets::read_secret;

async fn moto_aws() -> AwsClients {
    let endpoint = weir_tests::moto::shared().endpoint();
    AwsClients::load(AwsClients::defaults().endpoint_url(endpoint).test_credentials()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_read_from_a_secret_or_a_parameter_by_arn() {
    let aws = moto_aws().await;
    let name = format!("weir-openai-{}", fastrand::u64(..));
    let created =
        aws.secrets_manager().create_secret().name(&name).secret_string("sk-from-secret").send().await.unwrap();
    let arn = created.arn().unwrap();
    assert_eq!(read_secret(&aws, arn).await.unwrap(), "sk-from-secret");

    let parameter = format!("/weir/{name}");
    let put = aws.ssm().put_parameter().name(&parameter).value("sk-from-ssm");
    put.r#type(aws_sdk_ssm::types::ParameterType::SecureString).send().await.unwrap();
    let arn = format!("arn:aws:ssm:us-east-1:123456789012:parameter{parameter}");
    assert_eq!(read_secret(&aws, &arn).await.unwrap(), "sk-from-ssm");

    let not_an_arn = read_secret(&aws, "sk-plain-key").await.unwrap_err().to_string();
    assert!(not_an_arn.contains("WEIR_MODEL_API_KEY_SECRET") && !not_an_arn.contains("sk-from"), "{not_an_arn}");
    let wrong_service = read_secret(&aws, "arn:aws:s3:::bucket/key").await.unwrap_err().to_string();
    assert!(wrong_service.contains("not secretsmanager or ssm"), "{wrong_service}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_or_parameter_is_a_configuration_error_naming_the_variable_and_arn() {
    let aws = moto_aws().await;
    let missing = [
        format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:weir-absent-{}", fastrand::u64(..)),
        format!("arn:aws:ssm:us-east-1:123456789012:parameter/weir/absent-{}", fastrand::u64(..)),
    ];
    for arn in missing {
        let error = read_secret(&aws, &arn).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
        let message = error.to_string();
        assert!(message.contains("WEIR_MODEL_API_KEY_SECRET") && message.contains(&arn), "{message}");
    }
}
