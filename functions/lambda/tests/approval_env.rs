//! Where approval links' secret and URL come from on AWS: the secret by ARN from Secrets
//! Manager (moto), dispatch's URL from the approvals function's URL (the emulator's
//! `GetFunctionUrlConfig`), and what a wrong setting says.

use std::collections::HashMap;

use weir_emulator::{Emulator, FunctionSpec};
use weir_functions::AwsClients;
use weir_functions::approval_env::ApprovalEnvironment;
use weir_functions::config::{APPROVAL_FUNCTION, APPROVAL_SECRET, APPROVAL_SECRET_ARN, APPROVAL_URL};

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| vars.get(name).cloned()
}

async fn aws_at(endpoint: &str) -> AwsClients {
    AwsClients::load(AwsClients::defaults().endpoint_url(endpoint).test_credentials()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_comes_from_its_arn_and_the_url_from_the_approvals_function() {
    let moto = weir_tests::moto::shared().endpoint();
    let aws = aws_at(&moto).await;
    let name = format!("weir-approvals-{}", fastrand::u64(..));
    let secret = "a random approval secret of more than 32 bytes";
    let created = aws.secrets_manager().create_secret().name(&name).secret_string(secret).send().await.unwrap();
    let arn = created.arn().unwrap().to_string();
    let env =
        ApprovalEnvironment::load(lookup(&[(APPROVAL_SECRET_ARN, &arn)]), async || aws_at(&moto).await).await.unwrap();
    assert_eq!(env.get(APPROVAL_SECRET).as_deref(), Some(secret));

    let emulator = Emulator::builder()
        .function(FunctionSpec::new("ops-approvals", env!("CARGO_BIN_EXE_weir-ingest")).with_url(0))
        .start()
        .await
        .unwrap();
    let lambda = emulator.invoke_url().to_string();
    let env =
        ApprovalEnvironment::load(lookup(&[(APPROVAL_FUNCTION, "ops-approvals")]), async || aws_at(&lambda).await)
            .await
            .unwrap();
    assert_eq!(env.get(APPROVAL_URL).as_deref(), emulator.function_url("ops-approvals"));

    let missing =
        ApprovalEnvironment::load(lookup(&[(APPROVAL_FUNCTION, "ops-absent")]), async || aws_at(&lambda).await)
            .await
            .unwrap_err()
            .to_string();
    assert!(missing.contains(APPROVAL_FUNCTION) && missing.contains("ops-absent"), "{missing}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_plain_variable_beside_its_source_is_refused_and_none_calls_nothing() {
    let both = [(APPROVAL_SECRET_ARN, "arn:aws:secretsmanager:us-east-1:1:secret:s"), (APPROVAL_SECRET, "plain")];
    let refused = ApprovalEnvironment::load(lookup(&both), async || unreachable!("nothing is read")).await;
    let refused = refused.unwrap_err().to_string();
    assert!(refused.contains(APPROVAL_SECRET_ARN) && refused.contains("set one of them"), "{refused}");
    let none = ApprovalEnvironment::load(lookup(&[]), async || unreachable!("nothing is read")).await.unwrap();
    assert_eq!(none.get("WEIR_APPROVAL_TEST_UNSET"), None);
}
