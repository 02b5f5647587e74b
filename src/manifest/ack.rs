//! Manifests of the AWS Controllers for Kubernetes (ACK) iam-controller, read as they are and
//! rewritten into the native shape before decoding, so that one decoder (and one set of rules)
//! judges both. Field names and shapes follow ACK's published CRDs (iam-controller v1.3.x,
//! `iam.services.k8s.aws/v1alpha1`). The rewrite keeps every node's line, and records where
//! each native field came from, so an error found in the native shape names ACK's field.

use std::collections::BTreeMap;

use crate::fieldpath::{FieldPath, Seg};
use crate::suggest::unknown_field;

use super::model::{
    ACCOUNTS_ANNOTATION, ADOPT_ANNOTATION, API_VERSION, K8sName, MODE_ANNOTATION, PRUNE_ANNOTATION,
};
use super::yaml::{Key, Node, Value};

pub const ACK_API_VERSION: &str = "iam.services.k8s.aws/v1alpha1";

/// The top of an ACK object: `status` (written by ACK's controller) is ignored.
const TOP_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];
/// Kubernetes object metadata. What a server adds to an object read back with
/// `kubectl get -o yaml` is accepted and ignored: none of it says anything about IAM.
const METADATA_FIELDS: &[&str] = &[
    "name",
    "namespace",
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "finalizers",
    "ownerReferences",
    "deletionGracePeriodSeconds",
];
const ROLE_FIELDS: &[&str] = &[
    "name",
    "path",
    "description",
    "maxSessionDuration",
    "assumeRolePolicyDocument",
    "permissionsBoundary",
    "permissionsBoundaryRef",
    "policies",
    "policyRefs",
    "inlinePolicies",
    "tags",
];
const POLICY_FIELDS: &[&str] = &["name", "path", "description", "policyDocument", "tags"];
const INSTANCE_PROFILE_FIELDS: &[&str] = &["name", "path", "role", "roleRef", "tags"];
/// `clientIDList` and `thumbprintList` are the names of ACK's releases before the rename.
const OIDC_FIELDS: &[&str] = &[
    "url",
    "clientIDs",
    "thumbprints",
    "clientIDList",
    "thumbprintList",
    "tags",
];
pub const KINDS: &[&str] = &["Role", "Policy", "InstanceProfile", "OpenIDConnectProvider"];

const ADOPTION_POLICY: &str = "services.k8s.aws/adoption-policy";
const ADOPTION_FIELDS: &str = "services.k8s.aws/adoption-fields";
const DELETION_POLICY: &str = "services.k8s.aws/deletion-policy";
const READ_ONLY: &str = "services.k8s.aws/read-only";
const OWNER_ACCOUNT: &str = "services.k8s.aws/owner-account-id";
/// IAM is global: the region an ACK object names changes nothing.
const REGION: &str = "services.k8s.aws/region";
const ANNOTATIONS: &[&str] = &[
    ADOPTION_POLICY,
    ADOPTION_FIELDS,
    DELETION_POLICY,
    READ_ONLY,
    OWNER_ACCOUNT,
    REGION,
];

/// Whether a document is an ACK object (by its apiVersion).
pub fn is_ack(root: &Node) -> bool {
    matches!(
        field(root, "apiVersion").map(|n| &n.value),
        Some(Value::Scalar { text, .. }) if text == ACK_API_VERSION
    )
}

/// An ACK object in the native shape.
#[derive(Debug)]
pub struct Native {
    pub node: Node,
    /// Its Kubernetes identity, which other ACK objects refer to it by.
    pub k8s: K8sName,
    renames: Vec<(FieldPath, FieldPath)>,
}

impl Native {
    /// The ACK field a native field path came from.
    pub fn ack_path(&self, native: &FieldPath) -> FieldPath {
        let best = self
            .renames
            .iter()
            .filter(|(from, _)| native.0.starts_with(&from.0))
            .max_by_key(|(from, _)| from.0.len());
        match best {
            Some((from, to)) => FieldPath(
                to.0.iter()
                    .chain(&native.0[from.0.len()..])
                    .cloned()
                    .collect(),
            ),
            None => native.clone(),
        }
    }
}

/// What is wrong with an ACK object: its line, field path and message.
pub type Problem = (usize, FieldPath, String);

