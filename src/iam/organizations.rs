//! The accounts of an AWS Organization (`organization:` in the accounts file), read with the
//! process's own credentials: every active account, or those under given OUs, recursively.

use std::collections::VecDeque;

use aws_sdk_organizations::operation::list_accounts::ListAccountsOutput;
use aws_sdk_organizations::operation::list_accounts_for_parent::ListAccountsForParentOutput;
use aws_sdk_organizations::operation::list_organizational_units_for_parent::ListOrganizationalUnitsForParentOutput;
use aws_sdk_organizations::types::{Account, AccountStatus};

use super::{Iam, IamError, Page};

macro_rules! token_pages_of {
    ($($output:ty),* $(,)?) => {$(
        impl Page for $output {
            fn next_marker(&self) -> Option<String> {
                self.next_token().map(str::to_string)
            }
        }
    )*};
}

token_pages_of!(
    ListAccountsOutput,
    ListAccountsForParentOutput,
    ListOrganizationalUnitsForParentOutput,
);

/// An active account of the organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: String,
    /// Its name in the organization (any text: the caller makes a name of it).
    pub name: String,
    /// The partition of its ARN.
    pub partition: String,
}

fn active(a: &Account) -> Option<OrgAccount> {
    if a.status() != Some(&AccountStatus::Active) {
        return None;
    }
    Some(OrgAccount {
        id: a.id()?.to_string(),
        name: a.name().unwrap_or_default().to_string(),
        partition: a
            .arn()
            .and_then(|arn| crate::arn::Arn::parse(arn).ok())
            .map_or("aws", |arn| arn.partition)
            .to_string(),
    })
}

impl Iam {
    /// The active accounts of the caller's organization, or of the OUs (or roots) `parents`
    /// and every OU below them.
    pub async fn organization_accounts(
        &self,
        parents: &[String],
    ) -> Result<Vec<OrgAccount>, IamError> {
        let mut found = Vec::new();
        if parents.is_empty() {
            self.pages(
                "ListAccounts",
                |token| {
                    self.organizations
                        .list_accounts()
                        .set_next_token(token)
                        .send()
                },
                |page: ListAccountsOutput| {
                    found.extend(page.accounts().iter().filter_map(active));
                    Ok(true)
                },
            )
            .await?;
            return Ok(found);
        }
        let mut queue: VecDeque<String> = parents.iter().cloned().collect();
        while let Some(parent) = queue.pop_front() {
            self.pages(
                "ListAccountsForParent",
                |token| {
                    self.organizations
                        .list_accounts_for_parent()
                        .parent_id(&parent)
                        .set_next_token(token)
                        .send()
                },
                |page: ListAccountsForParentOutput| {
                    found.extend(page.accounts().iter().filter_map(active));
                    Ok(true)
                },
            )
            .await?;
            self.pages(
                "ListOrganizationalUnitsForParent",
                |token| {
                    self.organizations
                        .list_organizational_units_for_parent()
                        .parent_id(&parent)
                        .set_next_token(token)
                        .send()
                },
                |page: ListOrganizationalUnitsForParentOutput| {
                    queue.extend(
                        page.organizational_units()
                            .iter()
                            .filter_map(|ou| ou.id().map(str::to_string)),
                    );
                    Ok(true)
                },
            )
            .await?;
        }
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found.dedup_by(|a, b| a.id == b.id);
        Ok(found)
    }
}
