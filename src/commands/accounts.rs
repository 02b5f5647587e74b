//! `--accounts FILE` for the commands: the accounts, each one's values and reach, and every
//! account's expansion of DIR checked before any AWS call.

use std::collections::BTreeMap;

use anyhow::Context as _;

use super::findings::{Columns, Finding, Level};
use crate::cli::ManifestArgs;
use crate::iam::{Assume, Reach};
use crate::manifest::accounts::{AccountSpec, Accounts, Member};
use crate::manifest::{self, Builtins, Variables};

/// What `--accounts` asks for.
pub enum Targets {
    /// No accounts file: the caller's account, as without one.
    Caller,
    Many(Box<Accounts>),
    /// The accounts file is invalid: its errors.
    Invalid(Vec<manifest::Diagnostic>),
}

impl Targets {
    /// Prints the errors of an invalid accounts file to stderr.
    pub fn say_invalid(diags: &[manifest::Diagnostic]) {
        for d in diags {
            eprintln!("{d}");
        }
        eprintln!(
            "invalid accounts file: {} errors; nothing was changed",
            diags.len()
        );
    }
}

/// Reads `--accounts`.
pub fn targets(args: &ManifestArgs) -> Targets {
    let Some(path) = &args.accounts else {
        return Targets::Caller;
    };
    match Accounts::load(path) {
        Ok(accounts) => Targets::Many(Box::new(accounts)),
        Err(diags) => Targets::Invalid(diags),
    }
}

/// The members of the file's organization (none without one), listed with the process's own
/// credentials.
pub async fn members(args: &ManifestArgs, accounts: &Accounts) -> anyhow::Result<Vec<Member>> {
    let Some(org) = &accounts.organization else {
        return Ok(Vec::new());
    };
    let found = args
        .iam
        .connect()
        .await
        .organization_accounts(&org.parents)
        .await
        .context("cannot list the accounts of the organization")?;
    Ok(found
        .into_iter()
        .map(|a| Member {
            id: a.id,
            name: a.name,
            partition: a.partition,
        })
        .collect())
}

/// The file's accounts and its organization's members, once every account's expansion of DIR
/// is valid; otherwise every error is printed and `None` returned (nothing may change anywhere).
pub async fn expand_valid(
    args: &ManifestArgs,
    accounts: Accounts,
) -> anyhow::Result<Option<Accounts>> {
    let accounts = accounts.with_members(&members(args, &accounts).await?);
    let checked = check(args, &accounts)?;
    for w in &checked.unselected {
        eprintln!("{w}");
    }
    if checked.errors.is_empty() {
        return Ok(Some(accounts));
    }
    for e in &checked.errors {
        eprintln!("{e}");
    }
    eprintln!(
        "invalid manifests: {}; nothing was changed",
        super::report::plural(checked.errors.len(), "error", "errors")
    );
    Ok(None)
}

/// The values of `account`: `--values` files, its own files and values, then `--var`; its
/// built-ins as far as they are known without a call (the region is the SDK's).
pub fn variables(args: &ManifestArgs, account: &AccountSpec) -> anyhow::Result<Variables> {
    let vars = account
        .variables(&args.values, &args.vars)
        .with_context(|| format!("account {}", account.name))?;
    let placeholder = Builtins::placeholder();
    Ok(vars.with_builtins(Builtins {
        account_id: account.id.clone(),
        partition: account
            .role
            .as_ref()
            .map_or(placeholder.partition, |r| r.partition.clone()),
        region: placeholder.region,
    }))
}

/// How to reach `account` with these flags.
pub fn reach(args: &ManifestArgs, account: &AccountSpec) -> Reach {
    let own = args.iam.reach();
    Reach {
        max_rps: account.shared.max_rps.unwrap_or(own.max_rps),
        assume: account.role.as_ref().map(|r| {
            let session = &account.shared.session;
            Assume {
                role_arn: r.arn.clone(),
                external_id: session.external_id.clone(),
                session_name: session.session_name.clone(),
                session_duration: session.session_duration,
            }
        }),
        account_id: Some(account.id.clone()),
        ..own
    }
}

/// One line per distinct error of every account's expansion of DIR (with the accounts it
/// holds in, unless all), and how much each valid account declares.
pub struct Checked {
    pub errors: Vec<Finding>,
    /// Dangerous grants.
    pub warnings: Vec<Finding>,
    /// Manifests whose `iam-warden/accounts` selects none of the accounts.
    pub unselected: Vec<Finding>,
    /// Per account: (name, roles, policies).
    pub declared: Vec<(String, usize, usize)>,
    pub files: usize,
}