/// Rewrites an ACK object into the native shape, or says every field it cannot honour.
pub fn to_native(root: &Node) -> Result<Native, Vec<Problem>> {
    let mut t = Translator::default();
    let native = t.object(root);
    match (native, t.k8s) {
        (Some(node), Some(k8s)) if t.problems.is_empty() => Ok(Native {
            node,
            k8s,
            renames: t.renames,
        }),
        _ => Err(t.problems),
    }
}

fn field<'n>(node: &'n Node, name: &str) -> Option<&'n Node> {
    match &node.value {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
            .filter(|v| !v.is_null()),
        _ => None,
    }
}

fn text(node: &Node) -> Option<&str> {
    match &node.value {
        Value::Scalar { text, .. } if !node.is_null() => Some(text),
        _ => None,
    }
}

fn path(segs: &[&str]) -> FieldPath {
    FieldPath(segs.iter().map(|s| Seg::Key((*s).to_string())).collect())
}

fn entry(name: &str, line: usize, value: Node) -> (Key, Node) {
    (
        Key {
            name: name.to_string(),
            line,
        },
        value,
    )
}

fn map(line: usize, entries: Vec<(Key, Node)>) -> Node {
    Node {
        line,
        value: Value::Map(entries),
    }
}

#[derive(Default)]
struct Translator {
    problems: Vec<Problem>,
    renames: Vec<(FieldPath, FieldPath)>,
    /// The object's namespace, read before its spec: refs resolve within it.
    namespace: String,
    k8s: Option<K8sName>,
}

impl Translator {
    fn problem(&mut self, line: usize, path: FieldPath, message: impl Into<String>) {
        self.problems.push((line, path, message.into()));
    }

