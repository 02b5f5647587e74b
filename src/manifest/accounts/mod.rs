//! The accounts file (`--accounts FILE`): the accounts one process manages, how to reach each,
//! and each one's values. See DESIGN.md, "Many accounts".
//!
//! ```yaml
//! accounts:
//!   - name: prod
//!     id: "111111111111"
//!     roleArn: arn:aws:iam::111111111111:role/iam-warden
//!     externalId: "..."
//!     values: {env: prod}
//!   - name: home
//!     id: "123456789012"        # no roleArn: the process's own credentials
//! ```
//!
//! Errors name the file, the line, the field path and what is allowed, like a manifest's.

mod select;
mod shard;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use select::Selector;
pub use shard::{Shard, shard_of};

use super::vars::{is_name, is_name_char};
use super::yaml::{self, Node, Value};
use super::{Diagnostic, Variables, VarsError};
use crate::arn::{Arn, is_account_id};
use crate::fieldpath::FieldPath;
use crate::suggest::unknown_field;

pub const TOP_FIELDS: &[&str] = &["accounts", "organization"];
pub const ACCOUNT_FIELDS: &[&str] = &[
    "name",
    "id",
    "roleArn",
    "externalId",
    "sessionName",
    "sessionDuration",
    "values",
    "valuesFiles",
    "maxRequestsPerSecond",
];

pub const ORGANIZATION_FIELDS: &[&str] = &[
    "roleName",
    "include",
    "exclude",
    "organizationalUnits",
    "refreshEvery",
    "externalId",
    "sessionName",
    "sessionDuration",
    "values",
    "valuesFiles",
    "maxRequestsPerSecond",
];

/// The organization is listed again every this many resyncs by default.
pub const DEFAULT_REFRESH_EVERY: u32 = 5;

/// AssumeRole's bounds on a session (DurationSeconds).
const SESSION_MIN: Duration = Duration::from_secs(900);
const SESSION_MAX: Duration = Duration::from_secs(43_200);

/// One account of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountSpec {
    /// `[A-Za-z0-9_-]+`, unique in the file: `${account.name}` and the `ACCOUNT/` of reports.
    pub name: String,
    /// Twelve digits.
    pub id: String,
    /// Assumed from the process's own credentials (with `shared.session`); `None`: those
    /// credentials themselves.
    pub role: Option<RoleArn>,
    pub shared: Shared,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleArn {
    pub arn: String,
    /// The partition of `arn`: the account's ARNs are built in it.
    pub partition: String,
}

/// The accounts of a file, in its order, and the organization whose members join them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounts {
    pub accounts: Vec<AccountSpec>,
    pub organization: Option<Organization>,
}

/// `organization:`: every active member account (or those under `parents`), selected by
/// `selector`, reached by assuming `role_name` in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    /// `NAME` or `PATH/NAME` of the role in each member account.
    pub role_name: String,
    pub selector: Selector,
    /// OU or root ids; empty: the whole organization.
    pub parents: Vec<String>,
    /// Listed again every this many resyncs.
    pub refresh_every: u32,
    pub shared: Shared,
}

/// A member account of the organization, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub partition: String,
}

/// How an account is assumed and paced, and its values: what an account and the
/// organization's members have in common.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shared {
    /// How the role is assumed (unused without one).
    pub session: Session,
    /// The pace ceiling (beats `--max-requests-per-second`; 0: unpaced).
    pub max_rps: Option<u32>,
    /// Values for `${var.NAME}`, beating `--values` (`--var` beats them).
    pub values: BTreeMap<String, String>,
    /// Values files (relative to the accounts file), before `values`.
    pub values_files: Vec<PathBuf>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    pub external_id: Option<String>,
    pub session_name: Option<String>,
    pub session_duration: Option<Duration>,
}

/// An organization's account name (any text) as an account name: other characters become `-`.
fn account_name_of(name: &str, id: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| if is_name_char(c) { c } else { '-' })
        .collect();
    let name = name.trim_matches('-');
    match name.is_empty() {
        true => id.to_string(),
        false => name.to_string(),
    }
}

