//! The daemon's desired state, kept per file so that bad input never hurts.
//!
//! A file that stops parsing or validating keeps declaring what it declared when it was last
//! good; its error is kept (for /status) and logged once per change of the file. A file that
//! is deleted declares nothing any more. A DIR that cannot be read changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::guardrails::Guardrails;
use crate::manifest::{self, DesiredState, Diagnostic, FilesError, Kind, Resource, Variables};

/// A resource's identity in the daemon: its kind and its name as declared (`Role/app`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub kind: Kind,
    pub name: String,
}

impl Key {
    pub fn new(kind: Kind, name: impl Into<String>) -> Key {
        Key {
            kind,
            name: name.into(),
        }
    }
}

/// `Role/app`: how logs, /status and metrics name a resource.
impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

pub fn key_of(r: &Resource) -> Key {
    Key::new(r.kind(), r.name())
}

#[derive(Default)]
pub struct DesiredStore {
    files: BTreeMap<PathBuf, FileState>,
    /// Shared with the daemon's current generation, not copied into it.
    state: Arc<DesiredState>,
    /// Errors that need every file at once (duplicates, dangling refs).
    cross_errors: Vec<Diagnostic>,
    /// Files as last parsed: a reload at every resync parses only what changed.
    parsed: manifest::ParseCache,
}

#[derive(Default)]
struct FileState {
    /// Shared with the parse cache.
    last_good: Arc<Vec<Resource>>,
    errors: Vec<Diagnostic>,
    /// Documents of the last good read that are for other accounts.
    elsewhere: usize,
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq)]
pub struct Reloaded {
    /// Keys whose resolved spec changed, appeared or disappeared.
    pub changed: Vec<Key>,
    /// Diagnostics that are new since the previous reload (to log once).
    pub new_errors: Vec<Diagnostic>,
}

impl DesiredStore {
    pub fn state(&self) -> &DesiredState {
        &self.state
    }

    pub fn shared_state(&self) -> Arc<DesiredState> {
        Arc::clone(&self.state)
    }

    /// Every current error: per file, then across files.
    pub fn errors(&self) -> Vec<Diagnostic> {
        self.files
            .values()
            .flat_map(|f| f.errors.iter().cloned())
            .chain(self.cross_errors.iter().cloned())
            .collect()
    }

    /// Manifest files read by the last successful reload.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Documents DIR holds for other accounts of the accounts file.
    pub fn elsewhere_count(&self) -> usize {
        self.files.values().map(|f| f.elsewhere).sum()
    }

    pub fn get(&self, key: &Key) -> Option<Resource> {
        get(&self.state, key)
    }

    pub fn keys(&self) -> Vec<Key> {
        keys(&self.state)
    }

    /// Reads DIR again. On an unreadable DIR nothing changes and the error is returned. A
    /// file breaking a guardrail is invalid like any other.
    pub fn reload(
        &mut self,
        dir: &Path,
        vars: &Variables,
        guardrails: &Guardrails,
    ) -> Result<Reloaded, FilesError> {
        match manifest::load_dir_cached(dir, vars, guardrails, &mut self.parsed)? {
            Some(reports) => Ok(self.update(reports)),
            // Nothing to fold in: the state stands, and no error is new.
            None => Ok(Reloaded::default()),
        }
    }

