//! Property tests over the public API: the YAML reader, the manifest loader and the policy
//! parser never panic whatever they are given, and policy equivalence behaves as DESIGN.md says
//! (idempotent canonical form, symmetric equivalence, IAM's reshapings and URL-encoding
//! round trip all equivalent, an exact field changed never equivalent).
//!
//! Case budgets are fixed and small enough for CI (a few seconds in a debug build); a failure
//! prints the smallest input proptest could shrink it to, and is saved under
//! `proptest-regressions/` to be replayed first on the next run.

use iam_warden::manifest::{self, Variables, yaml};
use iam_warden::policy::danger;
use iam_warden::policy::{PolicyDocument, PolicyKind, check};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// `cases` per property, or `PROPTEST_CASES` from the environment for a longer hunt.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Never a panic

/// Pieces that YAML gives meaning to, and pieces of manifests, strung together at random: much
/// likelier than random bytes to reach deep into the reader and the decoder.
const FRAGMENTS: &[&str] = &[
    "\n",
    " ",
    "  ",
    "\t",
    "- ",
    ": ",
    ":",
    ",",
    "[",
    "]",
    "{",
    "}",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "!!str ",
    "!custom ",
    "'",
    "\"",
    "\\",
    "#",
    "---\n",
    "...\n",
    "|\n",
    ">-\n",
    "? ",
    "~",
    "null",
    "true",
    "10",
    "-1",
    "1.5e3",
    "0x1F",
    "${var.x}",
    "${aws:username}",
    "${",
    "\u{e9}",
    "\u{1F600}",
    "\r\n",
    "\r",
    "%YAML 1.2\n",
    "<<: *a\n",
    "apiVersion: iamwarden/v1alpha1\n",
    "kind: Role\n",
    "kind: Policy\n",
    "metadata:\n  name: r\n",
    "metadata: {name: p}\n",
    "spec:\n",
    "  assumeRolePolicy:\n",
    "  document:\n",
    "  inlinePolicies:\n    x:\n",
    "  managedPolicies: [{ref: p}]\n",
    "  tags: {a: b}\n",
    "    Version: \"2012-10-17\"\n",
    "    Statement:\n",
    "      - Effect: Allow\n",
    "        Action: \"*\"\n",
    "        Resource: \"*\"\n",
    "        Principal: {AWS: \"*\"}\n",
    "Statement",
    "Version",
];

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..80).prop_map(|parts| parts.concat())
}

/// A manifest file holding `text`, loaded as the daemon and the CLI load it.
fn load_text(text: &[u8]) -> manifest::FileReport {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("m.yaml");
    std::fs::write(&path, text).expect("write");
    let mut vars = Variables::default();
    vars.set("x", "value");
    manifest::load_file(&path, &vars)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn the_yaml_reader_never_panics_on_any_text(text in any::<String>()) {
        let _ = yaml::parse_documents(&text);
    }

    #[test]
    fn the_yaml_reader_never_panics_on_yaml_shaped_text(text in yamlish()) {
        let (docs, err) = yaml::parse_documents(&text);
        // Every error names a line inside the text, or just past its end (`[`: line 2). YAML
        // breaks lines at \n, \r\n and a lone \r (a fuzz run found the last one).
        if let Some(e) = err {
            let breaks = text.matches(['\n', '\r']).count();
            prop_assert!(e.line <= breaks + 2, "{e:?} for {text:?}");
        }
        for doc in docs.iter().filter_map(|d| d.root.as_ref()) {
            prop_assert!(doc.line >= 1);
        }
    }

    #[test]
    fn the_policy_parser_never_panics_on_any_text(text in any::<String>()) {
        let _ = PolicyDocument::parse_json(&text);
        let _ = PolicyDocument::from_iam(&text);
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn the_manifest_loader_never_panics_on_any_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..600)
    ) {
        let report = load_text(&bytes);
        // Whatever the bytes: a file with an error declares nothing, and every error names
        // the file, says something, and points at a line the file has.
        prop_assert!(report.is_valid() || report.resources.is_empty());
        let lines = bytes.split(|b| *b == b'\n').count();
        for d in &report.diagnostics {
            prop_assert_eq!(&d.file, &report.path);
            prop_assert!(!d.message.trim().is_empty());
            prop_assert!(d.line.is_none_or(|l| l >= 1 && l <= lines), "{:?} of {} lines", d.line, lines);
        }
    }

    #[test]
    fn the_manifest_loader_never_panics_on_yaml_shaped_text(text in yamlish()) {
        let report = load_text(text.as_bytes());
        // A file with an error declares nothing.
        prop_assert!(report.is_valid() || report.resources.is_empty());
        for d in &report.diagnostics {
            prop_assert_eq!(&d.file, &report.path);
        }
    }
}