impl Accounts {
    /// Reads and checks `path`: every error, or the accounts.
    pub fn load(path: &Path) -> Result<Accounts, Vec<Diagnostic>> {
        // Bounded like a manifest file: `/dev/zero` given by mistake must not fill memory.
        match super::files::read(path) {
            Ok(text) => Accounts::parse(path, &text),
            Err(e) => Err(vec![Diagnostic::file(path, e)]),
        }
    }

    /// Checks `text` as read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Accounts, Vec<Diagnostic>> {
        let mut p = Parser {
            file: path,
            diags: Vec::new(),
        };
        let accounts = p.file(text);
        p.diags.sort_by_key(|d| d.line);
        match p.diags.is_empty() {
            true => Ok(accounts),
            false => Err(p.diags),
        }
    }

    /// The file's accounts, then each member of the organization `members` that it selects and
    /// the file does not list already (by id); a member whose name another account has is
    /// named `NAME-ID`.
    pub fn with_members(&self, members: &[Member]) -> Accounts {
        let mut out = Accounts {
            accounts: self.accounts.clone(),
            organization: None,
        };
        let Some(org) = &self.organization else {
            return out;
        };
        for m in members {
            let name = account_name_of(&m.name, &m.id);
            if out.accounts.iter().any(|a| a.id == m.id) || !org.selector.selects(&name, &m.id) {
                continue;
            }
            let name = match out
                .accounts
                .iter()
                .any(|a| a.name.eq_ignore_ascii_case(&name))
            {
                true => format!("{name}-{}", m.id),
                false => name,
            };
            let arn = format!("arn:{}:iam::{}:role/{}", m.partition, m.id, org.role_name);
            out.accounts.push(AccountSpec {
                name,
                id: m.id.clone(),
                role: Some(RoleArn {
                    arn,
                    partition: m.partition.clone(),
                }),
                shared: org.shared.clone(),
            });
        }
        out
    }

    /// The accounts `shard` manages.
    pub fn sharded(mut self, shard: Option<Shard>) -> Accounts {
        if let Some(shard) = shard {
            self.accounts.retain(|a| shard.owns(&a.id));
        }
        self
    }
}

impl AccountSpec {
    /// This account's values: the `--values` files, its own files and values, then the
    /// `--var` assignments; scoped to it (`${account.name}`, `${account.id}`, its manifests).
    pub fn variables(
        &self,
        values: &[PathBuf],
        assignments: &[String],
    ) -> Result<Variables, VarsError> {
        let files: Vec<PathBuf> = values
            .iter()
            .chain(&self.shared.values_files)
            .cloned()
            .collect();
        Ok(
            Variables::load_layers(&files, &self.shared.values, assignments)?
                .for_account(&self.name, &self.id),
        )
    }
}

struct Parser<'a> {
    file: &'a Path,
    diags: Vec<Diagnostic>,
}