    /// Folds freshly loaded file reports into the store.
    pub fn update(&mut self, reports: Vec<manifest::FileReport>) -> Reloaded {
        let before_errors: BTreeSet<String> =
            self.errors().iter().map(ToString::to_string).collect();
        let mut files = BTreeMap::new();
        // Entries that could not be read at all (a subdirectory made unreadable): the files
        // last read below them keep their last good state, as an invalid file does.
        let unreadable: Vec<std::path::PathBuf> = reports
            .iter()
            .filter(|r| !r.is_valid() && r.resources.is_empty())
            .map(|r| r.path.clone())
            .collect();
        for report in reports {
            let previous = self.files.remove(&report.path);
            let state = if report.is_valid() {
                FileState {
                    last_good: report.resources,
                    errors: Vec::new(),
                    elsewhere: report.elsewhere.len(),
                }
            } else {
                let (last_good, elsewhere) =
                    previous.map_or_else(Default::default, |p| (p.last_good, p.elsewhere));
                FileState {
                    last_good,
                    errors: report.diagnostics,
                    elsewhere,
                }
            };
            files.insert(report.path, state);
        }
        for (path, state) in std::mem::take(&mut self.files) {
            if unreadable.iter().any(|u| path.starts_with(u) && path != *u) {
                files.entry(path).or_insert(state);
            }
        }
        self.files = files;
        let (mut state, cross) = manifest::assemble(
            self.files
                .values()
                .flat_map(|f| f.last_good.iter().cloned()),
        );
        // A resource named by a cross-file error keeps its previous desired state.
        for d in &cross {
            let from_file: BTreeSet<Key> = self
                .files
                .get(&d.file)
                .map(|f| f.last_good.iter().map(key_of).collect())
                .unwrap_or_default();
            for key in from_file {
                restore(&mut state, &self.state, &key);
            }
        }
        self.cross_errors = cross;
        let changed = changed_keys(&self.state, &state);
        self.state = Arc::new(state);
        let new_errors = self
            .errors()
            .into_iter()
            .filter(|d| !before_errors.contains(&d.to_string()))
            .collect();
        Reloaded {
            changed,
            new_errors,
        }
    }
}

/// The declaration of `key` in `state`.
pub fn get(state: &DesiredState, key: &Key) -> Option<Resource> {
    match key.kind {
        Kind::Role => state.roles.get(&key.name).cloned().map(Resource::Role),
        Kind::Policy => state.policies.get(&key.name).cloned().map(Resource::Policy),
        Kind::InstanceProfile => state
            .instance_profiles
            .get(&key.name)
            .cloned()
            .map(Resource::InstanceProfile),
        Kind::OpenIDConnectProvider => state
            .oidc_providers
            .get(&key.name)
            .cloned()
            .map(Resource::OpenIDConnectProvider),
    }
}

/// Every key of `state`: OIDC providers and policies first (roles trust and attach them),
/// instance profiles last (they hold roles).
pub fn keys(state: &DesiredState) -> Vec<Key> {
    let providers = state
        .oidc_providers
        .keys()
        .map(|n| Key::new(Kind::OpenIDConnectProvider, n.clone()));
    let policies = state
        .policies
        .keys()
        .map(|n| Key::new(Kind::Policy, n.clone()));
    providers
        .chain(policies)
        .chain(state.roles.keys().map(|n| Key::new(Kind::Role, n.clone())))
        .chain(
            state
                .instance_profiles
                .keys()
                .map(|n| Key::new(Kind::InstanceProfile, n.clone())),
        )
        .collect()
}

fn restore(state: &mut DesiredState, previous: &DesiredState, key: &Key) {
    /// `name` in `to` as it is in `from`: there or not.
    fn copy<T: Clone>(to: &mut BTreeMap<String, T>, from: &BTreeMap<String, T>, name: &str) {
        match from.get(name) {
            Some(r) => {
                to.insert(name.to_string(), r.clone());
            }
            None => {
                to.remove(name);
            }
        }
    }
    let name = key.name.as_str();
    match key.kind {
        Kind::Role => copy(&mut state.roles, &previous.roles, name),
        Kind::Policy => copy(&mut state.policies, &previous.policies, name),
        Kind::InstanceProfile => copy(
            &mut state.instance_profiles,
            &previous.instance_profiles,
            name,
        ),
        Kind::OpenIDConnectProvider => {
            copy(&mut state.oidc_providers, &previous.oidc_providers, name)
        }
    }
}

