//! Manifests and documents shared by the tests that run against moto.

/// Two policies and a role that uses every field of the contract.
pub const FULL: &str = r#"
apiVersion: iamwarden/v1alpha1
kind: Policy
metadata: {name: app-boundary}
spec:
  document: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "s3:*", Resource: "*"}]}
---
apiVersion: iamwarden/v1alpha1
kind: Policy
metadata: {name: app-policy}
spec:
  path: /app/
  description: App access
  document:
    Version: "2012-10-17"
    Statement:
      - Sid: Read
        Effect: Allow
        Action: [s3:GetObject]
        Resource: arn:aws:s3:::app-bucket/*
  tags: {team: data}
---
apiVersion: iamwarden/v1alpha1
kind: Role
metadata: {name: app-role}
spec:
  path: /app/
  description: App role
  maxSessionDuration: 7200
  permissionsBoundary: {ref: app-boundary}
  assumeRolePolicy:
    Version: "2012-10-17"
    Statement:
      - Effect: Allow
        Principal: {Service: ecs-tasks.amazonaws.com}
        Action: sts:AssumeRole
  managedPolicies: [{ref: app-policy}]
  inlinePolicies:
    logs:
      Version: "2012-10-17"
      Statement:
        - {Effect: Allow, Action: [logs:CreateLogStream, logs:PutLogEvents], Resource: "*"}
  tags: {team: data, env: test}
"#;

pub const APP_POLICY_ARN: &str = "arn:aws:iam::123456789012:policy/app/app-policy";
pub const BOUNDARY_ARN: &str = "arn:aws:iam::123456789012:policy/app-boundary";
pub const OTHER_DOC: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]}"#;

pub fn tag(k: &str, v: &str) -> aws_sdk_iam::types::Tag {
    aws_sdk_iam::types::Tag::builder()
        .key(k)
        .value(v)
        .build()
        .expect("a tag with key and value")
}
