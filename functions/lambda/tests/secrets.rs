//! The model API key read from Secrets Manager and from SSM Parameter Store on moto, by ARN.

use serde_json::{Value, json};
use weir_functions::secrets::read_secret;
use weir_functions::{AwsClient, AwsCredentials};

fn moto_aws() -> AwsClient {
    let credentials =
        AwsCredentials { access_key_id: "testing".into(), secret_access_key: "testing".into(), session_token: None };
    let endpoint = weir_tests::moto::shared().endpoint();
    AwsClient::new(credentials, "us-east-1").with_endpoint("secretsmanager", &endpoint).with_endpoint("ssm", &endpoint)
}

async fn call(aws: &AwsClient, service: &'static str, target: &str, body: Value) -> Value {
    let endpoint = format!("{}/", weir_tests::moto::shared().endpoint());
    let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target)];
    let response = aws.post(service, &endpoint, &headers, body.to_string().into_bytes()).await.unwrap();
    serde_json::from_slice(&response.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_read_from_a_secret_or_a_parameter_by_arn() {
    let aws = moto_aws();
    let name = format!("weir-openai-{}", fastrand::u64(..));
    let created = call(
        &aws,
        "secretsmanager",
        "secretsmanager.CreateSecret",
        json!({"Name": name, "SecretString": "sk-from-secret"}),
    )
    .await;
    let arn = created["ARN"].as_str().unwrap();
    assert_eq!(read_secret(&aws, arn).await.unwrap(), "sk-from-secret");

    let parameter = format!("/weir/{name}");
    let put = json!({"Name": parameter, "Value": "sk-from-ssm", "Type": "SecureString"});
    call(&aws, "ssm", "AmazonSSM.PutParameter", put).await;
    let arn = format!("arn:aws:ssm:us-east-1:123456789012:parameter{parameter}");
    assert_eq!(read_secret(&aws, &arn).await.unwrap(), "sk-from-ssm");

    let not_an_arn = read_secret(&aws, "sk-plain-key").await.unwrap_err().to_string();
    assert!(not_an_arn.contains("WEIR_MODEL_API_KEY_SECRET") && !not_an_arn.contains("sk-from"), "{not_an_arn}");
    let wrong_service = read_secret(&aws, "arn:aws:s3:::bucket/key").await.unwrap_err().to_string();
    assert!(wrong_service.contains("not secretsmanager or ssm"), "{wrong_service}");
}