    /// The entries of a mapping, each unknown one reported (any is known when `allowed` is
    /// empty).
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        at: &FieldPath,
        allowed: &[&str],
    ) -> Option<&'n [(Key, Node)]> {
        let Value::Map(entries) = &node.value else {
            let what = if allowed.is_empty() {
                String::new()
            } else {
                format!(" ({})", allowed.join(", "))
            };
            self.problem(
                node.line,
                at.clone(),
                format!("must be a mapping{what}, not {}", node.type_name()),
            );
            return None;
        };
        for (key, _) in entries {
            if !allowed.is_empty() && !allowed.contains(&key.name.as_str()) {
                self.problem(
                    key.line,
                    at.key(key.name.as_str()),
                    unknown_field(&key.name, allowed),
                );
            }
        }
        Some(entries)
    }

    fn string(&mut self, node: &Node, at: &FieldPath) -> Option<String> {
        match text(node) {
            Some(t) if !matches!(node.value, Value::Seq(_) | Value::Map(_)) => Some(t.to_string()),
            _ => {
                self.problem(
                    node.line,
                    at.clone(),
                    format!("must be a string, not {}", node.type_name()),
                );
                None
            }
        }
    }

    fn object(&mut self, root: &Node) -> Option<Node> {
        let top = FieldPath::default();
        let entries = self.fields(root, &top, TOP_FIELDS)?;
        let get = |name: &str| {
            entries
                .iter()
                .find(|(k, _)| k.name == name)
                .map(|(_, v)| v)
                .filter(|v| !v.is_null())
        };
        let kind_node = get("kind");
        let kind = match kind_node.and_then(text) {
            Some(k) if KINDS.contains(&k) => Some(k.to_string()),
            Some(k) => {
                let line = kind_node.map_or(root.line, |n| n.line);
                // ACK's iam-controller has these too; iam-warden does not manage them.
                let what = match ["User", "Group", "ServiceLinkedRole"].contains(&k) {
                    true => format!("ACK's kind `{k}` is not one iam-warden manages"),
                    false => format!("unknown kind `{k}` of {ACK_API_VERSION}"),
                };
                self.problem(
                    line,
                    top.key("kind"),
                    format!("{what} (allowed: {})", KINDS.join(", ")),
                );
                None
            }
            None => {
                self.problem(root.line, top.key("kind"), "is required");
                None
            }
        };
        let Some(meta) = get("metadata") else {
            self.problem(root.line, top.key("metadata"), "is required");
            return None;
        };
        let meta_path = top.key("metadata");
        let meta_entries = self.fields(meta, &meta_path, METADATA_FIELDS)?;
        let meta_get = |name: &str| {
            meta_entries
                .iter()
                .find(|(k, _)| k.name == name)
                .map(|(_, v)| v)
                .filter(|v| !v.is_null())
        };
        let k8s_name = match meta_get("name") {
            Some(n) => self.string(n, &meta_path.key("name")),
            None => {
                self.problem(meta.line, meta_path.key("name"), "is required");
                None
            }
        };
        if let Some(n) = meta_get("namespace") {
            self.namespace = self
                .string(n, &meta_path.key("namespace"))
                .unwrap_or_default();
        }
        let annotations = meta_get("annotations");
        let kind = kind?;
        let spec = get("spec");
        let annotations = self.annotations(
            annotations,
            &meta_path.key("annotations"),
            spec,
            meta.line,
            &kind,
        );
        let spec_path = top.key("spec");
        let spec = spec?;
        let (iam_name, native_spec) = match kind.as_str() {
            "Role" => self.role(spec, &spec_path),
            "Policy" => self.policy(spec, &spec_path),
            "InstanceProfile" => self.instance_profile(spec, &spec_path),
            _ => self.oidc_provider(spec, &spec_path, k8s_name.as_deref()),
        };
        self.k8s = Some(K8sName {
            namespace: self.namespace.clone(),
            name: k8s_name?,
        });
        let (iam_name, name_line) = iam_name?;
        let mut meta_out = vec![entry(
            "name",
            name_line,
            Node::scalar(name_line, iam_name, false),
        )];
        if let Some(a) = annotations? {
            meta_out.push(entry("annotations", a.line, a));
        }
        let api_line = get("apiVersion").map_or(root.line, |n| n.line);
        let kind_line = kind_node.map_or(root.line, |n| n.line);
        Some(map(
            root.line,
            vec![
                entry(
                    "apiVersion",
                    api_line,
                    Node::scalar(api_line, API_VERSION, false),
                ),
                entry("kind", kind_line, Node::scalar(kind_line, kind, false)),
                entry("metadata", meta.line, map(meta.line, meta_out)),
                entry("spec", spec.line, native_spec?),
            ],
        ))
    }

    /// ACK's annotations as iam-warden's; any other annotation passes through.
    fn annotations(
        &mut self,
        node: Option<&Node>,
        at: &FieldPath,
        spec: Option<&Node>,
        meta_line: usize,
        kind: &str,
    ) -> Option<Option<Node>> {
        let entries: &[(Key, Node)] = match node {
            None => &[],
            Some(n) => self.fields(n, at, &[])?,
        };
        let mut out: Vec<(Key, Node)> = Vec::new();
        let mut adopting = false;
        for (key, value) in entries {
            let p = at.key(key.name.as_str());
            let lower = key.name.to_ascii_lowercase();
            if !lower.starts_with("services.k8s.aws/") {
                out.push((key.clone(), value.clone()));
                continue;
            }
            let Some(v) = self.string(value, &p) else {
                continue;
            };
            let mapped = match key.name.as_str() {
                ADOPTION_POLICY => match v.as_str() {
                    "adopt" | "adopt-or-create" => {
                        adopting = true;
                        Some((ADOPT_ANNOTATION, "true"))
                    }
                    _ => {
                        self.problem(
                            value.line,
                            p.clone(),
                            format!("must be \"adopt\" or \"adopt-or-create\", not `{v}`"),
                        );
                        None
                    }
                },
                ADOPTION_FIELDS => {
                    self.adoption_fields(&v, value.line, &p, spec, kind);
                    None
                }
                DELETION_POLICY => match v.as_str() {
                    "retain" => Some((PRUNE_ANNOTATION, "never")),
                    "delete" => Some((PRUNE_ANNOTATION, "allowed")),
                    _ => {
                        self.problem(
                            value.line,
                            p.clone(),
                            format!("must be \"retain\" or \"delete\", not `{v}`"),
                        );
                        None
                    }
                },
                READ_ONLY => match v.as_str() {
                    "true" => Some((MODE_ANNOTATION, "observe")),
                    "false" => Some((MODE_ANNOTATION, "enforce")),
                    _ => {
                        self.problem(
                            value.line,
                            p.clone(),
                            format!("must be \"true\" or \"false\", not `{v}`"),
                        );
                        None
                    }
                },
                OWNER_ACCOUNT => {
                    if v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()) {
                        out.push(entry(
                            ACCOUNTS_ANNOTATION,
                            key.line,
                            Node::scalar(value.line, v, false),
                        ));
                    } else {
                        self.problem(
                            value.line,
                            p.clone(),
                            format!("must be a 12-digit account id, not `{v}`"),
                        );
                    }
                    None
                }
                REGION => None,
                other => {
                    self.problem(
                        key.line,
                        p.clone(),
                        format!(
                            "{} (iam-warden cannot honour it, so it is not ignored)",
                            unknown_field(other, ANNOTATIONS)
                        ),
                    );
                    None
                }
            };
            if let Some((name, to)) = mapped {
                out.push(entry(name, key.line, Node::scalar(value.line, to, false)));
                self.renames
                    .push((path(&["metadata", "annotations", name]), p.clone()));
            }
        }
        if spec.is_none() {
            let message = if adopting {
                "is required: ACK's adoption without a spec takes the resource as AWS holds it, and iam-warden needs it written down (`iam-warden import` writes it)"
            } else {
                "is required"
            };
            self.problem(meta_line, path(&["spec"]), message);
        }
        // Two annotations that say one thing (`services.k8s.aws/read-only` and
        // `iam-warden/mode`) must not disagree; the native decoder sees a duplicate key.
        for (i, (key, _)) in out.iter().enumerate() {
            if out[..i].iter().any(|(k, _)| k.name == key.name) {
                self.problem(
                    key.line,
                    at.key(key.name.as_str()),
                    format!(
                        "`{}` is set twice (once through an ACK annotation)",
                        key.name
                    ),
                );
            }
        }
        Some((!out.is_empty()).then(|| map(node.map_or(meta_line, |n| n.line), out)))
    }

    /// `services.k8s.aws/adoption-fields: '{"name": "..."}'`: with a spec, it must name the
    /// resource the spec names (iam-warden finds a resource by its name).
    fn adoption_fields(
        &mut self,
        v: &str,
        line: usize,
        at: &FieldPath,
        spec: Option<&Node>,
        kind: &str,
    ) {
        let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(v)
        else {
            self.problem(
                line,
                at.clone(),
                "must be a JSON object such as {\"name\": \"NAME\"}",
            );
            return;
        };
        let id_field = if kind == "OpenIDConnectProvider" {
            "url"
        } else {
            "name"
        };
        let declared = spec.and_then(|s| field(s, id_field)).and_then(text);
        for (k, value) in &fields {
            let named = value.as_str().unwrap_or_default();
            let agrees = match k.as_str() {
                "name" | "url" => declared.is_none_or(|d| d == named),
                // The ARN's resource part must be exactly what the spec names: a provider's
                // url without its scheme, anything else's name as its last segment.
                "arn" => declared.is_none_or(|d| match id_field {
                    "url" => crate::arn::oidc_provider_url(named)
                        .is_some_and(|rest| rest == d.trim_start_matches("https://")),
                    _ => named.rsplit('/').next() == Some(d),
                }),
                _ => {
                    self.problem(
                        line,
                        at.clone(),
                        format!(
                            "names `{k}`; iam-warden finds a resource by its {id_field} (or arn)"
                        ),
                    );
                    continue;
                }
            };
            if !agrees {
                self.problem(line, at.clone(), format!("names `{named}` but spec.{id_field} is `{}`; iam-warden adopts the resource the spec names", declared.unwrap_or_default()));
            }
        }
    }

    /// `spec.name`, the IAM name, required.
    fn iam_name(
        &mut self,
        entries: &[(Key, Node)],
        spec: &Node,
        at: &FieldPath,
    ) -> Option<(String, usize)> {
        match entries
            .iter()
            .find(|(k, _)| k.name == "name")
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
        {
            Some(n) => {
                self.renames
                    .push((path(&["metadata", "name"]), at.key("name")));
                self.string(n, &at.key("name")).map(|s| (s, n.line))
            }
            None => {
                self.problem(spec.line, at.key("name"), "is required (the IAM name)");
                None
            }
        }
    }

    /// Copies `from` as native `to`, recording the rename.
    fn carry(
        &mut self,
        out: &mut Vec<(Key, Node)>,
        entries: &[(Key, Node)],
        at: &FieldPath,
        from: &str,
        to: &str,
    ) {
        if let Some((key, value)) = entries.iter().find(|(k, _)| k.name == from) {
            out.push(entry(to, key.line, value.clone()));
            if from != to {
                self.renames.push((path(&["spec", to]), at.key(from)));
            }
        }
    }

    /// `tags: [{key, value}]` as a mapping.
    fn tags(&mut self, out: &mut Vec<(Key, Node)>, entries: &[(Key, Node)], at: &FieldPath) {
        let Some((key, node)) = entries.iter().find(|(k, _)| k.name == "tags") else {
            return;
        };
        let at = at.key("tags");
        if node.is_null() {
            return;
        }
        let Value::Seq(items) = &node.value else {
            self.problem(
                node.line,
                at,
                format!("must be a list of {{key, value}}, not {}", node.type_name()),
            );
            return;
        };
        let mut tags: Vec<(Key, Node)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = at.index(i);
            let Some(fields) = self.fields(item, &p, &["key", "value"]) else {
                continue;
            };
            let get = |n: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k.name == n)
                    .map(|(_, v)| v)
                    .filter(|v| !v.is_null())
            };
            let Some(k) = get("key") else {
                self.problem(item.line, p.key("key"), "is required");
                continue;
            };
            let Some(name) = self.string(k, &p.key("key")) else {
                continue;
            };
            if let Some((first, _)) = tags.iter().find(|(t, _)| t.name == name) {
                self.problem(
                    k.line,
                    p.key("key"),
                    format!(
                        "tag `{name}` is listed twice (first on line {})",
                        first.line
                    ),
                );
                continue;
            }
            let value = get("value")
                .cloned()
                .unwrap_or_else(|| Node::scalar(item.line, "", false));
            self.renames
                .push((path(&["spec", "tags", &name]), p.clone()));
            tags.push(entry(&name, k.line, value));
        }
        out.push(entry("tags", key.line, map(node.line, tags)));
    }

    /// ACK's `FIELD` (a value) or `FIELDRef` (`{from: {name}}`), one at most, as native `FIELD`.
    fn value_or_ref(
        &mut self,
        out: &mut Vec<(Key, Node)>,
        entries: &[(Key, Node)],
        at: &FieldPath,
        field: &str,
    ) {
        let reference = format!("{field}Ref");
        let get = |n: &str| {
            entries
                .iter()
                .find(|(k, _)| k.name == n)
                .filter(|(_, v)| !v.is_null())
        };
        match (get(field), get(&reference)) {
            (Some(_), Some((key, _))) => self.problem(
                key.line,
                at.key(reference.as_str()),
                format!("{field} and {reference} are both set; give one"),
            ),
            (Some(_), None) => self.carry(out, entries, at, field, field),
            (None, Some((key, node))) => {
                if let Some(r) =
                    self.reference(node, &at.key(reference.as_str()), path(&["spec", field]))
                {
                    out.push(entry(field, key.line, r));
                }
            }
            (None, None) => {}
        }
    }

    /// `{from: {name, namespace}}` as `{ref: NAME}`.
    fn reference(&mut self, node: &Node, at: &FieldPath, native: FieldPath) -> Option<Node> {
        let fields = self.fields(node, at, &["from"])?;
        let Some((_, from)) = fields.iter().find(|(k, _)| k.name == "from") else {
            self.problem(node.line, at.key("from"), "is required");
            return None;
        };
        let from_path = at.key("from");
        let inner = self.fields(from, &from_path, &["name", "namespace"])?;
        let Some((_, name)) = inner.iter().find(|(k, _)| k.name == "name") else {
            self.problem(from.line, from_path.key("name"), "is required");
            return None;
        };
        let name = self.string(name, &from_path.key("name"))?;
        if let Some((_, ns)) = inner.iter().find(|(k, _)| k.name == "namespace") {
            let ns_path = from_path.key("namespace");
            let ns = self.string(ns, &ns_path)?;
            if ns != self.namespace {
                self.problem(
                    from.line,
                    ns_path,
                    format!(
                        "names namespace `{ns}`; iam-warden resolves a ref within the object's own namespace (`{}`)",
                        self.namespace
                    ),
                );
                return None;
            }
        }
        self.renames.push((native.clone(), at.clone()));
        self.renames
            .push((native.key("ref"), from_path.key("name")));
        Some(map(
            node.line,
            vec![entry(
                "ref",
                from.line,
                Node::scalar(from.line, name, false),
            )],
        ))
    }

    fn role(&mut self, spec: &Node, at: &FieldPath) -> (Option<(String, usize)>, Option<Node>) {
        let Some(entries) = self.fields(spec, at, ROLE_FIELDS) else {
            return (None, None);
        };
        let name = self.iam_name(entries, spec, at);
        let mut out = Vec::new();
        for (from, to) in [
            ("path", "path"),
            ("description", "description"),
            ("maxSessionDuration", "maxSessionDuration"),
            ("assumeRolePolicyDocument", "assumeRolePolicy"),
            ("inlinePolicies", "inlinePolicies"),
        ] {
            self.carry(&mut out, entries, at, from, to);
        }
        let get = |n: &str| {
            entries
                .iter()
                .find(|(k, _)| k.name == n)
                .filter(|(_, v)| !v.is_null())
        };
        self.value_or_ref(&mut out, entries, at, "permissionsBoundary");
        let mut managed = Vec::new();
        let mut line = None;
        if let Some((key, node)) = get("policies") {
            line = Some(key.line);
            match &node.value {
                Value::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.renames.push((
                            path(&["spec", "managedPolicies"]).index(managed.len()),
                            at.key("policies").index(i),
                        ));
                        managed.push(item.clone());
                    }
                }
                _ => self.problem(
                    node.line,
                    at.key("policies"),
                    format!("must be a list of policy ARNs, not {}", node.type_name()),
                ),
            }
        }
        if let Some((key, node)) = get("policyRefs") {
            line = line.or(Some(key.line));
            match &node.value {
                Value::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let native = path(&["spec", "managedPolicies"]).index(managed.len());
                        if let Some(r) =
                            self.reference(item, &at.key("policyRefs").index(i), native)
                        {
                            managed.push(r);
                        }
                    }
                }
                _ => self.problem(
                    node.line,
                    at.key("policyRefs"),
                    format!(
                        "must be a list of {{from: {{name}}}}, not {}",
                        node.type_name()
                    ),
                ),
            }
        }
        if let Some(line) = line {
            out.push(entry(
                "managedPolicies",
                line,
                Node {
                    line,
                    value: Value::Seq(managed),
                },
            ));
        }
        self.tags(&mut out, entries, at);
        (name, Some(map(spec.line, out)))
    }

    fn policy(&mut self, spec: &Node, at: &FieldPath) -> (Option<(String, usize)>, Option<Node>) {
        let Some(entries) = self.fields(spec, at, POLICY_FIELDS) else {
            return (None, None);
        };
        let name = self.iam_name(entries, spec, at);
        let mut out = Vec::new();
        for (from, to) in [
            ("path", "path"),
            ("description", "description"),
            ("policyDocument", "document"),
        ] {
            self.carry(&mut out, entries, at, from, to);
        }
        self.tags(&mut out, entries, at);
        (name, Some(map(spec.line, out)))
    }

    fn instance_profile(
        &mut self,
        spec: &Node,
        at: &FieldPath,
    ) -> (Option<(String, usize)>, Option<Node>) {
        let Some(entries) = self.fields(spec, at, INSTANCE_PROFILE_FIELDS) else {
            return (None, None);
        };
        let name = self.iam_name(entries, spec, at);
        let mut out = Vec::new();
        self.carry(&mut out, entries, at, "path", "path");
        self.value_or_ref(&mut out, entries, at, "role");
        self.tags(&mut out, entries, at);
        (name, Some(map(spec.line, out)))
    }

    /// IAM identifies a provider by its url; its name is the object's `metadata.name`.
    fn oidc_provider(
        &mut self,
        spec: &Node,
        at: &FieldPath,
        k8s_name: Option<&str>,
    ) -> (Option<(String, usize)>, Option<Node>) {
        let Some(entries) = self.fields(spec, at, OIDC_FIELDS) else {
            return (None, None);
        };
        let mut out = Vec::new();
        self.carry(&mut out, entries, at, "url", "url");
        for (now, before) in [
            ("clientIDs", "clientIDList"),
            ("thumbprints", "thumbprintList"),
        ] {
            let has = |n: &str| entries.iter().find(|(k, _)| k.name == n);
            match (has(now), has(before)) {
                (Some(_), Some((key, _))) => self.problem(
                    key.line,
                    at.key(before),
                    format!("{now} and {before} (its older name) are both set; give one"),
                ),
                (_, Some(_)) => self.carry(&mut out, entries, at, before, now),
                _ => self.carry(&mut out, entries, at, now, now),
            }
        }
        self.tags(&mut out, entries, at);
        self.renames
            .push((path(&["metadata", "name"]), path(&["metadata", "name"])));
        (
            k8s_name.map(|n| (n.to_string(), spec.line)),
            Some(map(spec.line, out)),
        )
    }
}