/// Keys whose spec differs between two states, ignoring where they were declared. Compares in
/// place: a reload of 10,000 resources copies none of them.
fn changed_keys(old: &DesiredState, new: &DesiredState) -> Vec<Key> {
    fn diff<T>(
        kind: Kind,
        old: &BTreeMap<String, T>,
        new: &BTreeMap<String, T>,
        same: fn(&T, &T) -> bool,
        out: &mut Vec<Key>,
    ) {
        let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for name in names {
            let unchanged = match (old.get(name), new.get(name)) {
                (Some(a), Some(b)) => same(a, b),
                _ => false,
            };
            if !unchanged {
                out.push(Key::new(kind, name.clone()));
            }
        }
    }
    let mut out = Vec::new();
    diff(
        Kind::Policy,
        &old.policies,
        &new.policies,
        same_policy,
        &mut out,
    );
    diff(Kind::Role, &old.roles, &new.roles, same_role, &mut out);
    diff(
        Kind::InstanceProfile,
        &old.instance_profiles,
        &new.instance_profiles,
        same_instance_profile,
        &mut out,
    );
    diff(
        Kind::OpenIDConnectProvider,
        &old.oidc_providers,
        &new.oidc_providers,
        same_oidc_provider,
        &mut out,
    );
    out
}

/// A fingerprint of a declaration, wherever it stands in the files: what the daemon remembers
/// of the spec a resource last converged to (a hash, not a copy of 10,000 specs). Equal specs
/// have equal fingerprints; a collision could only make an edit look like drift in a log line.
pub fn fingerprint(r: &Resource) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match r {
        Resource::Role(role) => {
            let manifest::DesiredRole {
                name,
                path,
                description,
                max_session_duration,
                permissions_boundary,
                assume_role_policy,
                managed_policies,
                inline_policies,
                tags,
                annotations,
                origin: _,
            } = role;
            ("role", name, path, description, max_session_duration).hash(&mut h);
            (permissions_boundary, managed_policies, tags, annotations).hash(&mut h);
            assume_role_policy.to_json().hash(&mut h);
            for (name, doc) in inline_policies {
                (name, doc.to_json()).hash(&mut h);
            }
        }
        Resource::Policy(policy) => {
            let manifest::DesiredPolicy {
                name,
                path,
                description,
                document,
                tags,
                annotations,
                origin: _,
            } = policy;
            ("policy", name, path, description, tags, annotations).hash(&mut h);
            document.to_json().hash(&mut h);
        }
        Resource::InstanceProfile(profile) => {
            let manifest::DesiredInstanceProfile {
                name,
                path,
                role,
                tags,
                annotations,
                origin: _,
            } = profile;
            ("instance-profile", name, path, role, tags, annotations).hash(&mut h);
        }
        Resource::OpenIDConnectProvider(provider) => {
            let manifest::DesiredOidcProvider {
                name,
                url,
                client_ids,
                thumbprints,
                tags,
                annotations,
                origin: _,
            } = provider;
            ("oidc-provider", name, url, client_ids, thumbprints).hash(&mut h);
            (tags, annotations).hash(&mut h);
        }
    }
    h.finish()
}

/// Every field but the origin (destructured, so a new field cannot be forgotten here).
fn same_role(a: &manifest::DesiredRole, b: &manifest::DesiredRole) -> bool {
    let manifest::DesiredRole {
        name,
        path,
        description,
        max_session_duration,
        permissions_boundary,
        assume_role_policy,
        managed_policies,
        inline_policies,
        tags,
        annotations,
        origin: _,
    } = a;
    *name == b.name
        && *path == b.path
        && *description == b.description
        && *max_session_duration == b.max_session_duration
        && *permissions_boundary == b.permissions_boundary
        && *assume_role_policy == b.assume_role_policy
        && *managed_policies == b.managed_policies
        && *inline_policies == b.inline_policies
        && *tags == b.tags
        && *annotations == b.annotations
}

fn same_instance_profile(
    a: &manifest::DesiredInstanceProfile,
    b: &manifest::DesiredInstanceProfile,
) -> bool {
    let manifest::DesiredInstanceProfile {
        name,
        path,
        role,
        tags,
        annotations,
        origin: _,
    } = a;
    *name == b.name
        && *path == b.path
        && *role == b.role
        && *tags == b.tags
        && *annotations == b.annotations
}

