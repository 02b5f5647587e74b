//! What `plan`, `apply` and `run` share: loading the desired state and connecting to IAM.

use anyhow::Context as _;

use super::validate::check_owner;
use crate::cli::ManifestArgs;
use crate::iam::{Iam, Snapshot};
use crate::manifest::accounts::AccountSpec;
use crate::manifest::{self, DesiredState, Variables};
use crate::reconcile::{self, Context, ResourcePlan, RetryPolicy};

pub struct Session {
    pub iam: Iam,
    pub desired: DesiredState,
    pub ctx: Context,
    pub retry: RetryPolicy,
    pub files: usize,
    /// Documents DIR holds for other accounts of the accounts file.
    pub elsewhere: usize,
    /// On a terminal, a progress bar for a long run.
    pub progress: super::progress::Bar,
}

/// Loads and validates DIR; prints every error and returns `None` when it is invalid (nothing
/// may be changed in AWS then).
pub async fn prepare(args: &ManifestArgs) -> anyhow::Result<Option<Session>> {
    prepare_in(args, None).await
}

/// [`prepare`] for `account` of the accounts file (`None`: the caller's account).
pub async fn prepare_in(
    args: &ManifestArgs,
    account: Option<&AccountSpec>,
) -> anyhow::Result<Option<Session>> {
    check_owner(&args.owner)?;
    let vars = match account {
        Some(a) => super::accounts::variables(args, a)?,
        None => Variables::load(&args.values, &args.vars)?,
    };
    let guardrails = args.guardrails()?;
    let load = |vars: &Variables, rules: &dyn manifest::ResourceRules| {
        manifest::load_guarded(&args.dir, vars, rules)
            .with_context(|| format!("cannot load manifests from {}", args.dir.display()))
    };
    // Checked before any AWS call, with placeholder built-ins. Guardrails can only judge
    // values of `${aws.*}` once the account is known: when a manifest reads one and only the
    // guardrails object, the verdict waits for the caller's identity.
    let checked = load(&vars, &guardrails)?;
    let guardrails_wait = !checked.diagnostics.is_empty()
        && vars.builtins_read()
        && load(&vars, &manifest::NoRules)?.diagnostics.is_empty();
    if !checked.diagnostics.is_empty() && !guardrails_wait {
        return Ok(invalid(&checked.diagnostics));
    }
    let iam = match account {
        Some(a) => crate::iam::connect(&super::accounts::reach(args, a)).await,
        None => args.iam.connect().await,
    };
    let account = iam
        .account()
        .await
        .context("cannot identify the AWS account")?;
    // That load stands unless a manifest read a built-in (`${aws.account_id}`, …): it is then
    // loaded again with the caller's identity.
    let loaded = if vars.builtins_read() {
        drop(checked);
        let vars = vars.with_builtins(crate::manifest::Builtins::new(&account, iam.region()));
        let loaded = load(&vars, &guardrails)?;
        if !loaded.diagnostics.is_empty() {
            return Ok(invalid(&loaded.diagnostics));
        }
        loaded
    } else {
        checked
    };
    let ctx = Context::new(
        &args.owner,
        &args.ignore_tag_prefixes,
        &account,
        &loaded.state,
    )
    .with_ignored_managed_policies(&args.ignore_managed_policies);
    Ok(Some(Session {
        iam,
        desired: loaded.state,
        ctx,
        retry: retry_policy(args),
        files: loaded.files,
        elsewhere: loaded.elsewhere.len(),
        progress: super::progress::Bar::for_terminal(args.log_format),
    }))
}

/// Prints every error of an invalid load; nothing may be changed in AWS.
fn invalid(diagnostics: &[manifest::Diagnostic]) -> Option<Session> {
    for d in diagnostics {
        eprintln!("{d}");
    }
    eprintln!(
        "invalid manifests: {} errors; nothing was changed",
        diagnostics.len()
    );
    None
}

impl Session {
    /// Every declared resource observed and planned; `prune` reads the account in bulk, for
    /// the ownership of what is undeclared.
    pub async fn observe(&self, prune: bool) -> reconcile::Observation {
        let observed = reconcile::observe_and_plan(
            &self.iam,
            &self.ctx,
            &self.desired,
            &self.retry,
            prune,
            &self.progress,
        )
        .await;
        self.progress.clear();
        observed
    }

    /// Every IAM request this run made, at debug: what a run costs against the rate limit.
    pub fn log_requests(&self) {
        let requests = self.iam.requests();
        tracing::debug!(
            requests = requests.total(),
            "IAM requests: {}",
            requests.summary()
        );
    }
}

pub fn retry_policy(args: &ManifestArgs) -> RetryPolicy {
    RetryPolicy {
        max_elapsed: args.retry_timeout,
        ..RetryPolicy::default()
    }
}

/// With `--prune`, the deletes to add to the plan. Refused when DIR holds no manifest at all:
/// an empty or unmounted directory must never delete everything.
pub async fn prune_plans(
    session: &Session,
    args: &ManifestArgs,
    snapshot: Option<&Snapshot>,
) -> anyhow::Result<Vec<ResourcePlan>> {
    if !args.prune {
        return Ok(Vec::new());
    }
    if reconcile::prune::declares_nothing(
        session.files,
        !session.desired.is_empty(),
        session.elsewhere,
    ) {
        anyhow::bail!(
            "--prune refused: {} declares no resource (no manifest file, or only empty ones), which would delete every resource owned by `{}`",
            args.dir.display(),
            args.owner
        );
    }
    // Never outside the allowed paths: tagging a role elsewhere must not make it deletable.
    let guardrails = args.guardrails()?;
    let decision = reconcile::observe_prune(
        &session.iam,
        &args.owner,
        &session.desired,
        snapshot,
        &session.retry,
        &args.prune_settings(),
        |arn| guardrails.allows_arn(arn),
    )
    .await
    .context("cannot list owned resources for --prune")?;
    if let Some(n) = decision.refused {
        eprintln!(
            "iam-warden: --prune: {n} deletions in one pass exceed --max-prune {}; nothing is deleted",
            args.max_prune
        );
    }
    let plans = decision.plans;
    Ok(plans)
}
