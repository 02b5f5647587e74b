use std::path::Path;
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Accounts, Vec<String>> {
    Accounts::parse(Path::new("/etc/iw/accounts.yaml"), text)
        .map_err(|ds| ds.iter().map(ToString::to_string).collect())
}

fn errors(text: &str) -> Vec<String> {
    parse(text).expect_err("expected errors")
}

#[test]
fn reads_assumed_and_own_credentials_accounts_with_their_values() {
    let a = parse(
        r#"
accounts:
  - name: prod
    id: "111111111111"
    roleArn: arn:aws-us-gov:iam::111111111111:role/ops/iam-warden
    externalId: "shared-secret-1"
    sessionName: iam-warden
    sessionDuration: 2h
    values: {env: prod, replicas: 012}
    valuesFiles: [prod.yaml]
    maxRequestsPerSecond: 20
  - name: home
    id: 222222222222
"#,
    )
    .unwrap();
    let prod = &a.accounts[0];
    assert_eq!(
        (prod.name.as_str(), prod.id.as_str()),
        ("prod", "111111111111")
    );
    let role = prod.role.as_ref().unwrap();
    assert_eq!(role.partition, "aws-us-gov");
    assert_eq!(
        prod.shared.session.external_id.as_deref(),
        Some("shared-secret-1")
    );
    assert_eq!(
        prod.shared.session.session_name.as_deref(),
        Some("iam-warden")
    );
    assert_eq!(
        prod.shared.session.session_duration,
        Some(Duration::from_secs(7200))
    );
    // As written: a value reaches IAM exactly so.
    assert_eq!(prod.shared.values["replicas"], "012");
    assert_eq!(
        prod.shared.values_files,
        vec![Path::new("/etc/iw/prod.yaml")]
    );
    assert_eq!(prod.shared.max_rps, Some(20));
    let home = &a.accounts[1];
    assert_eq!(home.shared.max_rps, None);
    assert_eq!(home.id, "222222222222");
    assert!(home.role.is_none());
}

#[test]
fn every_error_names_file_line_field_and_what_is_allowed() {
    let e = errors(
        r#"accounts:
  - name: prod
    id: "11111111111"
    rolearn: arn:aws:iam::111111111111:role/x
  - name: "bad name"
    id: "222222222222"
    roleArn: arn:aws:iam::333333333333:role/x
    sessionDuration: 5m
    maxRequestsPerSecond: -3
  - id: "444444444444"
    externalId: abc
"#,
    );
    let want = [
        "/etc/iw/accounts.yaml:3: accounts[0].id: `11111111111` is not an account id (12 digits, quoted)",
        "/etc/iw/accounts.yaml:4: accounts[0].rolearn: unknown field `rolearn`; did you mean `roleArn`?",
        "/etc/iw/accounts.yaml:5: accounts[1].name: `bad name` is not an account name",
        "/etc/iw/accounts.yaml:7: accounts[1].roleArn: `arn:aws:iam::333333333333:role/x` is in account 333333333333, not this account's id 222222222222",
        "/etc/iw/accounts.yaml:8: accounts[1].sessionDuration: `5m` is not a session duration between 15m and 12h",
        "/etc/iw/accounts.yaml:9: accounts[1].maxRequestsPerSecond: `-3` is not a number of requests a second",
        "/etc/iw/accounts.yaml:10: accounts[2].name: is required",
        "/etc/iw/accounts.yaml:11: accounts[2].externalId: is only used with roleArn",
    ];
    for w in want {
        assert!(e.iter().any(|x| x.starts_with(w)), "missing {w}\nin {e:#?}");
    }
    assert_eq!(e.len(), want.len(), "{e:#?}");
}

#[test]
fn names_and_ids_are_unique() {
    let e = errors(
        r#"accounts:
  - {name: a, id: "111111111111"}
  - {name: a, id: "222222222222"}
  - {name: b, id: "111111111111"}
  - {name: A, id: "333333333333"}
"#,
    );
    assert_eq!(
        e,
        [
            "/etc/iw/accounts.yaml:3: accounts[1].name: account name `a` is already accounts[0]'s",
            "/etc/iw/accounts.yaml:4: accounts[2].id: account id 111111111111 is already accounts[0]'s",
            "/etc/iw/accounts.yaml:5: accounts[3].name: account name `A` differs from accounts[0]'s `a` only in case",
        ]
    );
}