fn same_oidc_provider(
    a: &manifest::DesiredOidcProvider,
    b: &manifest::DesiredOidcProvider,
) -> bool {
    let manifest::DesiredOidcProvider {
        name,
        url,
        client_ids,
        thumbprints,
        tags,
        annotations,
        origin: _,
    } = a;
    *name == b.name
        && *url == b.url
        && *client_ids == b.client_ids
        && *thumbprints == b.thumbprints
        && *tags == b.tags
        && *annotations == b.annotations
}

fn same_policy(a: &manifest::DesiredPolicy, b: &manifest::DesiredPolicy) -> bool {
    let manifest::DesiredPolicy {
        name,
        path,
        description,
        document,
        tags,
        annotations,
        origin: _,
    } = a;
    *name == b.name
        && *path == b.path
        && *description == b.description
        && *document == b.document
        && *tags == b.tags
        && *annotations == b.annotations
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_fingerprint_ignores_where_a_spec_stands_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a.yaml"), role("r", "one")).unwrap();
        let mut store = DesiredStore::default();
        reload(&mut store, d.path());
        let first = store.get(&Key::new(Kind::Role, "r")).unwrap();
        fs::remove_file(d.path().join("a.yaml")).unwrap();
        fs::write(
            d.path().join("b.yaml"),
            format!("# moved\n{}", role("r", "one")),
        )
        .unwrap();
        reload(&mut store, d.path());
        let moved = store.get(&Key::new(Kind::Role, "r")).unwrap();
        assert_ne!(first.origin(), moved.origin());
        assert_eq!(fingerprint(&first), fingerprint(&moved));
        fs::write(d.path().join("b.yaml"), role("r", "two")).unwrap();
        reload(&mut store, d.path());
        let edited = store.get(&Key::new(Kind::Role, "r")).unwrap();
        assert_ne!(fingerprint(&first), fingerprint(&edited));
    }

    fn role(name: &str, description: &str) -> String {
        format!(
            "apiVersion: iamwarden/v1alpha1\nkind: Role\nmetadata: {{name: {name}}}\nspec:\n  description: {description}\n  assumeRolePolicy: {{Version: \"2012-10-17\", Statement: {{Effect: Allow, Action: \"sts:AssumeRole\", Principal: {{Service: ecs-tasks.amazonaws.com}}}}}}\n"
        )
    }

    fn reload(store: &mut DesiredStore, dir: &Path) -> Reloaded {
        store
            .reload(dir, &Variables::default(), &Guardrails::default())
            .unwrap()
    }

    fn description(store: &DesiredStore, name: &str) -> Option<String> {
        store.state().roles.get(name).map(|r| r.description.clone())
    }

    #[test]
    fn only_changed_appeared_and_removed_keys_are_reported() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a.yaml"), role("a", "one")).unwrap();
        fs::write(d.path().join("b.yaml"), role("b", "one")).unwrap();
        let mut store = DesiredStore::default();
        assert_eq!(reload(&mut store, d.path()).changed.len(), 2);
        assert_eq!(reload(&mut store, d.path()).changed, vec![]);
        // Moving a declaration within its file changes no spec.
        fs::write(
            d.path().join("a.yaml"),
            format!("# moved down\n{}", role("a", "one")),
        )
        .unwrap();
        assert_eq!(reload(&mut store, d.path()).changed, vec![]);
        fs::write(d.path().join("a.yaml"), role("a", "two")).unwrap();
        fs::remove_file(d.path().join("b.yaml")).unwrap();
        fs::write(d.path().join("c.yaml"), role("c", "one")).unwrap();
        let changed = reload(&mut store, d.path()).changed;
        assert_eq!(
            changed,
            vec![
                Key::new(Kind::Role, "a"),
                Key::new(Kind::Role, "b"),
                Key::new(Kind::Role, "c")
            ]
        );
    }

    #[test]
    fn a_file_that_turns_invalid_keeps_its_last_good_resources_and_reports_once() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("a.yaml");
        fs::write(&file, role("a", "good")).unwrap();
        let mut store = DesiredStore::default();
        reload(&mut store, d.path());
        fs::write(&file, "apiVersion: [broken\n").unwrap();
        let r = reload(&mut store, d.path());
        assert_eq!(r.changed, vec![], "nothing is treated as removed");
        assert_eq!(r.new_errors.len(), 1);
        assert_eq!(description(&store, "a").as_deref(), Some("good"));
        assert_eq!(
            reload(&mut store, d.path()).new_errors.len(),
            0,
            "logged once per change"
        );
        assert_eq!(store.errors().len(), 1, "still shown");
        fs::write(&file, role("a", "fixed")).unwrap();
        let r = reload(&mut store, d.path());
        assert_eq!(r.changed, vec![Key::new(Kind::Role, "a")]);
        assert!(store.errors().is_empty());
    }

    #[test]
    fn a_deleted_file_removes_its_resources_but_an_unreadable_dir_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a.yaml"), role("a", "x")).unwrap();
        let mut store = DesiredStore::default();
        reload(&mut store, d.path());
        assert!(
            store
                .reload(
                    &d.path().join("gone"),
                    &Variables::default(),
                    &Guardrails::default()
                )
                .is_err()
        );
        assert!(description(&store, "a").is_some());
        fs::remove_file(d.path().join("a.yaml")).unwrap();
        reload(&mut store, d.path());
        assert!(description(&store, "a").is_none());
    }

    #[test]
    fn files_below_a_subdirectory_that_cannot_be_read_keep_their_last_good_state() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("sub");
        fs::create_dir(&sub).unwrap();
        fs::write(sub.join("r.yaml"), role("a", "x")).unwrap();
        fs::write(d.path().join("b.yaml"), role("b", "y")).unwrap();
        let mut store = DesiredStore::default();
        reload(&mut store, d.path());
        // What the loader reports for a subdirectory it cannot read (root reads any
        // directory, so the report is made here as the loader makes it).
        let unreadable = manifest::FileReport {
            path: sub.clone(),
            resources: Arc::default(),
            diagnostics: vec![manifest::Diagnostic::file(
                &sub,
                "cannot read directory: Permission denied",
            )],
            elsewhere: Vec::new(),
        };
        let b = manifest::load_file(&d.path().join("b.yaml"), &Variables::default());
        let r = store.update(vec![b.clone(), unreadable]);
        assert_eq!(r.changed, vec![], "nothing below it was removed");
        assert_eq!(description(&store, "a").as_deref(), Some("x"));
        assert_eq!(store.errors().len(), 1);
        // Readable again and gone: now its files are gone too.
        let r = store.update(vec![b]);
        assert_eq!(r.changed, vec![Key::new(Kind::Role, "a")]);
        assert!(description(&store, "a").is_none());
    }

    #[test]
    fn a_new_file_declaring_a_known_providers_url_takes_nothing_over() {
        let provider = |name: &str, client: &str| {
            format!(
                "apiVersion: iamwarden/v1alpha1\nkind: OpenIDConnectProvider\nmetadata: {{name: {name}}}\nspec:\n  url: https://idp.example.com\n  clientIDs: [{client}]\n"
            )
        };
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("b.yaml"),
            provider("mine", "sts.amazonaws.com"),
        )
        .unwrap();
        let mut store = DesiredStore::default();
        reload(&mut store, d.path());
        // The intruder sorts first, and names another provider for the same url.
        fs::write(d.path().join("a.yaml"), provider("intruder", "hijack")).unwrap();
        let r = reload(&mut store, d.path());
        let providers = &store.state().oidc_providers;
        assert_eq!(providers.keys().collect::<Vec<_>>(), ["mine"]);
        assert!(providers["mine"].client_ids.contains("sts.amazonaws.com"));
        assert_eq!(r.changed, vec![]);
        assert_eq!(r.new_errors.len(), 2);
    }

    #[test]
    fn a_duplicate_in_a_new_file_keeps_the_previous_desired_state() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("b.yaml"), role("a", "original")).unwrap();
        let mut store = DesiredStore::default();
        reload(&mut store, d.path());
        fs::write(d.path().join("a.yaml"), role("a", "intruder")).unwrap();
        let r = reload(&mut store, d.path());
        assert_eq!(description(&store, "a").as_deref(), Some("original"));
        assert_eq!(r.changed, vec![]);
        assert_eq!(r.new_errors.len(), 1);
    }
}