/// Any JSON value, nested a few levels, with the keys policies use among random ones.
fn any_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "Version",
            "Statement",
            "Effect",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Principal",
            "NotPrincipal",
            "Condition",
            "Sid",
            "AWS",
            "Service",
            "Federated",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z:*]{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "*",
            "Allow",
            "allow",
            "Deny",
            "iam:*",
            "iam:Pass*",
            "s3:GetObject",
            "*:*",
            "arn:aws:s3:::b/*",
            "123456789012",
            "2012-10-17",
            "",
        ])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn policy_checks_never_panic_on_any_json(value in any_json(), other in any_json()) {
        for kind in [PolicyKind::Identity, PolicyKind::Trust] {
            let _ = check(&value, kind);
            let _ = danger::findings(&value, kind);
        }
        if let (Ok(a), Ok(b)) = (
            PolicyDocument::from_value(value.clone()),
            PolicyDocument::from_value(other),
        ) {
            prop_assert!(a.is_equivalent(&a), "equivalence is reflexive");
            prop_assert_eq!(a.is_equivalent(&b), b.is_equivalent(&a));
            let _ = (a.statements(), a.size());
            let round = PolicyDocument::parse_json(&a.to_json()).expect("own JSON parses");
            prop_assert!(round.is_equivalent(&a));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Equivalence as DESIGN.md defines it

const ACCOUNT: &str = "123456789012";

/// One statement, in the terms equivalence cares about.
#[derive(Clone, Debug)]
struct Statement {
    allow: bool,
    sid: Option<String>,
    actions: Vec<String>,
    /// Resources of an identity statement, or `None` for a trust statement.
    resources: Option<Vec<String>>,
    /// AWS principals of a trust statement: account ids, ARNs, `*`.
    principals: Vec<String>,
    services: Vec<String>,
    /// `StringEquals`-style operator -> key -> values: numbers and booleans among them.
    condition: Vec<(String, String, Vec<CondValue>)>,
}

#[derive(Clone, Debug)]
enum CondValue {
    Str(String),
    Int(u32),
    Bool(bool),
}

fn statement() -> impl Strategy<Value = Statement> {
    let actions = prop::collection::vec(
        prop::sample::select(vec![
            "s3:GetObject",
            "s3:PutObject",
            "iam:PassRole",
            "sts:AssumeRole",
            "ecr:*",
            "*",
        ])
        .prop_map(str::to_string),
        1..4,
    );
    let resources = prop::option::of(prop::collection::vec(
        prop::sample::select(vec![
            "*",
            "arn:aws:s3:::bucket",
            "arn:aws:s3:::bucket/*",
            "arn:aws:s3:::Bucket/*",
        ])
        .prop_map(str::to_string),
        1..3,
    ));
    let principals = prop::collection::vec(
        prop::sample::select(vec![
            ACCOUNT.to_string(),
            "210987654321".into(),
            "arn:aws:iam::123456789012:role/app".into(),
        ]),
        0..3,
    );
    let services = prop::collection::vec(
        prop::sample::select(vec!["ecs-tasks.amazonaws.com", "lambda.amazonaws.com"])
            .prop_map(str::to_string),
        0..2,
    );
    let cond_value = prop_oneof![
        "[a-z0-9-]{0,8}".prop_map(CondValue::Str),
        (0u32..5000).prop_map(CondValue::Int),
        any::<bool>().prop_map(CondValue::Bool),
    ];
    let condition = prop::collection::vec(
        (
            prop::sample::select(vec!["StringEquals", "NumericLessThan", "Bool"]),
            prop::sample::select(vec![
                "aws:SourceAccount",
                "s3:max-keys",
                "aws:SecureTransport",
            ]),
            prop::collection::vec(cond_value, 1..3),
        )
            .prop_map(|(op, key, values)| (op.to_string(), key.to_string(), values)),
        0..2,
    );
    (
        any::<bool>(),
        prop::option::of("[A-Za-z0-9]{1,6}"),
        actions,
        resources,
        principals,
        services,
        condition,
    )
        .prop_map(
            |(allow, sid, actions, resources, principals, services, condition)| Statement {
                allow,
                sid,
                actions,
                resources,
                principals,
                services,
                condition,
            },
        )
}

fn policy() -> impl Strategy<Value = Vec<Statement>> {
    prop::collection::vec(statement(), 1..4)
}

/// Deterministic choices from a seed: every way of writing the same policy is one seed.
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        // xorshift64*: enough to vary the shape; proptest chooses the seed.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn flip(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }

    /// A string, or a one-element list of it, or a list: as IAM allows them all.
    fn strings(&mut self, items: &[String]) -> Value {
        let mut items = items.to_vec();
        self.shuffle(&mut items);
        if items.len() == 1 && self.flip() {
            Value::from(items[0].clone())
        } else {
            Value::from(items)
        }
    }

    /// An object with its keys in a chosen order.
    fn object(&mut self, mut entries: Vec<(String, Value)>) -> Value {
        self.shuffle(&mut entries);
        Value::Object(entries.into_iter().collect())
    }
}

fn random_case(s: &str, choices: &mut Choices) -> String {
    s.chars()
        .map(|c| {
            if choices.flip() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// The policy written one of the many ways IAM treats as the same, chosen by `seed`.
fn render(policy: &[Statement], seed: u64) -> PolicyDocument {
    let mut c = Choices(seed | 1);
    let mut statements: Vec<Value> = policy.iter().map(|s| render_statement(s, &mut c)).collect();
    c.shuffle(&mut statements);
    let statement = if statements.len() == 1 && c.flip() {
        statements.remove(0)
    } else {
        Value::from(statements)
    };
    let doc = c.object(vec![
        ("Version".into(), json!("2012-10-17")),
        ("Statement".into(), statement),
    ]);
    PolicyDocument::from_value(doc).expect("an object")
}

fn render_statement(s: &Statement, c: &mut Choices) -> Value {
    let mut fields = Vec::new();
    let effect = if s.allow { "Allow" } else { "Deny" };
    let effect = if c.flip() {
        random_case(effect, c)
    } else {
        effect.to_string()
    };
    fields.push(("Effect".to_string(), Value::from(effect)));
    if let Some(sid) = &s.sid {
        fields.push(("Sid".into(), Value::from(sid.clone())));
    }
    let actions: Vec<String> = s.actions.iter().map(|a| random_case(a, c)).collect();
    fields.push(("Action".into(), c.strings(&actions)));
    match &s.resources {
        Some(resources) => fields.push(("Resource".into(), c.strings(resources))),
        None => fields.push(("Principal".into(), principal(s, c))),
    }
    if !s.condition.is_empty() {
        let mut operators: Vec<(String, Value)> = Vec::new();
        for (op, key, values) in &s.condition {
            let values: Vec<Value> = values
                .iter()
                .map(|v| match v {
                    CondValue::Str(s) => Value::from(s.clone()),
                    CondValue::Int(n) if c.flip() => Value::from(*n),
                    CondValue::Int(n) => Value::from(n.to_string()),
                    CondValue::Bool(b) if c.flip() => Value::from(*b),
                    CondValue::Bool(b) => Value::from(b.to_string()),
                })
                .collect();
            let values = if values.len() == 1 && c.flip() {
                values[0].clone()
            } else {
                Value::from(values)
            };
            // One operator may appear once: later keys of the same operator are merged.
            match operators.iter_mut().find(|(o, _)| o == op) {
                Some((_, Value::Object(keys))) => {
                    keys.insert(key.clone(), values);
                }
                _ => operators.push((op.clone(), json!({ key.clone(): values }))),
            }
        }
        fields.push(("Condition".into(), c.object(operators)));
    }
    c.object(fields)
}

/// `*` when the AWS principals include it (as `"*"`, `{AWS: "*"}` or `{AWS: ["*"]}`); an account
/// as its id or as its root ARN.
fn principal(s: &Statement, c: &mut Choices) -> Value {
    if s.principals.is_empty() && s.services.is_empty() {
        return match c.next() % 3 {
            0 => json!("*"),
            1 => json!({"AWS": "*"}),
            _ => json!({"AWS": ["*"]}),
        };
    }
    let mut types = Vec::new();
    if !s.principals.is_empty() {
        let aws: Vec<String> = s
            .principals
            .iter()
            .map(|p| {
                if p.len() == 12 && c.flip() {
                    format!("arn:aws:iam::{p}:root")
                } else {
                    p.clone()
                }
            })
            .collect();
        types.push(("AWS".to_string(), c.strings(&aws)));
    }
    if !s.services.is_empty() {
        types.push(("Service".to_string(), c.strings(&s.services)));
    }
    c.object(types)
}

/// IAM's encoding of a document in its answers.
fn url_encoded(doc: &PolicyDocument) -> String {
    utf8_percent_encode(&doc.to_json(), NON_ALPHANUMERIC).to_string()
}

/// The document rebuilt from its canonical statements: canonicalising it again changes nothing.
fn from_canonical(doc: &PolicyDocument) -> PolicyDocument {
    let statements: Vec<Value> = doc
        .statements()
        .iter()
        .map(|(canon, _)| serde_json::from_str(canon).expect("canonical JSON"))
        .collect();
    PolicyDocument::from_value(json!({"Version": "2012-10-17", "Statement": statements}))
        .expect("an object")
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn every_way_of_writing_a_policy_is_equivalent_both_ways(
        policy in policy(),
        a in any::<u64>(),
        b in any::<u64>(),
    ) {
        let (x, y) = (render(&policy, a), render(&policy, b));
        prop_assert!(x.is_equivalent(&y), "\n{}\n{}", x.to_json(), y.to_json());
        prop_assert!(y.is_equivalent(&x), "\n{}\n{}", y.to_json(), x.to_json());
    }

    #[test]
    fn canonicalisation_is_idempotent(policy in policy(), seed in any::<u64>()) {
        let doc = render(&policy, seed);
        let once = from_canonical(&doc);
        let twice = from_canonical(&once);
        prop_assert!(once.is_equivalent(&doc));
        prop_assert_eq!(once.statements(), twice.statements());
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn iam_url_encoding_round_trips(policy in policy(), seed in any::<u64>()) {
        let doc = render(&policy, seed);
        let back = PolicyDocument::from_iam(&url_encoded(&doc)).expect("decodes");
        prop_assert_eq!(&back, &doc, "exactly what was sent");
        prop_assert!(back.is_equivalent(&doc) && doc.is_equivalent(&back));
    }

    #[test]
    fn a_changed_resource_or_sid_is_never_equivalent(
        policy in policy(),
        seed in any::<u64>(),
        which in any::<prop::sample::Index>(),
    ) {
        let doc = render(&policy, seed);
        let i = which.index(policy.len());
        let mut changed = policy.clone();
        let target = &mut changed[i];
        match &mut target.resources {
            // Resource ARNs compare exactly: a new one is a new grant.
            Some(resources) => resources.push("arn:aws:s3:::another-bucket".into()),
            None => target.sid = Some(format!("{}X", target.sid.clone().unwrap_or_default())),
        }
        let other = render(&changed, seed);
        // Unless an identical statement elsewhere makes the change invisible after dedup.
        let changed_canon = from_canonical(&other).statements();
        prop_assume!(changed_canon != from_canonical(&doc).statements());
        prop_assert!(!doc.is_equivalent(&other), "\n{}\n{}", doc.to_json(), other.to_json());
        prop_assert!(!other.is_equivalent(&doc));
    }
}

#[test]
fn a_float_in_a_condition_survives_iams_url_encoded_round_trip() {
    // Found by `policy_checks_never_panic_on_any_json`: without serde_json's exact float
    // parsing, this number came back one ulp off, a false difference on every resync.
    let doc = PolicyDocument::from_value(json!({"Version": "2012-10-17", "Statement": {
        "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
        "Condition": {"NumericLessThan": {"s3:max-keys": 1.6236134848545293e-124}}}}))
    .unwrap();
    let back = PolicyDocument::from_iam(&url_encoded(&doc)).unwrap();
    assert_eq!(back, doc);
}

#[test]
fn the_property_generators_write_both_shapes() {
    // Guards the tests above against generators that silently stopped varying the shape.
    let policy = vec![Statement {
        allow: true,
        sid: None,
        actions: vec!["s3:GetObject".into()],
        resources: Some(vec!["arn:aws:s3:::bucket".into()]),
        principals: vec![],
        services: vec![],
        condition: vec![(
            "Bool".into(),
            "aws:SecureTransport".into(),
            vec![CondValue::Bool(true)],
        )],
    }];
    let shapes: std::collections::BTreeSet<String> = (0..64)
        .map(|seed| render(&policy, seed).to_json())
        .collect();
    assert!(shapes.len() > 8, "{shapes:#?}");
    assert!(
        shapes.iter().any(|s| s.contains("\"Statement\":{")),
        "a single statement"
    );
    assert!(
        shapes.iter().any(|s| s.contains("\"Statement\":[")),
        "a list"
    );
    assert!(
        shapes.iter().any(|s| s.contains(":true")),
        "a boolean condition value"
    );
    assert!(shapes.iter().any(|s| s.contains(":\"true\"")), "its string");
}