pub fn check(args: &ManifestArgs, accounts: &Accounts) -> anyhow::Result<Checked> {
    let guardrails = args.guardrails()?;
    let mut errors: BTreeMap<String, (Finding, Vec<&str>)> = BTreeMap::new();
    let mut warnings: BTreeMap<String, (Finding, Vec<&str>)> = BTreeMap::new();
    let mut columns = Columns::default();
    let mut declared = Vec::new();
    let mut files = 0;
    // Documents each account left to others: one no account takes is a mistake (a typo that
    // `--prune` would turn into deletions).
    let mut left: BTreeMap<(std::path::PathBuf, usize), (String, usize)> = BTreeMap::new();
    // An organization's members are listed at plan, apply and run time; one placeholder member
    // stands for them here.
    let placeholder = accounts.with_members(&[Member {
        id: "000000000000".into(),
        name: "organization-member".into(),
        partition: "aws".into(),
    }]);
    let checked: Vec<&AccountSpec> = match accounts.organization {
        Some(_) => placeholder.accounts.iter().collect(),
        None => accounts.accounts.iter().collect(),
    };
    let all = checked.len();
    for a in &checked {
        let vars = variables(args, a)?;
        let loaded = manifest::load_guarded(&args.dir, &vars, &guardrails)
            .with_context(|| format!("cannot load manifests from {}", args.dir.display()))?;
        files = loaded.files;
        for (file, line, selector) in &loaded.elsewhere {
            left.entry((file.clone(), *line))
                .or_insert((selector.clone(), 0))
                .1 += 1;
        }
        for d in &loaded.diagnostics {
            errors
                .entry(d.to_string())
                .or_insert_with(|| (Finding::error(d, &mut columns), Vec::new()))
                .1
                .push(&a.name);
        }
        for w in super::report::all_warnings(&loaded, &args.dir, &vars) {
            warnings
                .entry(w.to_string())
                .or_insert_with(|| (Finding::warning(&w, &mut columns), Vec::new()))
                .1
                .push(&a.name);
        }
        declared.push((
            a.name.clone(),
            loaded.state.roles.len(),
            loaded.state.policies.len(),
        ));
    }
    let names: Vec<&str> = checked.iter().map(|a| a.name.as_str()).collect();
    let errors = in_accounts(errors, all);
    // A warning, not an error: one DIR may serve several accounts files (a hub per
    // environment), each selecting its own.
    let mut unselected = Vec::new();
    for ((file, line), (selector, n)) in left {
        // An organization's members are not known to `validate`: its placeholder selects
        // nothing by name.
        if n == all && accounts.organization.is_none() {
            let path = crate::fieldpath::FieldPath::default()
                .key("metadata")
                .key("annotations")
                .key(crate::manifest::ACCOUNTS_ANNOTATION);
            unselected.push(Finding {
                rule: crate::manifest::diagnostic::rules::UNSELECTED,
                level: Level::Warning,
                column: columns.column(&file, line, &path),
                file,
                line: Some(line),
                path: path.to_string(),
                message: format!(
                    "`{selector}` selects none of the accounts ({}){}",
                    names.join(", "),
                    hint(&selector, &names)
                ),
                accounts: None,
            });
        }
    }
    Ok(Checked {
        errors,
        warnings: in_accounts(warnings, all),
        unselected,
        declared,
        files,
    })
}

/// "; did you mean `prod`?" for an item of `selector` that is close to an account's name.
fn hint(selector: &str, names: &[&str]) -> String {
    selector
        .split(',')
        .map(|i| i.trim().trim_start_matches('!').trim())
        .filter(|i| !i.contains(['*', '?']) && !names.contains(i))
        .find_map(|i| crate::suggest::closest(i, names))
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

/// One finding per distinct message, with the accounts it holds in unless all `all` of them.
fn in_accounts(m: BTreeMap<String, (Finding, Vec<&str>)>, all: usize) -> Vec<Finding> {
    m.into_values()
        .map(|(finding, names)| {
            let some = (names.len() != all).then(|| names.iter().map(|n| n.to_string()).collect());
            finding.in_accounts(some)
        })
        .collect()
}