/// One document in the native shape as JSON, for `iam-warden convert`: an ACK object rewritten
/// (its policy documents given as JSON strings become mappings, unless they hold a number,
/// which a mapping could not keep exactly as written), any other document as it is.
pub fn native_json(root: &Node) -> Result<(serde_json::Value, Option<K8sName>), Vec<Problem>> {
    if !is_ack(root) {
        return Ok((root.to_json(), None));
    }
    let native = to_native(root)?;
    let mut json = native.node.to_json();
    if let Some(spec) = json.get_mut("spec").and_then(|s| s.as_object_mut()) {
        for field in ["assumeRolePolicy", "document"] {
            if let Some(doc) = spec.get_mut(field) {
                expand(doc);
            }
        }
        if let Some(serde_json::Value::Object(inline)) = spec.get_mut("inlinePolicies") {
            inline.values_mut().for_each(expand);
        }
    }
    Ok((json, Some(native.k8s)))
}

fn expand(doc: &mut serde_json::Value) {
    fn has_number(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(_) => true,
            serde_json::Value::Array(items) => items.iter().any(has_number),
            serde_json::Value::Object(m) => m.values().any(has_number),
            _ => false,
        }
    }
    if let Some(text) = doc.as_str() {
        if let Ok(parsed @ serde_json::Value::Object(_)) = serde_json::from_str(text) {
            if !has_number(&parsed) {
                *doc = parsed;
            }
        }
    }
}

