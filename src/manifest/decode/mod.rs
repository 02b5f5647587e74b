//! One YAML document to one typed, validated [`Resource`], or every error it holds.
//!
//! Decoding is written out by hand rather than derived with serde so that a document reports
//! all of its errors at once, each with its line and field path, and an unknown field gets a
//! "did you mean". Policy documents and references are read in `documents`.

use std::collections::BTreeMap;
use std::path::Path;

use super::diagnostic::Diagnostic;
use super::limits;
use super::model::{
    ACCOUNTS_ANNOTATION, ADOPT_ANNOTATION, API_VERSION, DEFAULT_MAX_SESSION,
    DesiredInstanceProfile, DesiredOidcProvider, DesiredPolicy, DesiredRole, Kind, MODE_ANNOTATION,
    Origin, PRUNE_ANNOTATION, Resource, RoleRef,
};
use super::vars::{Variables, has_reference, substitute};
use super::yaml::{CoreScalar, Key, Node, Value, core_scalar};
use crate::fieldpath::FieldPath;
use crate::policy::PolicyKind;
use crate::suggest::{closest, unknown_field};

mod documents;

pub const TOP_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec"];
pub const METADATA_FIELDS: &[&str] = &["name", "annotations"];
pub const ROLE_FIELDS: &[&str] = &[
    "path",
    "description",
    "maxSessionDuration",
    "permissionsBoundary",
    "assumeRolePolicy",
    "managedPolicies",
    "inlinePolicies",
    "tags",
];
pub const POLICY_FIELDS: &[&str] = &["path", "description", "document", "tags"];
pub const INSTANCE_PROFILE_FIELDS: &[&str] = &["path", "role", "tags"];
pub const OIDC_PROVIDER_FIELDS: &[&str] = &["url", "clientIDs", "thumbprints", "tags"];
/// iam-warden's own annotations; any other `iam-warden/…` key is a mistake.
const ANNOTATIONS: &[&str] = &[
    ADOPT_ANNOTATION,
    PRUNE_ANNOTATION,
    MODE_ANNOTATION,
    ACCOUNTS_ANNOTATION,
];

/// Decodes one document (its variables resolved first). `None` when it has any error.
pub fn decode_document(
    file: &Path,
    mut root: Node,
    vars: &Variables,
    guardrails: &dyn super::ResourceRules,
) -> (Option<Resource>, Vec<Diagnostic>) {
    let mut d = Decoder {
        file,
        vars,
        diags: Vec::new(),
        unresolved: Vec::new(),
    };
    if let Some((text, line)) = accounts_annotation(&root) {
        if has_reference(text) {
            // Which accounts a manifest is for is decided before any value of an account is
            // known: a variable here would select by one account's value for all of them.
            let path = FieldPath::default()
                .key("metadata")
                .key("annotations")
                .key(ACCOUNTS_ANNOTATION);
            d.error(
                line,
                &path,
                "holds a variable; name the accounts here as written (names or ids, `*`, `!`)",
            );
            return (None, d.diags);
        }
    }
    d.resolve_vars(&mut root, &FieldPath::default(), vars);
    let resource = d.document(&root);
    if let Some(r) = &resource {
        // Guardrails judge a resource that is valid otherwise.
        for (path, rule, message) in guardrails.violations(r) {
            d.error_as(rule, root.line_at(&path), &path, message);
        }
    }
    let mut diags = d.diags;
    diags.sort_by_key(|x| x.line);
    if diags.is_empty() {
        (resource, diags)
    } else {
        (None, diags)
    }
}

/// The line and selector of a document that is not for this account: its `iam-warden/accounts` does
/// not select it (read before any variable is resolved, so that a value only some accounts
/// define is not an error in the others). `None`: decode it (a malformed selector included,
/// so that decoding reports it).
pub fn left_for_other_accounts(root: &Node, vars: &Variables) -> Option<(usize, String)> {
    let (text, line) = accounts_annotation(root)?;
    let selector = super::accounts::Selector::parse(text).ok()?;
    let (name, id) = vars.selected_as();
    (!selector.selects(name, id)).then(|| (line, text.to_string()))
}

