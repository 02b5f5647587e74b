//! The desired state, loaded from a directory of manifests.
//!
//! `files` finds and reads them, `yaml` parses with lines and limits, `vars` resolves
//! `${var.NAME}`, `decode` turns each document into a typed resource, and [`assemble`] checks
//! what needs every file at once (duplicates, refs); `schema` describes the format for
//! editors. Nothing here talks to AWS.

pub mod accounts;
pub mod ack;
pub mod danger;
mod decode;
pub mod diagnostic;
pub mod files;
pub mod limits;
mod model;
pub mod schema;
mod vars;
pub mod yaml;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use diagnostic::Diagnostic;
pub use files::FilesError;
pub use model::*;
pub use vars::{ACCOUNT_BUILTINS, BUILTINS, Builtins, Variables, VarsError};

/// The field names the decoder accepts, per level (read-only; the schema is tested against them).
pub mod fields {
    pub use super::decode::{
        INSTANCE_PROFILE_FIELDS, METADATA_FIELDS, OIDC_PROVIDER_FIELDS, POLICY_FIELDS, ROLE_FIELDS,
        TOP_FIELDS,
    };
}

use crate::fieldpath::FieldPath;

/// Rules every decoded resource must keep besides the format's own (the guardrails), handed
/// in by the caller: the loader knows nothing of where they come from.
pub trait ResourceRules {
    /// Every rule `resource` breaks, at the field that breaks it: (field, rule id, message).
    fn violations(&self, resource: &Resource) -> Vec<(FieldPath, &'static str, String)>;

    /// Equal for rules that judge alike: a file parsed and checked with rules of the same
    /// identity is reused by a reload instead of being checked again.
    fn identity(&self) -> String;
}

/// No rules besides the format's own.
pub struct NoRules;

impl ResourceRules for NoRules {
    fn violations(&self, _: &Resource) -> Vec<(FieldPath, &'static str, String)> {
        Vec::new()
    }