/// ACK objects by Kubernetes identity: what an ACK ref (`{from: {name}}`, always a
/// Kubernetes name, within the referring object's namespace) means.
#[derive(Debug, Default)]
pub struct K8sIndex {
    /// (kind, namespace, Kubernetes name) -> IAM name.
    objects: BTreeMap<(String, String, String), String>,
}

impl K8sIndex {
    /// Adds an object; the IAM name of another object of the same kind, namespace and name if
    /// there is one (which is two declarations of one Kubernetes object).
    pub fn insert(&mut self, kind: &str, k8s: &K8sName, iam: &str) -> Option<String> {
        let key = (kind.to_string(), k8s.namespace.clone(), k8s.name.clone());
        match self.objects.get(&key) {
            Some(first) => Some(first.clone()),
            None => {
                self.objects.insert(key, iam.to_string());
                None
            }
        }
    }

    /// The IAM name of the `kind` object that a ref to `name` from an ACK object in `namespace`
    /// means; `None` when no ACK object has that name there (the name is then an IAM name).
    pub fn resolve(&self, kind: &str, namespace: &str, name: &str) -> Option<&str> {
        self.objects
            .get(&(kind.to_string(), namespace.to_string(), name.to_string()))
            .map(String::as_str)
    }
}

/// Rewrites the refs of converted ACK objects (`docs`, each with its Kubernetes identity) from
/// Kubernetes names into IAM names, as loading resolves them.
pub fn resolve_refs(docs: &mut [(serde_json::Value, Option<K8sName>)]) {
    use serde_json::Value as Json;
    let mut index = K8sIndex::default();
    for (doc, k8s) in docs.iter() {
        let kind = doc.get("kind").and_then(Json::as_str);
        let iam = doc
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Json::as_str);
        if let (Some(kind), Some(iam), Some(k8s)) = (kind, iam, k8s) {
            index.insert(kind, k8s, iam);
        }
    }
    for (doc, k8s) in docs.iter_mut() {
        let Some(namespace) = k8s.as_ref().map(|k| k.namespace.as_str()) else {
            continue;
        };
        let fix = |kind: &str, r: &mut Json| {
            if let Some(Json::String(name)) = r.get_mut("ref") {
                if let Some(iam) = index.resolve(kind, namespace, name) {
                    *name = iam.to_string();
                }
            }
        };
        let Some(spec) = doc.get_mut("spec").and_then(Json::as_object_mut) else {
            continue;
        };
        if let Some(Json::Array(items)) = spec.get_mut("managedPolicies") {
            items.iter_mut().for_each(|r| fix("Policy", r));
        }
        if let Some(r) = spec.get_mut("permissionsBoundary") {
            fix("Policy", r);
        }
        if let Some(r) = spec.get_mut("role") {
            fix("Role", r);
        }
    }
}
