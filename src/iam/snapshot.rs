//! A snapshot of every role and customer-managed policy in the account, in a few paginated
//! calls: what the daemon's resync compares against the manifests to find drift, instead of
//! observing each resource with several calls.
//!
//! GetAccountAuthorizationDetails returns roles (trust, inline policies, attachments, tags,
//! boundary) and managed policies (every version); it leaves out a role's description and
//! max session duration, which ListRoles has, and a policy's tags (ListPolicyTags, asked only
//! for declared policies).

use std::collections::BTreeMap;

use aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput as Page;
use aws_sdk_iam::types::{EntityType, Role};

use crate::arn::name_and_path;

use super::{
    EntityKind, ErrorKind, Iam, IamError, ObservedPolicy, ObservedRole, PAGE_SIZE, PolicyUser,
    PolicyVersion, document, tags_of,
};

/// Invariant: both maps are keyed by the lowercased name, because IAM names ignore case; a
/// resource's name and path come from its ARN, which is never missing (moto leaves a local
/// policy's PolicyName out of this call).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    roles: BTreeMap<String, ObservedRole>,
    /// Tags are not filled in (see [`Iam::policy_tags`]).
    policies: BTreeMap<String, ObservedPolicy>,
}

impl Snapshot {
    /// The role IAM would find by `name`.
    pub fn role(&self, name: &str) -> Option<&ObservedRole> {
        self.roles.get(&name.to_lowercase())
    }

    /// The customer-managed policy IAM would find by `name`, at whatever path it lives.
    pub fn policy(&self, name: &str) -> Option<&ObservedPolicy> {
        self.policies.get(&name.to_lowercase())
    }

    /// An ARN of a role or policy in another account than `account`: the credentials reach
    /// some other account than the one they were identified as (they never should; when they
    /// do, nothing may be written, least of all pruned, from this snapshot).
    pub fn arn_outside(&self, account: &str) -> Option<&str> {
        let foreign = |arn: &&str| crate::arn::Arn::parse(arn).is_ok_and(|a| a.account != account);
        self.roles
            .values()
            .map(|r| r.arn.as_str())
            .chain(self.policies.values().map(|p| p.arn.as_str()))
            .find(foreign)
    }

    pub fn roles(&self) -> impl Iterator<Item = &ObservedRole> {
        self.roles.values()
    }

    pub fn policies(&self) -> impl Iterator<Item = &ObservedPolicy> {
        self.policies.values()
    }

    /// The roles using each managed policy, attached or as their permissions boundary, by
    /// policy ARN: what ListEntitiesForPolicy may leave out (moto leaves boundaries out).
    pub fn role_users(&self) -> BTreeMap<String, Vec<PolicyUser>> {
        let mut out: BTreeMap<String, Vec<PolicyUser>> = BTreeMap::new();
        for r in self.roles.values() {
            for arn in &r.managed_policies {
                let user = PolicyUser::new(EntityKind::Role, &r.name, false);
                PolicyUser::add_to(out.entry(arn.clone()).or_default(), user);
            }
            if let Some(b) = &r.permissions_boundary {
                let user = PolicyUser::new(EntityKind::Role, &r.name, true);
                PolicyUser::add_to(out.entry(b.clone()).or_default(), user);
            }
        }
        out
    }

    pub fn insert_role(&mut self, role: ObservedRole) {
        self.roles.insert(role.name.to_lowercase(), role);
    }

    pub fn insert_policy(&mut self, policy: ObservedPolicy) {
        self.policies.insert(policy.name.to_lowercase(), policy);
    }
}

const OP: &str = "GetAccountAuthorizationDetails";

/// What ListRoles adds to the bulk read, by role name: description and session limit.
type Summaries = BTreeMap<String, (String, i32)>;

fn summaries(listed: &[Role]) -> Summaries {
    listed
        .iter()
        .map(|r| {
            let description = r.description().unwrap_or_default().to_string();
            let session = r.max_session_duration().unwrap_or(3600);
            (r.role_name().to_string(), (description, session))
        })
        .collect()
}

/// Folds every page, and ListRoles's descriptions and session limits, into one snapshot.
#[cfg(test)]
pub fn fold(pages: &[Page], listed: &[Role]) -> Result<Snapshot, IamError> {
    let listed = summaries(listed);
    let mut snapshot = Snapshot::default();
    for page in pages {
        fold_page(&mut snapshot, page, &listed)?;
    }
    Ok(snapshot)
}