    fn identity(&self) -> String {
        String::new()
    }
}

/// What one file declared, or why it could not be used.
#[derive(Clone, Debug, PartialEq)]
pub struct FileReport {
    pub path: PathBuf,
    /// Shared: the daemon's parse cache and its last good state hold the same list.
    pub resources: Arc<Vec<Resource>>,
    pub diagnostics: Vec<Diagnostic>,
    /// Documents left for other accounts by their `iam-warden/accounts`: (its line, its value).
    pub elsewhere: Vec<(usize, String)>,
}

impl FileReport {
    pub fn is_valid(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

/// Reads and decodes one file. A file with any error declares nothing (its valid documents
/// included), so that a half-broken file never looks like the removal of the other half.
pub fn load_file(path: &Path, vars: &Variables) -> FileReport {
    load_file_guarded(path, vars, &NoRules)
}

/// [`load_file`], where a resource that breaks a guardrail is an error like any other.
pub fn load_file_guarded(
    path: &Path,
    vars: &Variables,
    guardrails: &dyn ResourceRules,
) -> FileReport {
    load_text(
        path,
        files::read(path),
        vars,
        guardrails,
        &mut yaml::Budget::default(),
    )
}

/// [`load_file`] on `text` as read from `path`, within a load's `budget`.
fn load_text(
    path: &Path,
    text: Result<String, String>,
    vars: &Variables,
    guardrails: &dyn ResourceRules,
    budget: &mut yaml::Budget,
) -> FileReport {
    let mut report = FileReport {
        path: path.to_path_buf(),
        resources: Arc::default(),
        diagnostics: Vec::new(),
        elsewhere: Vec::new(),
    };
    let mut resources = Vec::new();
    let text = match text {
        Ok(text) => text,
        Err(message) => {
            report.diagnostics.push(Diagnostic::file(path, message));
            return report;
        }
    };
    let (docs, syntax_error) = yaml::parse_documents_within(&text, budget);
    let mut unchecked = false;
    for doc in docs {
        if report.diagnostics.len() >= diagnostic::MAX_PER_FILE {
            unchecked = true;
            break;
        }
        let Some(root) = doc.root else { continue };
        let (root, ack) = if ack::is_ack(&root) {
            match ack::to_native(&root) {
                Ok(mut native) => (std::mem::replace(&mut native.node, root), Some(native)),
                Err(problems) => {
                    report.diagnostics.extend(problems.into_iter().map(
                        |(line, field, message)| Diagnostic {
                            file: path.to_path_buf(),
                            line: Some(line),
                            path: field,
                            message,
                            rule: diagnostic::rules::ACK,
                        },
                    ));
                    continue;
                }
            }
        } else {
            (root, None)
        };
        if let Some(left) = decode::left_for_other_accounts(&root, vars) {
            report.elsewhere.push(left);
            continue;
        }
        let (mut resource, mut diags) = decode::decode_document(path, root, vars, guardrails);
        if let Some(native) = ack {
            // Errors name ACK's fields, as the file has them.
            for d in &mut diags {
                d.path = native.ack_path(&d.path);
            }
            if let Some(r) = &mut resource {
                r.origin_mut().k8s = Some(native.k8s);
            }
        }
        resources.extend(resource);
        report.diagnostics.extend(diags);
    }
    diagnostic::limit_per_file(&mut report.diagnostics, path, unchecked);
    if let Some(e) = syntax_error {
        report.diagnostics.push(Diagnostic {
            file: path.to_path_buf(),
            line: (e.line > 0).then_some(e.line),
            path: e.path,
            message: e.message,
            rule: diagnostic::rules::YAML_SYNTAX,
        });
    }
    if report.diagnostics.is_empty() {
        report.resources = Arc::new(resources);
    }
    report
}

/// Every manifest file below `dir`, each loaded within one budget (see `yaml`), and each entry
/// that was refused (a link out of DIR, …) as a file with that error, sorted by path.
pub fn load_dir(dir: &Path, vars: &Variables) -> Result<Vec<FileReport>, FilesError> {
    load_dir_guarded(dir, vars, &NoRules)
}

/// [`load_dir`] with guardrails.
pub fn load_dir_guarded(
    dir: &Path,
    vars: &Variables,
    guardrails: &dyn ResourceRules,
) -> Result<Vec<FileReport>, FilesError> {
    // A new cache never answers "unchanged".
    let reports = load_dir_cached(dir, vars, guardrails, &mut ParseCache::default())?;
    Ok(reports.unwrap_or_default())
}

/// What a reload of DIR can reuse: each valid file's report, by path, with the digest of the
/// text it was read from, its stamp, the nodes it built, and the values and guardrails it was
/// checked with. The daemon reloads DIR at every resync; a file whose stamp has not moved is
/// not even read, and only what changed is parsed again.
#[derive(Default)]
pub struct ParseCache {
    inputs: Option<(Variables, String)>,
    files: HashMap<PathBuf, Parsed>,
    /// Every file of the last load, valid or not.
    listed: Vec<PathBuf>,
}

struct Parsed {
    /// SHA-256 of the text it was parsed from.
    digest: [u8; 32],
    /// The file's stamp when read, and when: an unmoved, settled stamp skips the read.
    stamp: files::Stamp,
    read_at: std::time::SystemTime,
    nodes: usize,
    report: FileReport,
}

/// A stamp settled this long before the read is trusted to mean an unchanged text.
const STAMP_MARGIN: std::time::Duration = std::time::Duration::from_secs(2);

/// What a reload knows of one file's text.
enum Text {
    /// Its stamp has not moved since it was parsed: not read again.
    Unmoved,
    Read(Result<String, String>),
}

/// Whether `f`'s text is the one `cached` parsed.
fn same_text(cached: &HashMap<PathBuf, Parsed>, f: &files::ManifestFile, text: &Text) -> bool {
    match (text, cached.get(&f.path)) {
        (Text::Unmoved, Some(_)) => true,
        (Text::Read(Ok(t)), Some(p)) => p.digest == digest(t),
        _ => false,
    }
}

fn digest(text: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes()).into()
}

/// [`load_dir_guarded`], reusing what `cache` holds for files whose text is unchanged (and
/// updating it); `None` when nothing changed since the last load with this cache (the same
/// files, texts, values and guardrails, every file valid). The result is the same as reading
/// every file again: a reused file counts its nodes against the load's budget as it did when
/// it was read.
pub fn load_dir_cached(
    dir: &Path,
    vars: &Variables,
    guardrails: &dyn ResourceRules,
    cache: &mut ParseCache,
) -> Result<Option<Vec<FileReport>>, FilesError> {
    let rules = guardrails.identity();
    let same_inputs = matches!(&cache.inputs, Some((v, g)) if v == vars && *g == rules);
    if !same_inputs {
        cache.files.clear();
        cache.inputs = Some((vars.clone(), rules));
    }
    let listing = files::find(dir)?;
    let read_at = std::time::SystemTime::now();
    let texts: Vec<Text> = listing
        .files
        .iter()
        .map(|f| match cache.files.get(&f.path) {
            Some(p) if p.stamp == f.stamp && p.stamp.settled_before(p.read_at, STAMP_MARGIN) => {
                Text::Unmoved
            }
            _ => Text::Read(f.read()),
        })
        .collect();
    let unchanged = same_inputs
        && listing.refused.is_empty()
        && listing.files.iter().map(|f| &f.path).eq(&cache.listed)
        && listing
            .files
            .iter()
            .zip(&texts)
            .all(|(f, t)| same_text(&cache.files, f, t));
    if unchanged {
        for (f, t) in listing.files.iter().zip(&texts) {
            if let (Text::Read(_), Some(p)) = (t, cache.files.get_mut(&f.path)) {
                (p.stamp, p.read_at) = (f.stamp, read_at);
            }
        }
        return Ok(None);
    }
    let mut budget = yaml::Budget::default();
    let mut parsed = HashMap::new();
    let mut reports = Vec::with_capacity(listing.files.len());
    for (f, text) in listing.files.iter().zip(texts) {
        let same = same_text(&cache.files, f, &text);
        let reused = match cache.files.remove(&f.path) {
            Some(p) if same && budget.charge(p.nodes) => Some(p),
            _ => None,
        };
        let text = match (&reused, text) {
            (None, Text::Unmoved) => f.read(),
            (_, Text::Read(t)) => t,
            (Some(_), Text::Unmoved) => Ok(String::new()),
        };
        let entry = match (reused, text) {
            (Some(p), _) => Parsed {
                stamp: f.stamp,
                read_at,
                ..p
            },
            (None, Err(e)) => {
                reports.push(load_text(&f.path, Err(e), vars, guardrails, &mut budget));
                continue;
            }
            (None, Ok(t)) => {
                let before = budget.used();
                let digest = digest(&t);
                let report = load_text(&f.path, Ok(t), vars, guardrails, &mut budget);
                let nodes = budget.used() - before;
                Parsed {
                    digest,
                    stamp: f.stamp,
                    read_at,
                    nodes,
                    report,
                }
            }
        };
        reports.push(entry.report.clone());
        // An invalid file is read again next time: its errors may depend on the others
        // (the load's budget).
        if entry.report.is_valid() {
            parsed.insert(f.path.clone(), entry);
        }
    }
    cache.files = parsed;
    cache.listed = listing.files.iter().map(|f| f.path.clone()).collect();
    reports.extend(listing.refused.into_iter().map(|(path, why)| FileReport {
        diagnostics: vec![Diagnostic::file(&path, why.to_string())],
        path,
        resources: Arc::default(),
        elsewhere: Vec::new(),
    }));
    reports.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Some(reports))
}

/// Combines the resources of valid files into one desired state, reporting what only shows
/// across files: a kind and name declared twice, a `ref` to a Policy nobody declares.
pub fn assemble(resources: impl IntoIterator<Item = Resource>) -> (DesiredState, Vec<Diagnostic>) {
    let mut state = DesiredState::default();
    let mut diags = Vec::new();
    let duplicate = |r: &Resource, first: &(String, Origin)| Diagnostic {
        file: r.origin().file.clone(),
        line: Some(r.origin().line),
        path: FieldPath::default().key("metadata").key("name"),
        message: if first.0 == r.name() {
            format!(
                "{} `{}` is declared twice (also at {})",
                r.kind(),
                r.name(),
                first.1
            )
        } else {
            format!(
                "{} `{}` is declared twice (also at {}, as `{}`: IAM names ignore case)",
                r.kind(),
                r.name(),
                first.1,
                first.0
            )
        },
        rule: diagnostic::rules::REFERENCE,
    };
    // IAM names ignore case: `MyRole` and `myrole` are one role.
    let mut seen: BTreeMap<(Kind, String), (String, Origin)> = BTreeMap::new();
    for r in resources {
        let key = (r.kind(), r.name().to_lowercase());
        if let Some(first) = seen.get(&key) {
            diags.push(duplicate(&r, first));
            continue;
        }
        seen.insert(key, (r.name().to_string(), r.origin().clone()));
        match r {
            Resource::Role(role) => {
                state.roles.insert(role.name.clone(), role);
            }
            Resource::Policy(policy) => {
                state.policies.insert(policy.name.clone(), policy);
            }
            Resource::InstanceProfile(profile) => {
                state
                    .instance_profiles
                    .insert(profile.name.clone(), profile);
            }
            Resource::OpenIDConnectProvider(provider) => {
                state.oidc_providers.insert(provider.name.clone(), provider);
            }
        }
    }
    diags.extend(one_provider_per_url(&mut state));
    diags.extend(resolve_k8s_refs(&mut state));
    diags.extend(dangling_refs(&state));
    diags.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    (state, diags)
}

/// IAM identifies a provider by its url (as written: IAM keeps it so): two manifests for one
/// url are one provider declared twice. Neither is used, and both files are named, so that
/// neither a new file nor an old one can take the provider over (the daemon keeps what each
/// file declared before).
fn one_provider_per_url(state: &mut DesiredState) -> Vec<Diagnostic> {
    let mut by_url: BTreeMap<&str, Vec<&DesiredOidcProvider>> = BTreeMap::new();
    for p in state.oidc_providers.values() {
        by_url.entry(p.host_path()).or_default().push(p);
    }
    let mut diags = Vec::new();
    let mut twins = Vec::new();
    for same in by_url.values().filter(|s| s.len() > 1) {
        for p in same {
            let others: Vec<String> = same
                .iter()
                .filter(|o| o.name != p.name)
                .map(|o| format!("`{}` at {}", o.name, o.origin))
                .collect();
            diags.push(Diagnostic {
                file: p.origin.file.clone(),
                line: Some(p.origin.line),
                path: FieldPath::default().key("spec").key("url"),
                message: format!(
                    "OpenIDConnectProvider `{}` has the url of {}: IAM holds one provider per url",
                    p.name,
                    others.join(", ")
                ),
                rule: diagnostic::rules::REFERENCE,
            });
            twins.push(p.name.clone());
        }
    }
    for name in twins {
        state.oidc_providers.remove(&name);
    }
    diags
}

/// ACK objects refer to each other by Kubernetes name (`metadata.name`, within the referring
/// object's namespace), which need not be the IAM name: an ACK object's `{ref: NAME}` means
/// the ACK object of that name there, and only failing one, a declared IAM name. Two ACK
/// objects of one kind, namespace and name are an error.
fn resolve_k8s_refs(state: &mut DesiredState) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut index = ack::K8sIndex::default();
    let objects = state
        .policies
        .values()
        .map(|p| ("Policy", &p.name, &p.origin))
        .chain(state.roles.values().map(|r| ("Role", &r.name, &r.origin)));
    for (kind, iam, origin) in objects {
        let Some(k8s) = &origin.k8s else { continue };
        if let Some(first) = index.insert(kind, k8s, iam) {
            diags.push(Diagnostic {
                file: origin.file.clone(),
                line: Some(origin.line),
                path: FieldPath::default().key("metadata").key("name"),
                message: format!(
                    "ACK {kind} `{}` in namespace `{}` is declared twice (also as `{first}`)",
                    k8s.name, k8s.namespace
                ),
                rule: diagnostic::rules::REFERENCE,
            });
        }
    }
    let namespace = |o: &Origin| o.k8s.as_ref().map(|k| k.namespace.clone());
    for role in state.roles.values_mut() {
        let Some(ns) = namespace(&role.origin) else {
            continue;
        };
        let resolve = |r: &mut PolicyRef| {
            if let PolicyRef::Ref(name) = r {
                if let Some(iam) = index.resolve("Policy", &ns, name) {
                    *name = iam.to_string();
                }
            }
        };
        role.managed_policies.iter_mut().for_each(resolve);
        role.permissions_boundary.iter_mut().for_each(resolve);
        role.managed_policies.sort();
    }
    for profile in state.instance_profiles.values_mut() {
        let Some(ns) = namespace(&profile.origin) else {
            continue;
        };
        if let Some(RoleRef::Ref(name)) = &mut profile.role {
            if let Some(iam) = index.resolve("Role", &ns, name) {
                *name = iam.to_string();
            }
        }
    }
    diags
}

