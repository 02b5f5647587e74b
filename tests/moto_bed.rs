//! The test bed works: a role created in moto through aws-sdk-iam reads back as written.

mod support;

use support::moto::Moto;

#[tokio::test]
async fn a_role_created_in_moto_reads_back() {
    let moto = Moto::start();
    let iam = moto.client().await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let created = iam
        .create_role()
        .role_name("bed-role")
        .path("/bed/")
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("CreateRole");
    let arn = created.role().map(|r| r.arn().to_string()).expect("a role");
    let got = iam
        .get_role()
        .role_name("bed-role")
        .send()
        .await
        .expect("GetRole");
    let role = got.role().expect("a role");
    assert_eq!(role.arn(), arn);
    assert_eq!(role.path(), "/bed/");
    // IAM returns the trust policy URL-encoded; decoded, it is the document we sent.
    let encoded = role.assume_role_policy_document().expect("a trust policy");
    let decoded = iam_warden::policy::PolicyDocument::from_iam(encoded).expect("a document");
    let sent = iam_warden::policy::PolicyDocument::parse_json(trust).expect("json");
    assert!(decoded.is_equivalent(&sent));
}