/// Adds one page of GetAccountAuthorizationDetails to `snapshot`, as it arrives: a large
/// account's parsed pages are never all held at once.
fn fold_page(snapshot: &mut Snapshot, page: &Page, listed: &Summaries) -> Result<(), IamError> {
    {
        for role in page.role_detail_list() {
            // Identity from the ARN: an entry without a usable one is never acted on.
            let Some(arn) = role.arn() else { continue };
            let Some((name, path)) = name_and_path(arn) else {
                continue;
            };
            let mut inline_policies = BTreeMap::new();
            for p in role.role_policy_list() {
                if let Some(policy_name) = p.policy_name() {
                    inline_policies
                        .insert(policy_name.to_string(), document(OP, p.policy_document())?);
                }
            }
            let summary = listed.get(name);
            snapshot.insert_role(ObservedRole {
                name: name.to_string(),
                arn: arn.to_string(),
                path,
                description: summary.map(|s| s.0.clone()).unwrap_or_default(),
                max_session_duration: summary.map_or(3600, |s| s.1),
                permissions_boundary: role
                    .permissions_boundary()
                    .and_then(|b| b.permissions_boundary_arn())
                    .map(str::to_string),
                assume_role_policy: document(OP, role.assume_role_policy_document())?,
                managed_policies: role
                    .attached_managed_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_string))
                    .collect(),
                inline_policies,
                tags: tags_of(role.tags()),
            });
        }
        for policy in page.policies() {
            let Some(arn) = policy.arn() else { continue };
            let Some((name, path)) = name_and_path(arn) else {
                continue;
            };
            let versions = policy.policy_version_list();
            let default = versions
                .iter()
                .find(|v| v.is_default_version())
                .ok_or_else(|| IamError {
                    operation: OP,
                    kind: ErrorKind::Other,
                    code: None,
                    message: format!("policy {arn} has no default version"),
                })?;
            snapshot.insert_policy(ObservedPolicy {
                name: name.to_string(),
                arn: arn.to_string(),
                path,
                description: policy.description().unwrap_or_default().to_string(),
                document: document(OP, default.document())?,
                versions: versions
                    .iter()
                    .map(|v| PolicyVersion {
                        id: v.version_id().unwrap_or_default().to_string(),
                        is_default: v.is_default_version(),
                        created: v.create_date().map_or(0, |d| d.secs()),
                    })
                    .collect(),
                tags: BTreeMap::new(),
            });
        }
    }
    Ok(())
}

impl Iam {
    pub async fn snapshot(&self) -> Result<Snapshot, IamError> {
        let mut listed = Summaries::new();
        self.each_role_page(|page| listed.extend(summaries(page)))
            .await?;
        let mut snapshot = Snapshot::default();
        self.pages(
            OP,
            |marker| {
                self.client
                    .get_account_authorization_details()
                    .filter(EntityType::Role)
                    .filter(EntityType::LocalManagedPolicy)
                    .max_items(PAGE_SIZE)
                    .set_marker(marker)
                    .send()
            },
            |page| {
                fold_page(&mut snapshot, &page, &listed)?;
                Ok(true)
            },
        )
        .await?;
        Ok(snapshot)
    }