#[test]
fn the_shape_of_the_file_is_checked() {
    assert!(errors("")[0].contains("is empty: expected `accounts:`"));
    assert!(
        errors("accounts: prod")[0].contains("accounts: must be a list of accounts, not a string")
    );
    assert!(errors("accounts: []")[0].contains("lists no account"));
    assert!(errors("acounts: []")[0].contains("did you mean `accounts`?"));
    assert!(
        errors("accounts:\n  - name: a\n    id: '111111111111'\n    values: {x: '${var.y}'}\n")[0]
            .contains("accounts[0].values.x: holds `${`")
    );
    assert!(errors("accounts:\n  - name: a\n    id: '111111111111'\n    roleArn: arn:aws:iam::111111111111:user/x\n")[0]
        .contains("is not a role ARN"));
    assert!(errors("accounts: [\n")[0].starts_with("/etc/iw/accounts.yaml:"));
}

#[test]
fn a_shard_keeps_only_its_accounts() {
    let a = parse(
        "accounts:\n  - {name: a, id: '111111111111'}\n  - {name: b, id: '222222222222'}\n  - {name: c, id: '333333333333'}\n",
    )
    .unwrap();
    let mut seen = Vec::new();
    for index in 0..2 {
        let shard = Shard { index, count: 2 };
        seen.extend(
            a.clone()
                .sharded(Some(shard))
                .accounts
                .into_iter()
                .map(|x| x.name),
        );
    }
    seen.sort();
    assert_eq!(seen, ["a", "b", "c"]);
    assert_eq!(a.clone().sharded(None), a);
}

#[test]
fn an_organization_entry_is_read_with_its_selection() {
    let a = parse(
        r#"
organization:
  roleName: platform/iam-warden
  include: ["prod-*", "1111*"]
  exclude: [prod-legacy]
  organizationalUnits: [ou-ab12-cdef3456]
  externalId: org-secret
  refreshEvery: 3
  values: {tier: member}
accounts:
  - {name: tooling, id: "999999999999"}
"#,
    )
    .unwrap();
    let org = a.organization.as_ref().unwrap();
    assert_eq!(org.role_name, "platform/iam-warden");
    assert_eq!(org.parents, ["ou-ab12-cdef3456"]);
    assert_eq!(org.refresh_every, 3);
    let members = [
        ("111111111111", "prod-eu", "aws"),
        ("222222222222", "prod-legacy", "aws"),
        ("333333333333", "Dev Sandbox", "aws"),
        ("111100000000", "Dev Sandbox", "aws-cn"),
        ("999999999999", "tooling-by-org", "aws"),
    ]
    .map(|(id, name, partition)| Member {
        id: id.into(),
        name: name.into(),
        partition: partition.into(),
    });
    let all = a.with_members(&members);
    let got: Vec<(&str, &str)> = all
        .accounts
        .iter()
        .map(|x| (x.name.as_str(), x.id.as_str()))
        .collect();
    // The file's own entry wins by id; names made from any text; excluded and unselected left.
    assert_eq!(
        got,
        [
            ("tooling", "999999999999"),
            ("prod-eu", "111111111111"),
            ("Dev-Sandbox", "111100000000"),
        ]
    );
    let cn = &all.accounts[2];
    let role = cn.role.as_ref().unwrap();
    assert_eq!(
        role.arn,
        "arn:aws-cn:iam::111100000000:role/platform/iam-warden"
    );
    assert_eq!(role.partition, "aws-cn");
    assert_eq!(cn.shared.session.external_id.as_deref(), Some("org-secret"));
    assert_eq!(cn.shared.values["tier"], "member");
}

#[test]
fn members_with_one_name_are_told_apart_by_id() {
    let a = parse("organization: {roleName: iam-warden}\n").unwrap();
    let members = ["111111111111", "222222222222"].map(|id| Member {
        id: id.into(),
        name: "Sandbox".into(),
        partition: "aws".into(),
    });
    let names: Vec<String> = a
        .with_members(&members)
        .accounts
        .into_iter()
        .map(|x| x.name)
        .collect();
    assert_eq!(names, ["Sandbox", "Sandbox-222222222222"]);
}

#[test]
fn an_organization_entry_is_checked() {
    let e = errors(
        "organization:\n  roleName: /bad/\n  include: prod\n  organizationalUnits: [ab-12]\n  refreshEvery: 0\n  excludes: [x]\n",
    );
    for w in [
        "accounts.yaml:2: organization.roleName: `/bad/` is not a role name",
        "accounts.yaml:3: organization.include: must be a list, not a string",
        "accounts.yaml:4: organization.organizationalUnits[0]: `ab-12` is not an OU or root id",
        "accounts.yaml:5: organization.refreshEvery: `0` is not a number of resyncs",
        "accounts.yaml:6: organization.excludes: unknown field `excludes`; did you mean `exclude`?",
    ] {
        assert!(e.iter().any(|x| x.contains(w)), "missing {w}\nin {e:#?}");
    }
    assert!(errors("organization: {}\n")[0].contains("roleName: is required"));
    assert!(errors("{}\n")[0].contains("or an `organization:` to discover"));
}