fn dangling_refs(state: &DesiredState) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    // (where, the field, the ref as written, the kind it names, its name)
    let mut refs: Vec<(&Origin, &str, &str, Kind, String)> = Vec::new();
    for role in state.roles.values() {
        let fields = role
            .managed_policies
            .iter()
            .map(|r| ("managedPolicies", r))
            .chain(
                role.permissions_boundary
                    .iter()
                    .map(|r| ("permissionsBoundary", r)),
            );
        for (field, r) in fields {
            if let PolicyRef::Ref(name) = r {
                refs.push((&role.origin, field, "", Kind::Policy, name.clone()));
            }
        }
        for name in role.provider_refs() {
            let (kind, written) = (Kind::OpenIDConnectProvider, "Federated: ");
            refs.push((&role.origin, "assumeRolePolicy", written, kind, name));
        }
    }
    for profile in state.instance_profiles.values() {
        if let Some(RoleRef::Ref(name)) = &profile.role {
            refs.push((&profile.origin, "role", "", Kind::Role, name.clone()));
        }
    }
    for (origin, field, written, kind, name) in refs {
        if state.declared_name(kind, &name).is_some() {
            continue;
        }
        let article = if kind == Kind::OpenIDConnectProvider {
            "an"
        } else {
            "a"
        };
        diags.push(Diagnostic {
            file: origin.file.clone(),
            line: Some(origin.line),
            path: FieldPath::default().key("spec").key(field),
            message: format!(
                "{written}{{ref: {name}}} names {article} {kind} that no manifest declares{}",
                declared_of(state, kind)
            ),
            rule: diagnostic::rules::REFERENCE,
        });
    }
    diags
}