    pub async fn policy_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, IamError> {
        let out = self
            .paced(self.client.list_policy_tags().policy_arn(arn).send())
            .await;
        Ok(tags_of(self.done("ListPolicyTags", out)?.tags()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::types::{
        AttachedPolicy, ManagedPolicyDetail, PolicyDetail, PolicyVersion as SdkVersion, RoleDetail,
        Tag,
    };
    use aws_smithy_types::DateTime;

    const TRUST: &str = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
    const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;

    fn role_detail(name: &str) -> RoleDetail {
        RoleDetail::builder()
            .role_name(name)
            .arn(format!("arn:aws:iam::123456789012:role/{name}"))
            .path("/")
            .assume_role_policy_document(TRUST)
            .role_policy_list(
                PolicyDetail::builder()
                    .policy_name("inline")
                    .policy_document(DOC)
                    .build(),
            )
            .attached_managed_policies(
                AttachedPolicy::builder()
                    .policy_arn("arn:aws:iam::aws:policy/X")
                    .build(),
            )
            .tags(Tag::builder().key("team").value("data").build().unwrap())
            .build()
    }

    fn policy_detail(name: &str) -> ManagedPolicyDetail {
        let version = |id: &str, default: bool, secs: i64| {
            SdkVersion::builder()
                .version_id(id)
                .is_default_version(default)
                .document(DOC)
                .create_date(DateTime::from_secs(secs))
                .build()
        };
        ManagedPolicyDetail::builder()
            .policy_name(name)
            .arn(format!("arn:aws:iam::123456789012:policy/{name}"))
            .path("/")
            .policy_version_list(version("v1", false, 1))
            .policy_version_list(version("v2", true, 2))
            .build()
    }

    #[test]
    fn a_resource_of_another_account_is_found() {
        let page = |role: RoleDetail| {
            Page::builder()
                .role_detail_list(role)
                .policies(policy_detail("p"))
                .is_truncated(false)
                .build()
        };
        let ours = fold(&[page(role_detail("a"))], &[]).unwrap();
        assert_eq!(ours.arn_outside("123456789012"), None);
        assert_eq!(
            ours.arn_outside("111111111111"),
            Some("arn:aws:iam::123456789012:role/a")
        );
        let mut stray = role_detail("b");
        stray.arn = Some("arn:aws:iam::999999999999:role/b".into());
        let mixed = fold(&[page(stray)], &[]).unwrap();
        assert_eq!(
            mixed.arn_outside("123456789012"),
            Some("arn:aws:iam::999999999999:role/b")
        );
    }

    #[test]
    fn every_page_is_folded_in_and_list_roles_fills_description_and_session() {
        let pages = [
            Page::builder()
                .role_detail_list(role_detail("a"))
                .policies(policy_detail("p"))
                .is_truncated(true)
                .marker("m")
                .build(),
            Page::builder()
                .role_detail_list(role_detail("b"))
                .is_truncated(false)
                .build(),
        ];
        let listed = [Role::builder()
            .role_name("b")
            .path("/")
            .role_id("id")
            .arn("arn:aws:iam::123456789012:role/b")
            .create_date(DateTime::from_secs(0))
            .description("from ListRoles")
            .max_session_duration(7200)
            .build()
            .unwrap()];
        let snap = fold(&pages, &listed).unwrap();
        assert_eq!(snap.roles.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(snap.role("A").map(|r| r.name.as_str()), Some("a"));
        let b = &snap.roles["b"];
        assert_eq!(
            (b.description.as_str(), b.max_session_duration),
            ("from ListRoles", 7200)
        );
        assert_eq!(snap.roles["a"].max_session_duration, 3600);
        assert_eq!(b.inline_policies.len(), 1);
        assert_eq!(b.tags.get("team").map(String::as_str), Some("data"));
        assert!(b.managed_policies.contains("arn:aws:iam::aws:policy/X"));
        let p = snap.policy("P").unwrap();
        assert_eq!(p.arn, "arn:aws:iam::123456789012:policy/p");
        assert_eq!(p.versions.len(), 2);
        assert!(p.versions.iter().any(|v| v.id == "v2" && v.is_default));
    }

    #[test]
    fn names_and_paths_come_from_arns_and_a_missing_name_is_skipped() {
        // moto leaves PolicyName out: the name still comes from the ARN.
        let mut nameless = policy_detail("p");
        nameless.policy_name = None;
        nameless.path = None;
        let pages = [Page::builder().policies(nameless).build()];
        let snap = fold(&pages, &[]).unwrap();
        assert_eq!(snap.policy("p").map(|p| p.name.as_str()), Some("p"));
        let broken = ManagedPolicyDetail::builder()
            .arn("arn:aws:iam::1:policy/")
            .build();
        let pages = [Page::builder().policies(broken).build()];
        assert_eq!(fold(&pages, &[]).unwrap().policies().count(), 0);
    }

    #[test]
    fn a_policy_without_a_default_version_is_an_error() {
        let broken = ManagedPolicyDetail::builder()
            .policy_name("p")
            .arn("arn:aws:iam::1:policy/p")
            .build();
        let pages = [Page::builder().policies(broken).build()];
        assert!(fold(&pages, &[]).is_err());
    }
}