impl Parser<'_> {
    fn error(&mut self, line: usize, path: &FieldPath, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_path_buf(),
            line: Some(line),
            path: path.clone(),
            message: message.into(),
            rule: crate::manifest::diagnostic::rules::ACCOUNTS,
        });
    }

    fn file(&mut self, text: &str) -> Accounts {
        let mut out = Accounts::default();
        let (docs, syntax) = yaml::parse_documents(text);
        if let Some(e) = syntax {
            self.error(e.line, &e.path, e.message);
            return out;
        }
        let mut roots = docs.into_iter().filter_map(|d| d.root);
        let Some(root) = roots.next() else {
            self.diags.push(
                Diagnostic::file(
                    self.file,
                    "is empty: expected `accounts:` and a list of accounts",
                )
                .breaking(crate::manifest::diagnostic::rules::ACCOUNTS),
            );
            return out;
        };
        if let Some(extra) = roots.next() {
            self.error(extra.line, &FieldPath::default(), "must hold one document");
        }
        let top = FieldPath::default();
        let Some(fields) = self.mapping(&root, &top, TOP_FIELDS) else {
            return out;
        };
        if let Some(node) = fields.get("organization") {
            out.organization = self.organization(node, &top.key("organization"));
        }
        let path = top.key("accounts");
        let items: &[Node] = match fields.get("accounts") {
            None if fields.contains_key("organization") => &[],
            None => {
                let msg = "is required: a list of accounts (or an `organization:` to discover)";
                self.error(root.line, &path, msg);
                return out;
            }
            Some(list) => match &list.value {
                Value::Seq(items) => {
                    if items.is_empty() && !fields.contains_key("organization") {
                        self.error(list.line, &path, "lists no account");
                    }
                    items
                }
                _ => {
                    let found = list.type_name();
                    let msg = format!("must be a list of accounts, not {found}");
                    self.error(list.line, &path, msg);
                    return out;
                }
            },
        };
        for (i, item) in items.iter().enumerate() {
            if let Some(a) = self.account(item, &path.index(i)) {
                let first = |f: &dyn Fn(&AccountSpec) -> &str| {
                    out.accounts.iter().position(|b| f(b) == f(&a))
                };
                // Names that differ only in case would be told apart by selectors, not by people.
                let same_name = out
                    .accounts
                    .iter()
                    .position(|b| b.name.eq_ignore_ascii_case(&a.name));
                if let Some(j) = same_name {
                    let line = item.line_at(&FieldPath::default().key("name"));
                    let msg = match out.accounts[j].name == a.name {
                        true => format!("account name `{}` is already accounts[{j}]'s", a.name),
                        false => format!(
                            "account name `{}` differs from accounts[{j}]'s `{}` only in case",
                            a.name, out.accounts[j].name
                        ),
                    };
                    self.error(line, &path.index(i).key("name"), msg);
                } else if let Some(j) = first(&|b| b.id.as_str()) {
                    let line = item.line_at(&FieldPath::default().key("id"));
                    let msg = format!("account id {} is already accounts[{j}]'s", a.id);
                    self.error(line, &path.index(i).key("id"), msg);
                } else {
                    out.accounts.push(a);
                }
            }
        }
        out
    }

    fn mapping<'n>(
        &mut self,
        node: &'n Node,
        path: &FieldPath,
        allowed: &[&str],
    ) -> Option<BTreeMap<&'n str, &'n Node>> {
        let Value::Map(entries) = &node.value else {
            let found = node.type_name();
            self.error(node.line, path, format!("must be a mapping, not {found}"));
            return None;
        };
        let mut out = BTreeMap::new();
        for (key, value) in entries {
            if !allowed.is_empty() && !allowed.contains(&key.name.as_str()) {
                self.error(
                    key.line,
                    &path.key(&key.name),
                    unknown_field(&key.name, allowed),
                );
            } else {
                out.insert(key.name.as_str(), value);
            }
        }
        Some(out)
    }

    fn string(&mut self, node: &Node, path: &FieldPath) -> Option<String> {
        match &node.value {
            Value::Scalar { text, .. } if !node.is_null() => Some(text.clone()),
            _ => {
                let found = node.type_name();
                self.error(node.line, path, format!("must be a string, not {found}"));
                None
            }
        }
    }

    fn account(&mut self, node: &Node, path: &FieldPath) -> Option<AccountSpec> {
        let fields = self.mapping(node, path, ACCOUNT_FIELDS)?;
        let before = self.diags.len();
        let field = |name: &str| fields.get(name).copied();
        let name = match field("name") {
            Some(n) => self.string(n, &path.key("name")).filter(|name| {
                let ok = is_name(name);
                if !ok {
                    let msg =
                        format!("`{name}` is not an account name (letters, digits, `_`, `-`)");
                    self.error(n.line, &path.key("name"), msg);
                }
                ok
            }),
            None => {
                self.error(node.line, &path.key("name"), "is required");
                None
            }
        };
        let id = match field("id") {
            Some(n) => self.string(n, &path.key("id")).filter(|id| {
                let ok = is_account_id(id);
                if !ok {
                    let msg = format!("`{id}` is not an account id (12 digits, quoted)");
                    self.error(n.line, &path.key("id"), msg);
                }
                ok
            }),
            None => {
                self.error(
                    node.line,
                    &path.key("id"),
                    "is required: the 12-digit account id",
                );
                None
            }
        };
        let shared = self.shared(&fields, path);
        let role = match field("roleArn")
            .and_then(|n| self.string(n, &path.key("roleArn")).map(|s| (s, n.line)))
        {
            Some((arn, line)) => self.role(&arn, line, id.as_deref(), path),
            None => {
                for key in ["externalId", "sessionName", "sessionDuration"] {
                    if fields.contains_key(key) {
                        let line = node.line_at(&FieldPath::default().key(key));
                        let msg = "is only used with roleArn (this account is reached with the \
                                   process's own credentials)";
                        self.error(line, &path.key(key), msg);
                    }
                }
                None
            }
        };
        if self.diags.len() > before {
            return None;
        }
        Some(AccountSpec {
            name: name?,
            id: id?,
            role,
            shared,
        })
    }

    /// What an account and the organization's members share: how to assume the role, the pace
    /// ceiling, the values.
    fn shared(&mut self, fields: &BTreeMap<&str, &Node>, path: &FieldPath) -> Shared {
        let field = |name: &str| fields.get(name).copied();
        let text = |p: &mut Self, key: &str, ok: fn(&str) -> bool, what: &str| {
            let n = field(key)?;
            let value = p.string(n, &path.key(key))?;
            if !ok(&value) {
                p.error(n.line, &path.key(key), format!("`{value}` is not {what}"));
                return None;
            }
            Some(value)
        };
        let external_id = text(
            self,
            "externalId",
            |v| {
                (2..=1224).contains(&v.len())
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c))
            },
            "an external id (2 to 1224 of letters, digits and +=,.@:/-_)",
        );
        let session_name = text(
            self,
            "sessionName",
            |v| {
                (2..=64).contains(&v.len())
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c))
            },
            "a session name (2 to 64 of letters, digits and +=,.@-_)",
        );
        let session_duration = field("sessionDuration").and_then(|n| {
            let key = path.key("sessionDuration");
            let text = self.string(n, &key)?;
            let parsed = match text.parse::<u64>() {
                Ok(secs) => Ok(Duration::from_secs(secs)),
                Err(_) => humantime::parse_duration(&text).map_err(|e| e.to_string()),
            };
            match parsed {
                Ok(d) if (SESSION_MIN..=SESSION_MAX).contains(&d) => Some(d),
                Ok(_) | Err(_) => {
                    let msg = format!(
                        "`{text}` is not a session duration between 15m and 12h (seconds, or \
                         `1h`)"
                    );
                    self.error(n.line, &key, msg);
                    None
                }
            }
        });
        let max_rps = field("maxRequestsPerSecond").and_then(|n| {
            let key = path.key("maxRequestsPerSecond");
            let text = self.string(n, &key)?;
            let parsed = text.parse::<u32>().ok();
            if parsed.is_none() {
                let msg = format!("`{text}` is not a number of requests a second (0: unpaced)");
                self.error(n.line, &key, msg);
            }
            parsed
        });
        Shared {
            session: Session {
                external_id,
                session_name,
                session_duration,
            },
            max_rps,
            values: match field("values") {
                Some(n) => self.values(n, &path.key("values")),
                None => BTreeMap::new(),
            },
            values_files: match field("valuesFiles") {
                Some(n) => self.values_files(n, &path.key("valuesFiles")),
                None => Vec::new(),
            },
        }
    }

    fn organization(&mut self, node: &Node, path: &FieldPath) -> Option<Organization> {
        let fields = self.mapping(node, path, ORGANIZATION_FIELDS)?;
        let before = self.diags.len();
        let field = |name: &str| fields.get(name).copied();
        let role_name = match field("roleName") {
            Some(n) => self.string(n, &path.key("roleName")).filter(|r| {
                let ok = !r.is_empty()
                    && !r.starts_with('/')
                    && r.split('/').all(|part| {
                        !part.is_empty()
                            && part
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c))
                    });
                if !ok {
                    let msg = format!(
                        "`{r}` is not a role name (NAME or PATH/NAME, such as platform/iam-warden)"
                    );
                    self.error(n.line, &path.key("roleName"), msg);
                }
                ok
            }),
            None => {
                let msg = "is required: the role to assume in each member account";
                self.error(node.line, &path.key("roleName"), msg);
                None
            }
        };
        let list = |p: &mut Self, key: &str| -> Vec<String> {
            let Some(n) = field(key) else {
                return Vec::new();
            };
            let Value::Seq(items) = &n.value else {
                let found = n.type_name();
                p.error(
                    n.line,
                    &path.key(key),
                    format!("must be a list, not {found}"),
                );
                return Vec::new();
            };
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| p.string(item, &path.key(key).index(i)))
                .collect()
        };
        let include = list(self, "include");
        let exclude = list(self, "exclude");
        let parents = list(self, "organizationalUnits");
        let items: Vec<String> = include
            .iter()
            .cloned()
            .chain(exclude.iter().map(|e| format!("!{e}")))
            .collect();
        let selector = match items.is_empty() {
            true => Selector::parse("*"),
            false => Selector::parse(&items.join(",")),
        };
        let selector = match selector {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(node.line, path, format!("include/exclude: {e}"));
                None
            }
        };
        for (i, p) in parents.iter().enumerate() {
            let ok = (p.starts_with("ou-") || p.starts_with("r-"))
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok {
                let line = node.line_at(&FieldPath::default().key("organizationalUnits").index(i));
                let msg = format!("`{p}` is not an OU or root id (ou-…, r-…)");
                self.error(line, &path.key("organizationalUnits").index(i), msg);
            }
        }
        let refresh_every = field("refreshEvery").and_then(|n| {
            let key = path.key("refreshEvery");
            let text = self.string(n, &key)?;
            let parsed = text.parse::<u32>().ok().filter(|n| *n > 0);
            if parsed.is_none() {
                let msg = format!("`{text}` is not a number of resyncs (1 or more)");
                self.error(n.line, &key, msg);
            }
            parsed
        });
        let shared = self.shared(&fields, path);
        if self.diags.len() > before {
            return None;
        }
        Some(Organization {
            role_name: role_name?,
            selector: selector?,
            parents,
            refresh_every: refresh_every.unwrap_or(DEFAULT_REFRESH_EVERY),
            shared,
        })
    }

    fn role(
        &mut self,
        arn: &str,
        line: usize,
        id: Option<&str>,
        path: &FieldPath,
    ) -> Option<RoleArn> {
        let key = path.key("roleArn");
        let parsed = Arn::parse(arn)
            .ok()
            .filter(|a| a.is_iam("role") && a.name().is_some());
        let Some(parsed) = parsed else {
            let msg = format!("`{arn}` is not a role ARN (arn:PARTITION:iam::ACCOUNT:role/NAME)");
            self.error(line, &key, msg);
            return None;
        };
        if let Some(id) = id.filter(|id| *id != parsed.account) {
            let msg = format!(
                "`{arn}` is in account {}, not this account's id {id}",
                parsed.account
            );
            self.error(line, &key, msg);
            return None;
        }
        Some(RoleArn {
            arn: arn.to_string(),
            partition: parsed.partition.to_string(),
        })
    }

    fn values(&mut self, node: &Node, path: &FieldPath) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Value::Map(entries) = &node.value else {
            let found = node.type_name();
            self.error(
                node.line,
                path,
                format!("must be a mapping of NAME: value, not {found}"),
            );
            return out;
        };
        for (key, value) in entries {
            let at = path.key(&key.name);
            if !is_name(&key.name) {
                self.error(
                    key.line,
                    &at,
                    "is not a variable name (letters, digits, `_` and `-`)",
                );
                continue;
            }
            match &value.value {
                Value::Scalar { text, .. } if !value.is_null() => {
                    if text.contains("${") {
                        let msg = "holds `${`; values are inserted as written and never expanded \
                                   again, so a value cannot refer to another variable";
                        self.error(value.line, &at, msg);
                    } else {
                        out.insert(key.name.clone(), text.clone());
                    }
                }
                _ => {
                    let found = value.type_name();
                    let msg = format!("must be a string, number or boolean, not {found}");
                    self.error(value.line, &at, msg);
                }
            }
        }
        out
    }

    fn values_files(&mut self, node: &Node, path: &FieldPath) -> Vec<PathBuf> {
        let Value::Seq(items) = &node.value else {
            let found = node.type_name();
            self.error(
                node.line,
                path,
                format!("must be a list of file paths, not {found}"),
            );
            return Vec::new();
        };
        let base = self.file.parent().unwrap_or(Path::new("."));
        items
            .iter()
            .enumerate()
            .filter_map(|(i, n)| self.string(n, &path.index(i)))
            .map(|f| base.join(f))
            .collect()
    }
}

#[cfg(test)]
mod tests;