/// ` (declared: A, B)`: the names declared of `kind`, if any.
fn declared_of(state: &DesiredState, kind: Kind) -> String {
    let names: Vec<&str> = match kind {
        Kind::Policy => state.policies.keys().map(String::as_str).collect(),
        Kind::Role => state.roles.keys().map(String::as_str).collect(),
        Kind::InstanceProfile => state.instance_profiles.keys().map(String::as_str).collect(),
        Kind::OpenIDConnectProvider => state.oidc_providers.keys().map(String::as_str).collect(),
    };
    match names.is_empty() {
        true => String::new(),
        false => format!(" (declared: {})", names.join(", ")),
    }
}

/// The result of loading a whole directory for the one-shot commands.
#[derive(Debug)]
pub struct Loaded {
    pub state: DesiredState,
    pub diagnostics: Vec<Diagnostic>,
    pub files: usize,
    /// Documents left for other accounts: (file, line, their `iam-warden/accounts`).
    pub elsewhere: Vec<(PathBuf, usize, String)>,
}

/// Loads `dir` and assembles it; any diagnostic means the state must not be acted on.
pub fn load(dir: &Path, vars: &Variables) -> Result<Loaded, FilesError> {
    load_guarded(dir, vars, &NoRules)
}

/// [`load`] with guardrails.
pub fn load_guarded(
    dir: &Path,
    vars: &Variables,
    guardrails: &dyn ResourceRules,
) -> Result<Loaded, FilesError> {
    let reports = load_dir_guarded(dir, vars, guardrails)?;
    let mut diagnostics: Vec<Diagnostic> = reports
        .iter()
        .flat_map(|r| r.diagnostics.iter().cloned())
        .collect();
    let files = reports.len();
    let elsewhere = reports
        .iter()
        .flat_map(|r| {
            r.elsewhere
                .iter()
                .map(|(line, selector)| (r.path.clone(), *line, selector.clone()))
        })
        .collect();
    // The resources move into the state: one copy of 10,000 roles, not two.
    let (state, cross) = assemble(
        reports
            .into_iter()
            .flat_map(|r| Arc::try_unwrap(r.resources).unwrap_or_else(|shared| (*shared).clone())),
    );
    diagnostics.extend(cross);
    Ok(Loaded {
        state,
        diagnostics,
        files,
        elsewhere,
    })
}
