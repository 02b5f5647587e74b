//! One load of DIR as a generation: the desired state with its planning context and file
//! errors, swapped whole on reload, so a reconcile never mixes two generations.

use std::sync::Arc;

use tracing::{info, warn};

use super::desired::{self, DesiredStore, Key};
use super::{Controller, lock};
use crate::manifest::{DesiredState, Diagnostic, Kind, Resource, Variables};
use crate::reconcile::{Context, ResourceState};

/// One load of DIR: the desired state, the planning context built from it, and the file
/// errors. Swapped whole, so a reconcile never mixes two generations.
pub struct Generation {
    pub state: Arc<DesiredState>,
    pub ctx: Context,
    pub errors: Vec<Diagnostic>,
    /// Manifest files read.
    pub files: usize,
    /// Documents DIR holds for other accounts: an account no manifest selects is not an empty
    /// DIR (its resources may be pruned).
    pub elsewhere: usize,
}

impl Generation {
    pub fn get(&self, key: &Key) -> Option<Resource> {
        desired::get(&self.state, key)
    }

    /// Declared keys, policies first (roles attach them).
    pub fn keys(&self) -> Vec<Key> {
        desired::keys(&self.state)
    }

    /// The key of the declared `kind` named `name` (names ignore case).
    pub fn declared_key(&self, kind: Kind, name: &str) -> Option<Key> {
        let declared = self.state.declared_name(kind, name)?;
        Some(Key::new(kind, declared.clone()))
    }

    pub fn declares(&self, key: &Key) -> bool {
        match key.kind {
            Kind::Role => self.state.roles.contains_key(&key.name),
            Kind::Policy => self.state.policies.contains_key(&key.name),
            Kind::InstanceProfile => self.state.instance_profiles.contains_key(&key.name),
            Kind::OpenIDConnectProvider => self.state.oidc_providers.contains_key(&key.name),
        }
    }
}

/// What the loader keeps between reloads (only `reload` touches it).
pub(super) struct Loader {
    pub(super) store: DesiredStore,
    pub(super) vars: Variables,
}

/// One reload logs this many manifest errors at most, then their count: a thousand broken
/// files must not flood the log.
const MAX_LOGGED_ERRORS: usize = 20;

impl Controller {
    /// The declared resources `key` needs whose last reconcile did not leave them in sync
    /// (created yet, failed, or not reached).
    fn needs_not_in_sync(&self, generation: &Generation, key: &Key) -> Vec<Key> {
        let Some(resource) = generation.get(key) else {
            return Vec::new();
        };
        let keys = lock(&self.acct.keys);
        resource
            .needs()
            .into_iter()
            .filter_map(|(kind, name)| generation.declared_key(kind, &name))
            .filter(|k| keys.state_of(k) != Some(ResourceState::InSync))
            .collect()
    }

    /// The current generation of the desired state.
    pub fn generation(&self) -> Arc<Generation> {
        self.generation
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads DIR again and queues what changed. Bad files keep their last good state; an
    /// unreadable DIR keeps the whole desired state (and is shown on /status).
    pub fn reload(&self) {
        let mut loader = lock(&self.loader);
        let values = match &self.config.account {
            Some(a) => a.variables(&self.config.values, &self.config.vars),
            None => Variables::load(&self.config.values, &self.config.vars),
        };
        match values {
            Ok(v) => {
                self.values.read();
                loader.vars = v.with_builtins(loader.vars.builtins().clone());
            }
            Err(e) => self.values.failed(e.to_string()),
        }
        let vars = loader.vars.clone();
        let reloaded = match loader
            .store
            .reload(&self.config.dir, &vars, &self.config.guardrails)
        {
            Ok(r) => {
                self.dir.read();
                r
            }
            Err(e) => {
                self.dir.failed(e.to_string());
                return;
            }
        };
        for d in reloaded.new_errors.iter().take(MAX_LOGGED_ERRORS) {
            let text = super::status::clip(d.to_string());
            warn!(file = %d.file.display(), "invalid manifest, its resources keep their last good state: {text}");
        }
        if let Some(more) = reloaded.new_errors.len().checked_sub(MAX_LOGGED_ERRORS) {
            if more > 0 {
                warn!("and {more} more errors in invalid manifests (/status lists up to 200)");
            }
        }
        let previous = self.generation();
        let store = &loader.store;
        let generation = Arc::new(Generation {
            ctx: Context::new(
                &self.config.owner,
                &self.config.ignore_tag_prefixes,
                &previous.ctx.account,
                store.state(),
            )
            .with_ignored_managed_policies(&self.config.ignore_managed_policies),
            state: store.shared_state(),
            errors: store.errors(),
            files: store.file_count(),
            elsewhere: store.elsewhere_count(),
        });
        *self.generation.write().unwrap_or_else(|p| p.into_inner()) = generation.clone();
        drop(loader);
        lock(&self.acct.keys).track(&generation.keys());
        if !reloaded.changed.is_empty() {
            info!(changed = reloaded.changed.len(), "manifests changed");
        }
        let may_prune = self.may_prune();
        // The first load is the backlog; after it, a changed file is someone's edit.
        let edit = previous.files > 0 || !previous.state.is_empty();
        for key in reloaded.changed {
            if generation.declares(&key) {
                match edit {
                    true => {
                        // What it needs, not yet in sync, goes just ahead of it: the edit must
                        // not fail on a policy (or a role, a provider) still in the backlog.
                        let needs = self.needs_not_in_sync(&generation, &key);
                        self.queue.add_first(key);
                        for policy in needs {
                            self.queue.add_first(policy);
                        }
                    }
                    false => self.queue.add(key),
                }
            } else if may_prune {
                // No longer declared: a prune candidate, checked again before any delete. Its
                // grace cannot have started before now, whatever mark it carries.
                let arn = previous
                    .ctx
                    .policy_arn(&key.name)
                    .filter(|_| key.kind == Kind::Policy)
                    .cloned();
                {
                    let mut keys = lock(&self.acct.keys);
                    let r = keys.entry(&key);
                    if arn.is_some() {
                        r.prune_arn = arn;
                    }
                    r.undeclared_at
                        .get_or_insert_with(std::time::SystemTime::now);
                }
                self.queue.add(key);
            }
        }
        self.update_resource_gauge();
    }
}