/// The raw `iam-warden/accounts` of a document, and its line.
fn accounts_annotation(root: &Node) -> Option<(&str, usize)> {
    let mut node = root;
    for key in ["metadata", "annotations", ACCOUNTS_ANNOTATION] {
        let Value::Map(entries) = &node.value else {
            return None;
        };
        node = entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)?;
    }
    match &node.value {
        Value::Scalar { text, .. } => Some((text, node.line)),
        _ => None,
    }
}

struct Decoder<'a> {
    file: &'a Path,
    /// For policy documents given as JSON strings, substituted after parsing.
    vars: &'a Variables,
    diags: Vec<Diagnostic>,
    /// Fields with an undefined variable: further errors there would only repeat it.
    unresolved: Vec<FieldPath>,
}

/// The entries of a mapping, unknown fields already reported.
struct Fields<'n> {
    line: usize,
    entries: &'n [(Key, Node)],
}

impl<'n> Fields<'n> {
    /// The value of `name`; an explicit null counts as absent.
    fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }
}

impl Decoder<'_> {
    fn error(&mut self, line: usize, path: &FieldPath, message: impl Into<String>) {
        self.error_as(super::diagnostic::rules::MANIFEST, line, path, message);
    }

    fn error_as(
        &mut self,
        rule: &'static str,
        line: usize,
        path: &FieldPath,
        message: impl Into<String>,
    ) {
        if self.unresolved.contains(path) {
            return;
        }
        self.diags.push(Diagnostic {
            file: self.file.to_path_buf(),
            line: Some(line),
            path: path.clone(),
            message: message.into(),
            rule,
        });
    }

    /// Substitutes variables in every scalar and mapping key. A scalar that held a reference
    /// becomes a string, whatever its value looks like: `012345678901` stays text. A policy
    /// document given as a JSON string is left alone here and substituted after parsing (see
    /// `documents`), so a value can never change a document's structure.
    fn resolve_vars(&mut self, node: &mut Node, path: &FieldPath, vars: &Variables) {
        match &mut node.value {
            Value::Scalar { .. } if is_document_field(path) => {}
            Value::Scalar { text, plain } => {
                if let Some(resolved) = self.resolved(node.line, path, text, vars) {
                    *text = resolved;
                    *plain = false;
                }
            }
            Value::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.resolve_vars(item, &path.index(i), vars);
                }
            }
            Value::Map(entries) => {
                for (key, value) in entries.iter_mut() {
                    let key_path = path.key(key.name.as_str());
                    if has_reference(&key.name)
                        && in_document(path)
                        && !documents::is_condition_key(path)
                    {
                        self.error(key.line, &key_path, documents::KEY_VARIABLES);
                        self.unresolved.push(key_path.clone());
                    } else if let Some(resolved) =
                        self.resolved(key.line, &key_path, &key.name, vars)
                    {
                        key.name = resolved;
                    }
                    self.resolve_vars(value, &path.key(key.name.as_str()), vars);
                }
                for (i, (key, _)) in entries.iter().enumerate() {
                    if let Some((first, _)) = entries[..i].iter().find(|(k, _)| k.name == key.name)
                    {
                        let message = format!(
                            "duplicate key `{}` once variables are substituted (first on line {})",
                            key.name, first.line
                        );
                        self.error(key.line, &path.key(key.name.as_str()), message);
                    }
                }
            }
        }
    }

    /// `text` with its variables substituted, `None` when it has none (or an error, reported).
    fn resolved(
        &mut self,
        line: usize,
        path: &FieldPath,
        text: &str,
        vars: &Variables,
    ) -> Option<String> {
        if !has_reference(text) {
            return None;
        }
        match substitute(text, vars) {
            Ok(resolved) => Some(resolved),
            Err(errors) => {
                for e in errors {
                    self.error(line, path, e);
                }
                self.unresolved.push(path.clone());
                None
            }
        }
    }

    fn mapping<'n>(
        &mut self,
        node: &'n Node,
        path: &FieldPath,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            let what = if allowed.is_empty() {
                "a mapping".to_string()
            } else {
                format!("a mapping ({})", allowed.join(", "))
            };
            self.error(
                node.line,
                path,
                format!("must be {what}, not {}", node.type_name()),
            );
            return None;
        };
        if !allowed.is_empty() {
            for (key, _) in entries {
                if !allowed.contains(&key.name.as_str()) {
                    self.error(
                        key.line,
                        &path.key(key.name.as_str()),
                        unknown_field(&key.name, allowed),
                    );
                }
            }
        }
        Some(Fields {
            line: node.line,
            entries,
        })
    }

    fn required<'n>(
        &mut self,
        fields: &Fields<'n>,
        path: &FieldPath,
        name: &str,
    ) -> Option<&'n Node> {
        let found = fields.get(name);
        if found.is_none() {
            self.error(fields.line, &path.key(name), "is required");
        }
        found
    }

    /// A scalar's text. Plain numbers and booleans are accepted as their text: a tag value
    /// `1` means "1".
    fn string(&mut self, node: &Node, path: &FieldPath) -> Option<String> {
        match &node.value {
            Value::Scalar { text, .. } if !node.is_null() => Some(text.clone()),
            _ => {
                self.error(
                    node.line,
                    path,
                    format!("must be a string, not {}", node.type_name()),
                );
                None
            }
        }
    }

    fn integer(&mut self, node: &Node, path: &FieldPath) -> Option<i64> {
        match &node.value {
            Value::Scalar { text, .. } => match core_scalar(text) {
                CoreScalar::Int(i) => Some(i),
                _ => {
                    self.error(
                        node.line,
                        path,
                        format!("must be a whole number, not `{text}`"),
                    );
                    None
                }
            },
            _ => {
                self.error(
                    node.line,
                    path,
                    format!("must be a whole number, not {}", node.type_name()),
                );
                None
            }
        }
    }

    fn check(&mut self, line: usize, path: &FieldPath, result: Result<(), String>) -> bool {
        match result {
            Ok(()) => true,
            Err(message) => {
                self.error(line, path, message);
                false
            }
        }
    }

    fn document(&mut self, root: &Node) -> Option<Resource> {
        let top = FieldPath::default();
        let fields = self.mapping(root, &top, TOP_FIELDS)?;
        let api_path = top.key("apiVersion");
        if let Some(node) = self.required(&fields, &top, "apiVersion") {
            if let Some(api) = self.string(node, &api_path) {
                if api != API_VERSION {
                    self.error(
                        node.line,
                        &api_path,
                        format!(
                            "unsupported apiVersion `{api}` (supported: {API_VERSION}); ACK's {} is read as well",
                            super::ack::ACK_API_VERSION
                        ),
                    );
                }
            }
        }
        let kind = self.kind(&fields, &top);
        let (name, annotations) = self.metadata(&fields, &top, kind);
        // A missing name is already reported; the spec is still checked for its own errors.
        let name = name.unwrap_or_default();
        let spec_path = top.key("spec");
        let spec = self.required(&fields, &top, "spec")?;
        let origin = Origin {
            file: self.file.to_path_buf(),
            line: root.line,
            k8s: None,
        };
        match kind? {
            Kind::Role => self
                .role(spec, &spec_path, name, annotations, origin)
                .map(Resource::Role),
            Kind::Policy => self
                .policy(spec, &spec_path, name, annotations, origin)
                .map(Resource::Policy),
            Kind::InstanceProfile => self
                .instance_profile(spec, &spec_path, name, annotations, origin)
                .map(Resource::InstanceProfile),
            Kind::OpenIDConnectProvider => self
                .oidc_provider(spec, &spec_path, name, annotations, origin)
                .map(Resource::OpenIDConnectProvider),
        }
    }

    fn kind(&mut self, fields: &Fields, top: &FieldPath) -> Option<Kind> {
        let path = top.key("kind");
        let node = self.required(fields, top, "kind")?;
        let text = self.string(node, &path)?;
        match text.as_str() {
            "Role" => Some(Kind::Role),
            "Policy" => Some(Kind::Policy),
            "InstanceProfile" => Some(Kind::InstanceProfile),
            "OpenIDConnectProvider" => Some(Kind::OpenIDConnectProvider),
            other => {
                let hint = closest(other, Kind::NAMES)
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                self.error(
                    node.line,
                    &path,
                    format!(
                        "unknown kind `{other}`{hint} (allowed: {})",
                        Kind::NAMES.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn metadata(
        &mut self,
        fields: &Fields,
        top: &FieldPath,
        kind: Option<Kind>,
    ) -> (Option<String>, BTreeMap<String, String>) {
        let path = top.key("metadata");
        let mut annotations = BTreeMap::new();
        let Some(node) = self.required(fields, top, "metadata") else {
            return (None, annotations);
        };
        let Some(meta) = self.mapping(node, &path, METADATA_FIELDS) else {
            return (None, annotations);
        };
        let name_path = path.key("name");
        let name_node = self.required(&meta, &path, "name");
        let name = name_node.and_then(|n| self.string(n, &name_path));
        if let (Some(name), Some(node), Some(kind)) = (&name, name_node, kind) {
            let max = match kind {
                Kind::Role => limits::ROLE_NAME_MAX,
                Kind::Policy => limits::POLICY_NAME_MAX,
                Kind::InstanceProfile => limits::INSTANCE_PROFILE_NAME_MAX,
                Kind::OpenIDConnectProvider => limits::OIDC_PROVIDER_NAME_MAX,
            };
            self.check(node.line, &name_path, limits::name(name, max));
        }
        if let Some(node) = meta.get("annotations") {
            let ann_path = path.key("annotations");
            annotations = self.string_map(node, &ann_path);
            for key in annotations.keys() {
                let ours = key.to_ascii_lowercase().starts_with("iam-warden/");
                if ours && !ANNOTATIONS.contains(&key.as_str()) {
                    let line = node.line_at(&FieldPath::default().key(key.as_str()));
                    self.error(
                        line,
                        &ann_path.key(key.as_str()),
                        unknown_field(key, ANNOTATIONS),
                    );
                }
            }
            if let Some(v) = annotations.get(ACCOUNTS_ANNOTATION) {
                if let Err(e) = super::accounts::Selector::parse(v) {
                    let line = node.line_at(&FieldPath::default().key(ACCOUNTS_ANNOTATION));
                    self.error(line, &ann_path.key(ACCOUNTS_ANNOTATION), e);
                }
            }
            for (key, allowed) in [
                (ADOPT_ANNOTATION, &["true", "false"][..]),
                (PRUNE_ANNOTATION, &["never", "allowed"][..]),
                (MODE_ANNOTATION, &["observe", "enforce"][..]),
            ] {
                if let Some(v) = annotations.get(key) {
                    if !allowed.contains(&v.as_str()) {
                        let line = node.line_at(&FieldPath::default().key(key));
                        let quoted: Vec<String> =
                            allowed.iter().map(|a| format!("\"{a}\"")).collect();
                        self.error(
                            line,
                            &ann_path.key(key),
                            format!("must be {}, not `{v}`", quoted.join(" or ")),
                        );
                    }
                }
            }
        }
        (name, annotations)
    }

    /// A mapping of string to string (tags, annotations).
    fn string_map(&mut self, node: &Node, path: &FieldPath) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(fields) = self.mapping(node, path, &[]) else {
            return out;
        };
        for (key, value) in fields.entries {
            let p = path.key(key.name.as_str());
            let text = if value.is_null() {
                Some(String::new())
            } else {
                self.string(value, &p)
            };
            if let Some(text) = text {
                out.insert(key.name.clone(), text);
            }
        }
        out
    }

    fn tags(&mut self, node: &Node, path: &FieldPath) -> BTreeMap<String, String> {
        let tags = self.string_map(node, path);
        if tags.len() > limits::USER_TAGS_MAX {
            self.error(
                node.line,
                path,
                format!(
                    "{} tags declared; at most {} are allowed (IAM allows 50 and iam-warden adds its owner tag)",
                    tags.len(),
                    limits::USER_TAGS_MAX
                ),
            );
        }
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for (k, v) in &tags {
            let p = path.key(k.as_str());
            let line = node.line_at(&FieldPath::default().key(k.as_str()));
            self.check(line, &p, limits::tag_key(k));
            self.check(line, &p, limits::tag_value(v));
            // IAM tag keys are case-insensitive: `Team` and `team` are one key.
            if let Some(other) = seen.insert(k.to_lowercase(), k) {
                self.error(
                    line,
                    &p,
                    format!(
                        "tag key `{k}` is the same key as `{other}` to IAM (tag keys ignore case)"
                    ),
                );
            }
        }
        tags
    }

    fn common_path(&mut self, fields: &Fields, spec: &FieldPath) -> Option<String> {
        let Some(node) = fields.get("path") else {
            return Some("/".into());
        };
        let p = spec.key("path");
        let value = self.string(node, &p)?;
        self.check(node.line, &p, limits::path(&value))
            .then_some(value)
    }

    fn description(&mut self, fields: &Fields, spec: &FieldPath) -> Option<String> {
        let Some(node) = fields.get("description") else {
            return Some(String::new());
        };
        let p = spec.key("description");
        let value = self.string(node, &p)?;
        self.check(node.line, &p, limits::description(&value))
            .then_some(value)
    }

    fn role(
        &mut self,
        spec: &Node,
        path: &FieldPath,
        name: String,
        annotations: BTreeMap<String, String>,
        origin: Origin,
    ) -> Option<DesiredRole> {
        let fields = self.mapping(spec, path, ROLE_FIELDS)?;
        let role_path = self.common_path(&fields, path);
        let description = self.description(&fields, path);
        let max_session_duration = match fields.get("maxSessionDuration") {
            None => Some(DEFAULT_MAX_SESSION),
            Some(node) => {
                let p = path.key("maxSessionDuration");
                self.integer(node, &p)
                    .filter(|v| self.check(node.line, &p, limits::max_session(*v)))
                    .and_then(|v| i32::try_from(v).ok())
            }
        };
        let permissions_boundary = match fields.get("permissionsBoundary") {
            None => Some(None),
            Some(node) => self
                .policy_ref(node, &path.key("permissionsBoundary"))
                .map(Some),
        };
        let assume_role_policy = self.sized_document(
            &fields,
            path,
            "assumeRolePolicy",
            PolicyKind::Trust,
            limits::TRUST_POLICY_SIZE_MAX,
        );
        let managed_policies = match fields.get("managedPolicies") {
            None => Some(Vec::new()),
            Some(node) => self.managed_policies(node, &path.key("managedPolicies")),
        };
        let inline_policies = match fields.get("inlinePolicies") {
            None => Some(BTreeMap::new()),
            Some(node) => self.inline_policies(node, &path.key("inlinePolicies")),
        };
        let tags = fields
            .get("tags")
            .map(|n| self.tags(n, &path.key("tags")))
            .unwrap_or_default();
        Some(DesiredRole {
            name,
            path: role_path?,
            description: description?,
            max_session_duration: max_session_duration?,
            permissions_boundary: permissions_boundary?,
            assume_role_policy: assume_role_policy?,
            managed_policies: managed_policies?,
            inline_policies: inline_policies?,
            tags,
            annotations,
            origin,
        })
    }

    fn policy(
        &mut self,
        spec: &Node,
        path: &FieldPath,
        name: String,
        annotations: BTreeMap<String, String>,
        origin: Origin,
    ) -> Option<DesiredPolicy> {
        let fields = self.mapping(spec, path, POLICY_FIELDS)?;
        let policy_path = self.common_path(&fields, path);
        let description = self.description(&fields, path);
        let document = self.sized_document(
            &fields,
            path,
            "document",
            PolicyKind::Identity,
            limits::MANAGED_POLICY_SIZE_MAX,
        );
        let tags = fields
            .get("tags")
            .map(|n| self.tags(n, &path.key("tags")))
            .unwrap_or_default();
        Some(DesiredPolicy {
            name,
            path: policy_path?,
            description: description?,
            document: document?,
            tags,
            annotations,
            origin,
        })
    }
}

impl Decoder<'_> {
    fn instance_profile(
        &mut self,
        spec: &Node,
        path: &FieldPath,
        name: String,
        annotations: BTreeMap<String, String>,
        origin: Origin,
    ) -> Option<DesiredInstanceProfile> {
        let fields = self.mapping(spec, path, INSTANCE_PROFILE_FIELDS)?;
        let profile_path = self.common_path(&fields, path);
        let role = match fields.get("role") {
            None => Some(None),
            Some(node) => self.role_ref(node, &path.key("role")).map(Some),
        };
        let tags = fields
            .get("tags")
            .map(|n| self.tags(n, &path.key("tags")))
            .unwrap_or_default();
        Some(DesiredInstanceProfile {
            name,
            path: profile_path?,
            role: role?,
            tags,
            annotations,
            origin,
        })
    }

    fn oidc_provider(
        &mut self,
        spec: &Node,
        path: &FieldPath,
        name: String,
        annotations: BTreeMap<String, String>,
        origin: Origin,
    ) -> Option<DesiredOidcProvider> {
        let fields = self.mapping(spec, path, OIDC_PROVIDER_FIELDS)?;
        let url = self.required(&fields, path, "url").and_then(|node| {
            let p = path.key("url");
            let url = self.string(node, &p)?;
            self.check(node.line, &p, limits::oidc_url(&url))
                .then_some(url)
        });
        let client_ids = match fields.get("clientIDs") {
            None => Some(Default::default()),
            Some(node) => self.string_set(
                node,
                &path.key("clientIDs"),
                limits::OIDC_CLIENT_IDS_MAX,
                limits::client_id,
            ),
        };
        let thumbprints = match fields.get("thumbprints") {
            None => Some(None),
            Some(node) => self
                .string_set(
                    node,
                    &path.key("thumbprints"),
                    limits::OIDC_THUMBPRINTS_MAX,
                    limits::thumbprint,
                )
                // IAM compares thumbprints as hex: case is not a difference.
                .map(|set| Some(set.into_iter().map(|t| t.to_ascii_lowercase()).collect())),
        };
        let tags = fields
            .get("tags")
            .map(|n| self.tags(n, &path.key("tags")))
            .unwrap_or_default();
        Some(DesiredOidcProvider {
            name,
            url: url?,
            client_ids: client_ids?,
            thumbprints: thumbprints?,
            tags,
            annotations,
            origin,
        })
    }

    /// A list of distinct strings, at most `max`, each checked by `valid`.
    fn string_set(
        &mut self,
        node: &Node,
        path: &FieldPath,
        max: usize,
        valid: fn(&str) -> Result<(), String>,
    ) -> Option<std::collections::BTreeSet<String>> {
        let Value::Seq(items) = &node.value else {
            self.error(
                node.line,
                path,
                format!("must be a list of strings, not {}", node.type_name()),
            );
            return None;
        };
        let mut out = std::collections::BTreeSet::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let p = path.index(i);
            let Some(text) = self.string(item, &p) else {
                ok = false;
                continue;
            };
            ok &= self.check(item.line, &p, valid(&text));
            if !out.insert(text.clone()) {
                self.error(item.line, &p, format!("`{text}` is listed twice"));
                ok = false;
            }
        }
        if items.len() > max {
            self.error(
                node.line,
                path,
                format!("{} listed; IAM allows at most {max}", items.len()),
            );
            ok = false;
        }
        ok.then_some(out)
    }

    /// A role's name, or `{ref: NAME}`.
    fn role_ref(&mut self, node: &Node, path: &FieldPath) -> Option<RoleRef> {
        let (name_node, p, make): (&Node, FieldPath, fn(String) -> RoleRef) = match &node.value {
            Value::Map(_) => {
                let fields = self.mapping(node, path, &["ref"])?;
                (
                    self.required(&fields, path, "ref")?,
                    path.key("ref"),
                    RoleRef::Ref,
                )
            }
            Value::Scalar { .. } => (node, path.clone(), RoleRef::Name),
            Value::Seq(_) => {
                self.error(
                    node.line,
                    path,
                    "must be one role's name or {ref: NAME}, not a list (IAM allows one role per instance profile)",
                );
                return None;
            }
        };
        let name = self.string(name_node, &p)?;
        self.check(
            name_node.line,
            &p,
            limits::name(&name, limits::ROLE_NAME_MAX),
        )
        .then(|| make(name))
    }
}

/// Whether `path` is inside a policy document.
fn in_document(path: &FieldPath) -> bool {
    (1..=path.0.len()).any(|n| is_document_field(&FieldPath(path.0[..n].to_vec())))
}

/// Fields that hold a policy document, which may be a string of JSON: `spec.assumeRolePolicy`,
/// `spec.document` and each `spec.inlinePolicies.NAME`.
fn is_document_field(path: &FieldPath) -> bool {
    use crate::fieldpath::Seg;
    match path.0.as_slice() {
        [Seg::Key(spec), Seg::Key(field)] => {
            spec == "spec" && (field == "assumeRolePolicy" || field == "document")
        }
        [Seg::Key(spec), Seg::Key(field), Seg::Key(_)] => {
            spec == "spec" && field == "inlinePolicies"
        }
        _ => false,
    }
}
